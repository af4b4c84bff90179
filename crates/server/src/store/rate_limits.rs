//! Rate limits counted in the database (`0010_rate_limits.sql`) behind [`RateLimitStore`], a
//! supertrait of [`super::Store`]: every server instance on one database counts the same
//! attempts. Fixed windows: an attempt at `now` counts in the window starting at
//! `now - now % window`.

use async_trait::async_trait;
use attune_core::Timestamp;

use super::StoreError;

/// A limit: at most `limit` attempts per `window_ms` for one key of `bucket`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    /// What is counted (`enrol_address`, `enrol_code`, ...): keys of different buckets never
    /// meet.
    pub bucket: &'static str,
    /// Attempts allowed per window.
    pub limit: u32,
    /// The window's length in milliseconds.
    pub window_ms: i64,
}

impl RateLimit {
    /// At most `limit` attempts per `window_ms` milliseconds in `bucket`.
    pub const fn new(bucket: &'static str, limit: u32, window_ms: i64) -> Self {
        Self {
            bucket,
            limit,
            window_ms,
        }
    }

    /// The start of the window `now` falls in.
    pub fn window_start(&self, now: Timestamp) -> i64 {
        let window = self.window_ms.max(1);
        now.as_millis() - now.as_millis().rem_euclid(window)
    }
}

/// What counting one attempt found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attempt {
    /// Within the limit: go ahead.
    pub allowed: bool,
    /// The attempts counted in this window, this one included.
    pub count: i64,
    /// When this window ends (and the count starts again).
    pub window_ends: Timestamp,
}

/// The `rate_limits` table.
#[async_trait]
pub trait RateLimitStore: Send + Sync {
    /// Counts one attempt for `key` under `limit` at `now`, atomically (concurrent attempts,
    /// from any number of server instances, never let more than the limit through), and says
    /// whether it is allowed. Refused attempts count too. Rows of the bucket's past windows
    /// are deleted when a key starts a new window.
    async fn count_attempt(
        &self,
        limit: &RateLimit,
        key: &str,
        now: Timestamp,
    ) -> Result<Attempt, StoreError>;
}

/// One attempt, in the key's current window: a new row, a row of a past window started again
/// at 1, or one more in this window. A row's window never goes back (an instance whose clock
/// is behind counts in the newer window).
pub(crate) const COUNT_ATTEMPT: &str = "INSERT INTO rate_limits (bucket, key, window_start, count) \
     VALUES ($1, $2, $3, 1) \
     ON CONFLICT (bucket, key) DO UPDATE SET \
     count = CASE WHEN rate_limits.window_start >= excluded.window_start \
     THEN rate_limits.count + 1 ELSE 1 END, \
     window_start = CASE WHEN rate_limits.window_start >= excluded.window_start \
     THEN rate_limits.window_start ELSE excluded.window_start END \
     RETURNING count, window_start";

/// The bucket's rows of windows before the current one.
pub(crate) const PRUNE: &str = "DELETE FROM rate_limits WHERE bucket = $1 AND window_start < $2";

pub(crate) fn attempt(limit: &RateLimit, count: i64, window_start: i64) -> Attempt {
    Attempt {
        allowed: count <= i64::from(limit.limit),
        count,
        window_ends: Timestamp(window_start + limit.window_ms.max(1)),
    }
}
