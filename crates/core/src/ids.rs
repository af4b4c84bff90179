//! Identifiers: UUIDv7 newtypes created on the device.
//!
//! Devices create data offline, so ids are never handed out by a server or a database
//! counter. A UUIDv7 starts with its creation time in milliseconds, so ids sort roughly by
//! creation time, which keeps database indexes compact. Each kind of thing has its own type
//! so a [`VisitId`] cannot be passed where a [`ParticipantId`] is expected.
//!
//! Ids serialise as their hyphenated lower-case string (`"0190b5c8-..."`) in every format,
//! so they read the same in JSON, in IndexedDB and in SQL.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use thiserror::Error;
use uuid::{ContextV7, Uuid};

use crate::time::Timestamp;

thread_local! {
    // A counter shared by the ids made on this thread, so ids made within the same
    // millisecond, or after the clock stepped back, still sort in the order they were made.
    static V7_CONTEXT: ContextV7 = const { ContextV7::new() };
}

/// A fresh UUIDv7 for `now`. Times before 1970 are clamped to the epoch.
fn new_v7(now: Timestamp) -> Uuid {
    let millis = u64::try_from(now.as_millis()).unwrap_or(0);
    let seconds = millis / 1000;
    // At most 999_000_000, which fits in u32.
    let subsec_nanos = (millis % 1000) as u32 * 1_000_000;
    V7_CONTEXT
        .with(|context| Uuid::new_v7(uuid::Timestamp::from_unix(context, seconds, subsec_nanos)))
}

/// A string that is not a valid id.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{input:?} is not a valid {type_name}")]
pub struct ParseIdError {
    type_name: &'static str,
    input: String,
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, unique id for something created at `now` (a UUIDv7: the time in
            /// milliseconds, then a counter seeded from the platform's secure random
            /// source).
            ///
            /// Ids made on one thread never go backwards, even if the clock does: an id
            /// made with an earlier `now` than the previous one carries the previous time.
            pub fn new(now: Timestamp) -> Self {
                Self(new_v7(now))
            }

            /// Wraps an existing UUID, e.g. one read back from storage.
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// Wraps the 16 bytes of a UUID.
            pub const fn from_bytes(bytes: [u8; 16]) -> Self {
                Self(Uuid::from_bytes(bytes))
            }

            /// The 16 bytes of the UUID (the form used in hashes and associated data).
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = ParseIdError;

            fn from_str(input: &str) -> Result<Self, Self::Err> {
                Uuid::try_parse(input).map(Self).map_err(|_| ParseIdError {
                    type_name: stringify!($name),
                    input: input.to_owned(),
                })
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id! {
    /// Identifies a record: every revision of one consent form, interview note, activity
    /// response... shares it.
    RecordId
}

uuid_id! {
    /// Identifies a study team member of the researcher console ([`crate::team`]).
    MemberId
}

uuid_id! {
    /// Identifies a study team record made in the researcher console (a safeguarding
    /// acknowledgement, a conflict resolution: [`crate::review::team_records`]).
    TeamRecordId
}

uuid_id! {
    /// Identifies a participant (carer, child, professional, manager). The participant's
    /// pseudonymous code such as `C07` is data, not the id.
    ParticipantId
}

uuid_id! {
    /// Identifies a visit (a session with one or more participants).
    VisitId
}

uuid_id! {
    /// Identifies a device (an installation of the app on a tablet), enrolled with the
    /// server.
    DeviceId
}

uuid_id! {
    /// Identifies a fieldworker profile on a device; each profile has its own vault.
    ProfileId
}

uuid_id! {
    /// Identifies a blob: the chunked binary data of an attachment (audio, drawing, photo).
    BlobId
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_version_7_and_carry_their_time() {
        let id = RecordId::new(Timestamp(1_700_000_000_123));
        assert_eq!(id.as_uuid().get_version_num(), 7);
        let (secs, nanos) = id.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!(
            secs * 1000 + u64::from(nanos) / 1_000_000,
            1_700_000_000_123
        );
    }

    #[test]
    fn ids_made_in_the_same_millisecond_are_distinct_and_ordered() {
        let now = Timestamp(1_700_000_000_000);
        let ids: Vec<_> = (0..100).map(|_| RecordId::new(now)).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn ids_made_after_the_clock_steps_back_still_sort_later() {
        let later = RecordId::new(Timestamp(1_700_000_000_500));
        let after_step_back = RecordId::new(Timestamp(1_700_000_000_000));
        assert!(later < after_step_back);
    }

    #[test]
    fn ids_serialise_as_strings_and_parse_back() {
        let id = VisitId::new(Timestamp(1_700_000_000_000));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        assert_eq!(serde_json::from_str::<VisitId>(&json).unwrap(), id);
        assert_eq!(id.to_string().parse::<VisitId>().unwrap(), id);
        assert!("not-an-id".parse::<VisitId>().is_err());
        assert!(serde_json::from_str::<VisitId>("12").is_err());
    }
}
