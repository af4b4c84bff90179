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

/// Wrong PIN tries allowed before each further try waits ([`PinThrottle`]).
pub const FREE_PIN_TRIES: u32 = 5;
/// The longest wait between PIN tries, in milliseconds (5 minutes).
pub const MAX_PIN_WAIT_MS: i64 = 5 * 60 * 1000;

/// Limits guessing the PIN that leaves child mode (a curious child): [`FREE_PIN_TRIES`]
/// wrong tries are free; after that each try waits twice as long as the one before, from
/// 2 seconds up to [`MAX_PIN_WAIT_MS`]. The fieldworker's passphrase is never throttled (it is
/// long, and its own key derivation is slow), so a fieldworker is never locked out.
/// Kept with the child-mode flag, so a reload does not reset it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinThrottle {
    /// Wrong tries since the last right one.
    pub failures: u32,
    /// When the last wrong try was, in Unix milliseconds.
    pub last_failure_ms: Option<i64>,
}

impl PinThrottle {
    /// How long after the last wrong try the next try may be made, in milliseconds.
    pub fn wait_after_last(&self) -> i64 {
        if self.failures < FREE_PIN_TRIES {
            return 0;
        }
        let doublings = (self.failures - FREE_PIN_TRIES).min(20);
        (2_000i64 << doublings).min(MAX_PIN_WAIT_MS)
    }

    /// How many milliseconds from `now_ms` until a PIN may be tried (0: now).
    pub fn wait_ms(&self, now_ms: i64) -> i64 {
        match self.last_failure_ms {
            Some(last) => (last + self.wait_after_last() - now_ms).max(0),
            None => 0,
        }
    }

    /// Records a wrong try at `now_ms`.
    pub fn failed(&mut self, now_ms: i64) {
        self.failures = self.failures.saturating_add(1);
        self.last_failure_ms = Some(now_ms);
    }
}

/// Whether what was typed in the child-mode exit field has the shape of a PIN (4 to 8
/// digits), so it is checked as one (and throttled); anything else is tried as the
/// passphrase.
pub fn looks_like_pin(typed: &str) -> bool {
    check_pin(typed).is_ok()
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

    #[test]
    fn five_wrong_pins_are_free_then_each_try_waits_longer_up_to_five_minutes() {
        let mut throttle = PinThrottle::default();
        let mut now = 1_000_000;
        for _ in 0..FREE_PIN_TRIES {
            assert_eq!(throttle.wait_ms(now), 0);
            throttle.failed(now);
        }
        // The sixth try waits 2 s after the fifth wrong one; then 4 s, 8 s...
        assert_eq!(throttle.wait_ms(now), 2_000);
        assert_eq!(throttle.wait_ms(now + 1_500), 500);
        assert_eq!(throttle.wait_ms(now + 2_000), 0);
        now += 2_000;
        throttle.failed(now);
        assert_eq!(throttle.wait_ms(now), 4_000);
        for _ in 0..30 {
            throttle.failed(now);
        }
        assert_eq!(throttle.wait_ms(now), MAX_PIN_WAIT_MS);
        // The throttle survives serialising (it lives in the child-mode flag).
        let json = serde_json::to_string(&throttle).unwrap();
        assert_eq!(
            serde_json::from_str::<PinThrottle>(&json).unwrap(),
            throttle
        );
    }

    #[test]
    fn only_pin_shaped_input_is_checked_as_a_pin() {
        assert!(looks_like_pin("1234") && looks_like_pin("12345678"));
        assert!(!looks_like_pin("123") && !looks_like_pin("correct horse battery"));
    }
}
