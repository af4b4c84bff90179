//! When an unlocked vault locks itself.
//!
//! The vault locks after a period without any touch or key press (a setting, 10 minutes by
//! default), and when the tablet wakes from a sleep longer than that: timers do not run while
//! a tablet sleeps, so the check compares times rather than counting on a timer.

use crate::Timestamp;

/// The auto-lock setting, in minutes. Bounded so a typo cannot disable locking.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AutoLockMinutes(u32);

impl AutoLockMinutes {
    /// The default: 10 minutes.
    pub const DEFAULT: AutoLockMinutes = AutoLockMinutes(10);
    /// The choices offered in settings.
    pub const CHOICES: [u32; 5] = [2, 5, 10, 15, 30];

    /// A setting within 1 to 60 minutes, or `None`.
    pub fn new(minutes: u32) -> Option<Self> {
        (1..=60)
            .contains(&minutes)
            .then_some(AutoLockMinutes(minutes))
    }

    /// The number of minutes.
    pub fn minutes(self) -> u32 {
        self.0
    }

    fn millis(self) -> i64 {
        i64::from(self.0) * 60_000
    }
}

impl Default for AutoLockMinutes {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Tracks activity and says when to lock.
#[derive(Clone, Copy, Debug)]
pub struct AutoLock {
    after: AutoLockMinutes,
    last_activity: Timestamp,
}

impl AutoLock {
    /// Starts counting from `now` (the moment of unlocking).
    pub fn new(after: AutoLockMinutes, now: Timestamp) -> Self {
        AutoLock {
            after,
            last_activity: now,
        }
    }

    /// The fieldworker touched or typed.
    pub fn activity(&mut self, now: Timestamp) {
        self.last_activity = Timestamp(self.last_activity.0.max(now.0));
    }

    /// Whether the vault must lock at `now` (also true when the tablet slept past the limit).
    pub fn should_lock(&self, now: Timestamp) -> bool {
        now.0 - self.last_activity.0 >= self.after.millis()
    }

    /// Milliseconds until the lock, for scheduling the next check.
    pub fn remaining_millis(&self, now: Timestamp) -> i64 {
        (self.after.millis() - (now.0 - self.last_activity.0)).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_the_chosen_minutes_without_activity() {
        let mut lock = AutoLock::new(AutoLockMinutes::DEFAULT, Timestamp(0));
        assert!(!lock.should_lock(Timestamp(9 * 60_000)));
        lock.activity(Timestamp(9 * 60_000));
        assert!(!lock.should_lock(Timestamp(18 * 60_000)));
        assert!(lock.should_lock(Timestamp(19 * 60_000)));
    }

    #[test]
    fn waking_from_a_long_sleep_locks_at_once() {
        let lock = AutoLock::new(AutoLockMinutes::new(5).unwrap_or_default(), Timestamp(0));
        assert!(lock.should_lock(Timestamp(3 * 3_600_000)));
        assert_eq!(lock.remaining_millis(Timestamp(3 * 3_600_000)), 0);
    }

    #[test]
    fn a_clock_going_backwards_does_not_extend_the_session() {
        let mut lock = AutoLock::new(AutoLockMinutes::DEFAULT, Timestamp(600_000));
        lock.activity(Timestamp(0));
        assert!(lock.should_lock(Timestamp(1_200_000)));
    }

    #[test]
    fn settings_outside_one_to_sixty_minutes_are_refused() {
        assert!(AutoLockMinutes::new(0).is_none());
        assert!(AutoLockMinutes::new(61).is_none());
        assert_eq!(
            AutoLockMinutes::new(30).map(AutoLockMinutes::minutes),
            Some(30)
        );
    }
}
