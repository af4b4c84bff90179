//! The fieldworker's PIN for leaving child mode: 4 to 8 digits, kept only as an Argon2id
//! hash with its own salt in the profile (never the PIN itself).

use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::hex;
use crate::vault::{VaultError, random};

/// Argon2id cost for PINs: light enough to check in a moment on a tablet (the PIN only keeps
/// a child inside child mode; the data stays protected by the vault passphrase).
const M_KIB: u32 = 8 * 1024;
const T: u32 = 2;

/// A stored child-mode PIN: salt and Argon2id hash, both hex.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildPin {
    /// Random salt, hex.
    pub salt: String,
    /// Argon2id(PIN, salt), hex.
    pub hash: String,
}

impl std::fmt::Debug for ChildPin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChildPin(..)")
    }
}

/// Why a PIN is not accepted, in words for the fieldworker.
pub fn check_pin(pin: &str) -> Result<(), &'static str> {
    if !(4..=8).contains(&pin.len()) || !pin.bytes().all(|b| b.is_ascii_digit()) {
        return Err("Use 4 to 8 digits.");
    }
    Ok(())
}

fn derive(pin: &str, salt: &[u8]) -> Result<[u8; 32], VaultError> {
    let params = Params::new(M_KIB, T, 1, Some(32))
        .map_err(|e| VaultError::InvalidKdfParams(e.to_string()))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), salt, &mut out)
        .map_err(|e| VaultError::KeyDerivation(e.to_string()))?;
    Ok(out)
}

impl ChildPin {
    /// Hashes a new PIN (checked with [`check_pin`] first) with a fresh salt.
    pub fn new(pin: &str) -> Result<ChildPin, VaultError> {
        let salt: [u8; 16] = random()?;
        ChildPin::with_salt(pin, &salt)
    }

    fn with_salt(pin: &str, salt: &[u8]) -> Result<ChildPin, VaultError> {
        Ok(ChildPin {
            salt: hex::encode(salt),
            hash: hex::encode(&derive(pin, salt)?),
        })
    }

    /// Whether `pin` is this PIN (compared in constant time).
    pub fn verify(&self, pin: &str) -> bool {
        let Some(salt) = hex::decode(&self.salt) else {
            return false;
        };
        let Ok(got) = derive(pin, &salt) else {
            return false;
        };
        let want = hex::encode(&got);
        want.len() == self.hash.len()
            && want
                .bytes()
                .zip(self.hash.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_four_to_eight_digits() {
        assert!(check_pin("1234").is_ok());
        assert!(check_pin("12345678").is_ok());
        assert!(check_pin("123").is_err());
        assert!(check_pin("123456789").is_err());
        assert!(check_pin("12a4").is_err());
    }

    #[test]
    fn a_pin_is_kept_as_a_salted_hash_and_verifies() {
        let pin = ChildPin::with_salt("4321", &[7u8; 16]).unwrap();
        assert!(!pin.hash.contains("4321") && pin.hash.len() == 64);
        assert!(pin.verify("4321"));
        assert!(!pin.verify("1234"));
        assert!(!format!("{pin:?}").contains(&pin.hash));
        let other = ChildPin::with_salt("4321", &[8u8; 16]).unwrap();
        assert_ne!(pin.hash, other.hash);
    }
}
