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

impl Timestamp {
    /// The moment as ISO 8601 / RFC 3339 in UTC with milliseconds and an explicit offset,
    /// e.g. `2026-11-30T14:05:09.123+00:00`: what R (`as.POSIXct(..., format=...)`), SPSS
    /// and spreadsheets read, and what XML Schema's `xsd:dateTime` accepts.
    pub fn to_rfc3339(self) -> String {
        let millis = self.0.rem_euclid(1000);
        let seconds = self.0.div_euclid(1000);
        let (date, time) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(date);
        format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}+00:00",
            time / 3600,
            time / 60 % 60,
            time % 60
        )
    }

    /// The calendar date in UTC, e.g. `2026-11-30`.
    pub fn date_utc(self) -> String {
        let (year, month, day) = civil_from_days(self.0.div_euclid(86_400_000));
        format!("{year:04}-{month:02}-{day:02}")
    }
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01: Howard Hinnant's
/// `civil_from_days` (<https://howardhinnant.github.io/date_algorithms.html>).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        u32::try_from(month).unwrap_or(1),
        u32::try_from(day).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::Timestamp;

    #[test]
    fn times_read_as_iso_8601_in_utc() {
        assert_eq!(Timestamp(0).to_rfc3339(), "1970-01-01T00:00:00.000+00:00");
        // `date -u -d @1764511509` = Sun Nov 30 14:05:09 UTC 2025.
        assert_eq!(
            Timestamp(1_764_511_509_123).to_rfc3339(),
            "2025-11-30T14:05:09.123+00:00"
        );
        // A leap day, and the end of a century leap year.
        assert_eq!(Timestamp(951_782_400_000).date_utc(), "2000-02-29");
        assert_eq!(
            Timestamp(978_307_199_999).to_rfc3339(),
            "2000-12-31T23:59:59.999+00:00"
        );
        // Before the epoch.
        assert_eq!(Timestamp(-1).to_rfc3339(), "1969-12-31T23:59:59.999+00:00");
    }
}
