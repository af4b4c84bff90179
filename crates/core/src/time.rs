//! Time as a value.
//!
//! Core never reads a clock (`std::time::SystemTime::now()` panics on wasm32): the app reads
//! `Date.now()` and the server reads the system clock, and both pass the result in.

use serde::{Deserialize, Serialize};

/// A moment in time: milliseconds since the Unix epoch (1970-01-01T00:00:00Z).
///
/// Serialised as a plain integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The moment `millis` milliseconds after the Unix epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }
}
