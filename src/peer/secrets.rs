//! Where the emulated systems' secrets come from: environment variables, or files
//! (`*_key_file`) that only the service's user may read. A key file
//! keeps the key out of the process environment altogether (an environment is
//! inherited by children and shown in /proc/PID/environ for the life of the process;
//! removing a variable after reading it does not clear that copy).

use std::collections::HashMap;
use std::path::Path;

use zeroize::Zeroizing;

use crate::sim::security::ProfileConfig;

/// Secrets read from files, under the synthetic names the profiles now point at.
#[derive(Default)]
pub struct Secrets {
    files: HashMap<String, Zeroizing<String>>,
}

impl Secrets {
    /// Reads every profile's key files and points the profile at them; a profile
    /// that names both a variable and a file for one key is an error.
    pub fn read_key_files(profiles: &mut [ProfileConfig]) -> Result<Secrets, crate::Error> {
        let mut secrets = Secrets::default();
        for p in profiles.iter_mut() {
            for (env, file, what) in [
                (&mut p.legacy_key_env, &p.legacy_key_file, "legacy"),
                (&mut p.enhanced_key_env, &p.enhanced_key_file, "enhanced"),
            ] {
                let Some(path) = file else { continue };
                if env.is_some() {
                    return Err(crate::Error::Config(format!(
                        "ptktdata {}: give the {what} key as a variable or a file, not both",
                        p.name
                    )));
                }
                let name = format!("file:{}", path.display());
                secrets.files.insert(name.clone(), read_private(path)?);
                *env = Some(name);
            }
        }
        Ok(secrets)
    }

    /// Adds the secrets of `other` (another image's profiles).
    pub fn extend(&mut self, other: Secrets) {
        self.files.extend(other.files);
    }

    /// The lookup the systems take: a file read above, else the environment.
    pub fn lookup<'a>(
        &'a self,
        env: impl Fn(&str) -> Option<String> + 'a,
    ) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| match self.files.get(name) {
            Some(value) => Some(value.to_string()),
            None if name.starts_with("file:") => None,
            None => env(name),
        }
    }
}

/// Reads a secret file, refusing one that others may read ([`crate::keyfile`]).
pub fn read_private(path: &Path) -> Result<Zeroizing<String>, crate::Error> {
    crate::keyfile::read_private(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn profile(toml_text: &str) -> ProfileConfig {
        toml::from_str(toml_text).expect("profile")
    }

    fn key_file(dir: &Path, mode: u32, text: &str) -> std::path::PathBuf {
        let path = dir.join(format!("key-{mode:o}"));
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    #[test]
    fn an_owner_only_key_file_is_read_and_looked_up_in_place_of_a_variable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(dir.path(), 0o600, "E001193519561977\n");
        let mut profiles = [profile(&format!(
            "name = \"TSO\"\nlegacy_key_file = \"{}\"",
            path.display()
        ))];
        let secrets = Secrets::read_key_files(&mut profiles).expect("read");
        let lookup = secrets.lookup(|_| Some("FROM-ENV".into()));
        let name = profiles[0]
            .legacy_key_env
            .clone()
            .expect("pointed at the file");
        assert_eq!(lookup(&name).as_deref(), Some("E001193519561977"));
        // Other names still come from the environment; an unread file name never does.
        assert_eq!(lookup("ZGATE_KEY").as_deref(), Some("FROM-ENV"));
        assert_eq!(lookup("file:/elsewhere"), None);
    }

    #[test]
    fn a_key_file_others_may_read_is_refused_naming_the_file_not_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        for mode in [0o644, 0o640, 0o604] {
            let path = key_file(dir.path(), mode, "E001193519561977");
            let mut profiles = [profile(&format!(
                "name = \"TSO\"\nenhanced_key_file = \"{}\"",
                path.display()
            ))];
            let err = Secrets::read_key_files(&mut profiles)
                .err()
                .expect("refused")
                .to_string();
            assert!(err.contains("readable by others"), "{err}");
            assert!(err.contains(&path.display().to_string()), "{err}");
            assert!(!err.contains("E001193519561977"), "{err}");
        }
    }

    #[test]
    fn a_key_given_as_both_variable_and_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = key_file(dir.path(), 0o600, "E001193519561977");
        let mut profiles = [profile(&format!(
            "name = \"TSO\"\nlegacy_key_env = \"K\"\nlegacy_key_file = \"{}\"",
            path.display()
        ))];
        let err = Secrets::read_key_files(&mut profiles)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("not both"), "{err}");
    }

    #[test]
    fn a_missing_key_file_is_an_error_naming_it() {
        let mut profiles = [profile(
            "name = \"TSO\"\nlegacy_key_file = \"/nonexistent/zgate.key\"",
        )];
        let err = Secrets::read_key_files(&mut profiles)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("/nonexistent/zgate.key"), "{err}");
    }
}
