//! Copy sets as a CSV file (`protocol-specs/policy.md` §5.7): what the REST door
//! exports and imports and `zgate csm copysets --file` reads. The shape is CSM's
//! export: `#` comment lines naming the session, a line of role names, then one copy
//! set per line as element ids.

use super::SessionType;
use super::inventory::VolumeRef;
use super::session::CopySet;

/// The longest line read (two element ids are about 60 characters).
pub const MAX_LINE: usize = 256;

/// Why a file was refused: the line (from 1) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {why}")]
pub struct FileError {
    /// The line, from 1 (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub why: String,
}

/// The partner's role name in a session of `kind`.
pub fn partner_role(kind: SessionType) -> &'static str {
    match kind {
        SessionType::Fc => "T1",
        SessionType::Sgc => "R1",
        SessionType::Mm | SessionType::Hs => "H2",
    }
}

/// Writes `copy_sets` of session `name` (of `kind`), exported at `exported` (text).
pub fn write(name: &str, kind: SessionType, exported: &str, copy_sets: &[CopySet]) -> String {
    let mut out = String::with_capacity(64 * copy_sets.len() + 128);
    out.push_str(&format!(
        "#Session,{}\n#Type,{}\n#Exported,{exported}\nH1,{}\n",
        one_line(name),
        kind.code(),
        partner_role(kind)
    ));
    for c in copy_sets {
        match &c.partner {
            Some(p) => out.push_str(&format!("{},{p}\n", c.h1)),
            // An SGC copy set with no recovery volume: its R1 column is empty.
            None => out.push_str(&format!("{},\n", c.h1)),
        }
    }
    out
}

/// A name on one line (a comment cannot carry a line break).
fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

/// Reads a file: comment (`#`) and blank lines are skipped; a line of role names
/// (`H1,T1`, `H1,R1`, `H1,H2`, or the other order) may come before the copy sets and gives
/// the order of the columns (H1 first without one); each other line is one copy set,
/// two element ids separated by a comma. At most `max` copy sets.
pub fn read(text: &str, max: usize) -> Result<Vec<CopySet>, FileError> {
    let mut out = Vec::new();
    let mut h1_first: Option<bool> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let err = |why: String| Err(FileError { line, why });
        if raw.len() > MAX_LINE {
            return err(format!("longer than {MAX_LINE} characters"));
        }
        let trimmed = raw.trim().trim_start_matches('\u{feff}');
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = trimmed
            .split(',')
            .map(|f| f.trim().trim_matches('"'))
            .collect();
        let (a, b) = match fields.as_slice() {
            [a, b] => (*a, *b),
            [a] => (*a, ""),
            _ => {
                return err(format!(
                    "a copy set is two element ids separated by a comma (or an H1 alone), not {} fields",
                    fields.len()
                ));
            }
        };
        let is_role =
            |f: &str| matches!(f.to_ascii_uppercase().as_str(), "H1" | "T1" | "R1" | "H2");
        if is_role(a) && (b.is_empty() || is_role(b)) {
            if h1_first.is_some() || !out.is_empty() {
                return err("the line of role names comes once, before the copy sets".into());
            }
            match (a.eq_ignore_ascii_case("H1"), b.eq_ignore_ascii_case("H1")) {
                (true, false) => h1_first = Some(true),
                (false, true) => h1_first = Some(false),
                _ => {
                    return err(format!(
                        "roles {a},{b}: one must be H1, the other T1, R1 or H2"
                    ));
                }
            }
            continue;
        }
        if out.len() == max {
            return err(format!("more than {max} copy sets"));
        }
        let parse = |f: &str| {
            VolumeRef::parse(f).ok_or_else(|| FileError {
                line,
                why: format!("{f} is not a volume (DS8000:2107.<serial>:VOL:<XXYY>)"),
            })
        };
        let (h1, partner) = if h1_first.unwrap_or(true) {
            (a, b)
        } else {
            (b, a)
        };
        let partner = match partner {
            "" => None,
            p => Some(parse(p)?),
        };
        out.push(CopySet {
            h1: parse(h1)?,
            partner,
        });
    }
    if out.is_empty() {
        return Err(FileError {
            line: 0,
            why: "the file holds no copy set".into(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_written_reads_back() {
        // The third has no recovery volume: its R1 column is empty.
        let sets: Vec<CopySet> = (0..3u16)
            .map(|i| CopySet {
                h1: VolumeRef::parse(&format!("DS8000:2107.75ABC01:VOL:{i:04X}")).unwrap(),
                partner: (i < 2).then(|| {
                    VolumeRef::parse(&format!("DS8000:2107.75ABC01:VOL:{:04X}", 0x100 + i)).unwrap()
                }),
            })
            .collect();
        let text = write("S\nX", SessionType::Sgc, "2026-12-02", &sets);
        assert!(text.starts_with("#Session,S X\n#Type,SGC\n"), "{text}");
        assert!(text.contains("\nH1,R1\n"));
        assert_eq!(read(&text, 10).unwrap(), sets);
        assert_eq!(read(&text, 2).unwrap_err().line, 7);
    }

    #[test]
    fn the_role_line_orders_the_columns_and_errors_name_the_line() {
        let text = "T1,H1\r\nDS8000:2107.75ABC01:VOL:0100,DS8000:2107.75ABC01:VOL:0000\n";
        let sets = read(text, 10).unwrap();
        assert_eq!(sets[0].h1.volume.0, 0x0000);
        assert_eq!(sets[0].partner.as_ref().unwrap().volume.0, 0x0100);
        // An H1 alone is an SGC copy set with no recovery volume.
        let alone = read("# x\nDS8000:2107.75ABC01:VOL:0000\n", 10).unwrap();
        assert_eq!(alone[0].partner, None);
        let bad = "# x\nDS8000:2107.75ABC01:VOL:0000,,DS8000:2107.75ABC01:VOL:0001\n";
        assert_eq!(read(bad, 10).unwrap_err().line, 2);
        let bad = "DS8000:2107.75ABC01:VOL:0000,DS8000:2107.75ABC01:VOL:XYZ\n";
        assert!(read(bad, 10).unwrap_err().why.contains("XYZ"));
        assert_eq!(read("# only\n\n", 10).unwrap_err().line, 0);
        assert_eq!(read("T1,R1\n", 10).unwrap_err().line, 1);
        let quoted = "\u{feff}#Session,S\n\"DS8000:2107.75ABC01:VOL:0000\" , \"DS8000:2107.75ABC01:VOL:0100\"\n";
        assert_eq!(
            read(quoted, 10).unwrap()[0]
                .partner
                .as_ref()
                .unwrap()
                .volume
                .0,
            0x0100
        );
        let long = format!("#{}\n", "x".repeat(MAX_LINE));
        assert!(read(&long, 10).unwrap_err().why.contains("longer than"));
        assert_eq!(
            read(&format!("#{}\n", "x".repeat(MAX_LINE - 1)), 10)
                .unwrap_err()
                .line,
            0
        );
    }
}
