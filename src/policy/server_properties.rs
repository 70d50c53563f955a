//! Server properties an Administrator changes at run time (`protocol-specs/policy.md`
//! §10), pure: their names, bounds and meaning. A change is a record like any other,
//! so it is replicated to a standby and survives a takeover (ha.md §11); the
//! configuration file gives the value until a property is set.

/// One property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PropertyDef {
    /// Its name.
    pub name: &'static str,
    /// The smallest value.
    pub min: u64,
    /// The largest value.
    pub max: u64,
    /// What it sets.
    pub what: &'static str,
}

/// Life of an unanswered dual-control request, seconds (`policy.request_lifetime_secs`).
pub const REQUEST_LIFETIME: &str = "zgate.dualcontrol.request.lifetime.secs";
/// Background-copy poll interval, seconds (`policy.copy_poll_secs`).
pub const COPY_POLL: &str = "zgate.copy.poll.secs";

/// Every property zgate has.
pub const PROPERTIES: &[PropertyDef] = &[
    PropertyDef {
        name: REQUEST_LIFETIME,
        min: 60,
        max: 30 * 24 * 3600,
        what: "the life of an unanswered dual-control request, seconds (new requests)",
    },
    PropertyDef {
        name: COPY_POLL,
        min: 1,
        max: 3600,
        what: "the background-copy poll interval, seconds",
    },
];

/// The value of `name` read from `text`, within its bounds; the error says why not.
pub fn parse(name: &str, text: &str) -> Result<u64, String> {
    let Some(def) = PROPERTIES.iter().find(|p| p.name == name) else {
        let known: Vec<&str> = PROPERTIES.iter().map(|p| p.name).collect();
        return Err(format!(
            "{name} is not a server property zgate has (it has {})",
            known.join(", ")
        ));
    };
    let value: u64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{name} takes a whole number, not \"{text}\""))?;
    if value < def.min || value > def.max {
        return Err(format!(
            "{name} is {} from {} to {}, not {value}",
            def.what, def.min, def.max
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_bounds_are_checked() {
        assert_eq!(parse(COPY_POLL, "5"), Ok(5));
        assert!(
            parse(COPY_POLL, "0")
                .unwrap_err()
                .contains("from 1 to 3600")
        );
        assert!(
            parse(COPY_POLL, "five")
                .unwrap_err()
                .contains("whole number")
        );
        assert!(parse("nope", "1").unwrap_err().contains(COPY_POLL));
        assert_eq!(parse(REQUEST_LIFETIME, " 3600 "), Ok(3600));
    }
}
