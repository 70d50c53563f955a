//! Secret files: keys kept out of the process environment (an environment is
//! inherited by children and shown in /proc/PID/environ for the life of the
//! process). Shared by the product (the store's sealing key) and the emulators
//! (their PassTicket keys), so neither depends on the other for it.

use std::path::Path;

use zeroize::Zeroizing;

/// Reads a secret file, refusing one that others may read (as ssh does for keys).
pub fn read_private(path: &Path) -> Result<Zeroizing<String>, crate::Error> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path)
        .map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(crate::Error::Config(format!(
            "{}: readable by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| crate::Error::Config(format!("{}: {e}", path.display())))?,
    );
    Ok(Zeroizing::new(text.trim().to_string()))
}
