//! Password hashes (pure): argon2id PHC strings, the only format zgate keeps for
//! its own users and the emulated systems' users. Hashing needs a random salt, which
//! the caller draws (`zgate passwd`, the gateway); checking needs nothing but the
//! string.

/// Hashes a password into an argon2id PHC string with the given `salt` (at least 8
/// bytes; the caller draws it at random, as `zgate passwd` and the gateway do) and
/// cost. Pure, so that tests can make fixed hashes cheaply.
pub fn hash_password(
    password: &str,
    salt: &[u8],
    params: argon2::Params,
) -> Result<String, argon2::password_hash::Error> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let salt = SaltString::encode_b64(salt)?;
    let argon2 = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    Ok(argon2
        .hash_password(password.as_bytes(), &salt)?
        .to_string())
}

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
    // The fuzz targets check the same few passwords millions of times; the answer
    // never changes, and argon2's cost is not what they test.
    #[cfg(fuzzing)]
    {
        thread_local! {
            static SEEN: std::cell::RefCell<std::collections::HashMap<(String, String), bool>> =
                std::cell::RefCell::default();
        }
        let key = (phc.to_owned(), password.to_owned());
        if let Some(answer) = SEEN.with(|seen| seen.borrow().get(&key).copied()) {
            return answer;
        }
        let answer = verify_argon2(phc, password);
        SEEN.with(|seen| {
            let mut seen = seen.borrow_mut();
            if seen.len() >= 256 {
                seen.clear();
            }
            seen.insert(key, answer);
        });
        answer
    }
    #[cfg(not(fuzzing))]
    verify_argon2(phc, password)
}

fn verify_argon2(phc: &str, password: &str) -> bool {
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
        let phc = hash_password("pw", b"saltsalt", params).unwrap();
        assert_eq!(check_phc(&phc), Ok(()));
        assert!(verify(&phc, "pw"));
        assert!(!verify(&phc, "PW"));
        assert!(check_phc("plain").is_err());
        assert!(check_phc("abc$def").is_err());
        assert!(!verify("not a hash", "pw"));
    }
}
