//! Password hashes (pure): argon2id PHC strings, the only format zgate keeps for
//! its own users and the emulated systems' users. Hashing needs a random salt, which
//! the caller draws (`zgate passwd`, the gateway); checking needs nothing but the
//! string.

/// What is wrong with a stored hash, if anything.
pub fn check_phc(phc: &str) -> Result<(), &'static str> {
    if !phc.starts_with('$') && phc.contains('$') {
        return Err("is in the old salted SHA-256 format, which is no longer accepted");
    }
    let parsed = argon2::PasswordHash::new(phc).map_err(|_| "is not a PHC string")?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err("is not argon2id");
    }
    if parsed.hash.is_none() || parsed.salt.is_none() {
        return Err("has no salt or no hash");
    }
    Ok(())
}

/// Whether `password` matches `phc` (cost parameters come from the string).
pub fn verify(phc: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(phc).is_ok_and(|hash| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn checks_and_verifies() {
        let params = argon2::Params::new(1024, 1, 1, None).unwrap();
        let phc = crate::sim::security::hash_password("pw", b"saltsalt", params).unwrap();
        assert_eq!(check_phc(&phc), Ok(()));
        assert!(verify(&phc, "pw"));
        assert!(!verify(&phc, "PW"));
        assert!(check_phc("plain").is_err());
        assert!(check_phc("abc$def").is_err());
        assert!(!verify("not a hash", "pw"));
    }
}
