//! Fieldworker profiles: who uses this tablet, and the wrapped key of each one's vault.
//!
//! Several fieldworkers can share a tablet. Each profile has its own vault key, wrapped by
//! its own passphrase, and its own database: one profile's data is unreadable to the others.
//! The profile list itself (names and wrapped keys) is readable before unlocking, so the lock
//! screen can offer it; it holds nothing about participants.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::lock::AutoLockMinutes;
use crate::{ProfileId, Timestamp, WrappedVaultKey};

/// The longest display name accepted.
pub const MAX_NAME_CHARS: usize = 60;

/// A fieldworker profile on this tablet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// Stable id; also names the profile's database.
    pub id: ProfileId,
    /// The name shown on the lock screen ("Sam", "Researcher 2").
    pub name: String,
    /// The vault key, wrapped by the passphrase.
    pub wrapped_key: WrappedVaultKey,
    /// When the profile was created.
    pub created: Timestamp,
    /// Minutes without activity before the vault locks.
    #[serde(default)]
    pub auto_lock: AutoLockMinutes,
    /// The PIN that lets the fieldworker leave child mode, if one is set.
    #[serde(default)]
    pub child_pin: Option<crate::pin::ChildPin>,
}

impl Profile {
    /// The IndexedDB database holding this profile's records.
    pub fn database_name(&self) -> String {
        format!("attune-vault-{}", self.id)
    }
}

/// A display name that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum NameError {
    /// Nothing but spaces.
    #[error("Enter a name for this profile.")]
    Empty,
    /// Longer than [`MAX_NAME_CHARS`].
    #[error("Use at most {MAX_NAME_CHARS} characters.")]
    TooLong,
    /// Another profile on this tablet has it.
    #[error("A profile called \"{0}\" already exists on this tablet.")]
    Taken(String),
}

/// Trims and checks a new profile's name against the existing ones (case-insensitively).
pub fn validate_name(name: &str, existing: &[Profile]) -> Result<String, NameError> {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if existing
        .iter()
        .any(|p| p.name.to_lowercase() == name.to_lowercase())
    {
        return Err(NameError::Taken(name));
    }
    Ok(name)
}

/// "1.2 GB", "340 MB": storage sizes a fieldworker reads at a glance (decimal units, as
/// tablets show them).
pub fn human_bytes(bytes: f64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KB", "MB", "GB", "TB"];
    let mut value = bytes.max(0.0);
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 || value >= 100.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KdfParams, Vault};

    fn profile(name: &str) -> Profile {
        let params = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let (_, wrapped_key) = Vault::create("a long passphrase", params).expect("vault");
        Profile {
            id: ProfileId::new(Timestamp(1)),
            name: name.into(),
            wrapped_key,
            created: Timestamp(1),
            auto_lock: AutoLockMinutes::DEFAULT,
            child_pin: None,
        }
    }

    #[test]
    fn names_are_trimmed_and_must_be_unique_on_the_tablet() {
        assert_eq!(validate_name("  Sam   Jones ", &[]), Ok("Sam Jones".into()));
        assert_eq!(validate_name("   ", &[]), Err(NameError::Empty));
        assert_eq!(validate_name(&"x".repeat(61), &[]), Err(NameError::TooLong));
        assert_eq!(
            validate_name("sam", &[profile("Sam")]),
            Err(NameError::Taken("sam".into()))
        );
    }

    #[test]
    fn each_profile_has_its_own_database() {
        let (a, b) = (profile("A"), profile("B"));
        assert_ne!(a.database_name(), b.database_name());
        assert!(a.database_name().starts_with("attune-vault-"));
    }

    #[test]
    fn a_profile_survives_serialisation() {
        let p = profile("Sam");
        let json = serde_json::to_string(&p).expect("serialise");
        assert_eq!(serde_json::from_str::<Profile>(&json).expect("parse"), p);
    }

    #[test]
    fn sizes_read_like_a_tablet_shows_them() {
        assert_eq!(human_bytes(0.0), "0 bytes");
        assert_eq!(human_bytes(999.0), "999 bytes");
        assert_eq!(human_bytes(1_500.0), "1.5 KB");
        assert_eq!(human_bytes(340_000_000.0), "340 MB");
        assert_eq!(human_bytes(1_234_000_000.0), "1.2 GB");
    }
}
