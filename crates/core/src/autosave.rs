//! The autosave policy: when to write what the fieldworker types.
//!
//! A plain debounce (write 500 ms after the last key press) loses the last words when the
//! tablet dies 300 ms after a key press. Instead the first change is written at once, then
//! writes are throttled: at most one write is in flight, and when it finishes the latest text
//! is written if it changed meanwhile. Page hide, blur and visibility changes flush. A failed
//! write keeps the text dirty and asks to be retried with a growing delay; nothing is dropped.
//!
//! This type only decides; the app's `use_autosave` hook holds the text and does the writing.

use crate::Timestamp;

/// What the fieldworker sees about the current text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SaveStatus {
    /// Nothing typed yet in this session.
    Idle,
    /// A write is in flight.
    Saving,
    /// Everything typed is stored on the tablet.
    Saved {
        /// When the last write completed.
        at: Timestamp,
    },
    /// The last write failed; the text is still on screen and will be written again.
    NotSaved {
        /// Why, in words for the fieldworker.
        reason: String,
        /// Failed attempts in a row.
        attempts: u32,
    },
}

/// An instruction to the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveAction {
    /// Write the current text now and report it with [`Autosave::write_finished`], passing
    /// this edit number back.
    Write {
        /// The edit number the written text corresponds to.
        edit: u64,
    },
    /// Call [`Autosave::retry`] after this many milliseconds.
    RetryAfter {
        /// Delay before retrying.
        millis: u32,
    },
    /// Nothing to do.
    Nothing,
}

/// The autosave state machine for one field or document.
#[derive(Clone, Debug)]
pub struct Autosave {
    edits: u64,
    saved_edit: u64,
    in_flight: Option<u64>,
    status: SaveStatus,
    failures: u32,
}

impl Default for Autosave {
    fn default() -> Self {
        Self::new()
    }
}

/// Retry delays grow from 250 ms to at most 5 s: quick enough that a reopened database is
/// used at once, slow enough not to spin while storage is full.
const RETRY_BASE_MS: u32 = 250;
const RETRY_MAX_MS: u32 = 5_000;

impl Autosave {
    /// Nothing typed yet.
    pub fn new() -> Self {
        Autosave {
            edits: 0,
            saved_edit: 0,
            in_flight: None,
            status: SaveStatus::Idle,
            failures: 0,
        }
    }

    /// The text changed. Writes at once unless a write is in flight (then the latest text is
    /// written when it finishes).
    pub fn edited(&mut self) -> SaveAction {
        self.edits += 1;
        self.start_write_if_idle()
    }

    /// The page is being hidden, closed or left: write whatever is not written yet.
    pub fn flush(&mut self) -> SaveAction {
        self.start_write_if_idle()
    }

    /// The retry delay has passed.
    pub fn retry(&mut self) -> SaveAction {
        self.start_write_if_idle()
    }

    /// A write started by [`SaveAction::Write`] finished.
    pub fn write_finished(&mut self, edit: u64, result: Result<Timestamp, String>) -> SaveAction {
        if self.in_flight != Some(edit) {
            // Not the write we started: ignore rather than mark the wrong text saved.
            return SaveAction::Nothing;
        }
        self.in_flight = None;
        match result {
            Ok(at) => {
                self.failures = 0;
                self.saved_edit = self.saved_edit.max(edit);
                self.status = SaveStatus::Saved { at };
                self.start_write_if_idle()
            }
            Err(reason) => {
                self.failures += 1;
                self.status = SaveStatus::NotSaved {
                    reason,
                    attempts: self.failures,
                };
                let shift = (self.failures - 1).min(5);
                SaveAction::RetryAfter {
                    millis: (RETRY_BASE_MS << shift).min(RETRY_MAX_MS),
                }
            }
        }
    }

    /// Whether some typed text is not yet stored.
    pub fn is_dirty(&self) -> bool {
        self.edits > self.saved_edit
    }

    /// What to show the fieldworker.
    pub fn status(&self) -> &SaveStatus {
        &self.status
    }

    fn start_write_if_idle(&mut self) -> SaveAction {
        if self.in_flight.is_some() || !self.is_dirty() {
            return SaveAction::Nothing;
        }
        self.in_flight = Some(self.edits);
        if !matches!(self.status, SaveStatus::NotSaved { .. }) {
            self.status = SaveStatus::Saving;
        }
        SaveAction::Write { edit: self.edits }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Timestamp = Timestamp(1_700_000_000_000);

    #[test]
    fn the_first_key_press_is_written_at_once() {
        let mut a = Autosave::new();
        assert_eq!(a.edited(), SaveAction::Write { edit: 1 });
        assert_eq!(a.status(), &SaveStatus::Saving);
    }

    #[test]
    fn typing_during_a_write_is_written_when_it_finishes() {
        let mut a = Autosave::new();
        assert_eq!(a.edited(), SaveAction::Write { edit: 1 });
        assert_eq!(a.edited(), SaveAction::Nothing);
        assert_eq!(a.edited(), SaveAction::Nothing);
        assert_eq!(a.write_finished(1, Ok(T)), SaveAction::Write { edit: 3 });
        assert!(a.is_dirty());
        assert_eq!(a.write_finished(3, Ok(T)), SaveAction::Nothing);
        assert!(!a.is_dirty());
        assert_eq!(a.status(), &SaveStatus::Saved { at: T });
    }

    #[test]
    fn a_failed_write_keeps_the_text_dirty_and_retries_with_growing_delays() {
        let mut a = Autosave::new();
        a.edited();
        assert_eq!(
            a.write_finished(1, Err("storage full".into())),
            SaveAction::RetryAfter { millis: 250 }
        );
        assert!(a.is_dirty());
        assert!(matches!(
            a.status(),
            SaveStatus::NotSaved { attempts: 1, .. }
        ));
        assert_eq!(a.retry(), SaveAction::Write { edit: 1 });
        assert_eq!(
            a.write_finished(1, Err("x".into())),
            SaveAction::RetryAfter { millis: 500 }
        );
        for _ in 0..10 {
            a.retry();
            a.write_finished(1, Err("x".into()));
        }
        assert_eq!(a.retry(), SaveAction::Write { edit: 1 });
        assert_eq!(
            a.write_finished(1, Err("x".into())),
            SaveAction::RetryAfter { millis: 5_000 }
        );
        // Typing while failing tries again at once, with the latest text.
        assert_eq!(a.edited(), SaveAction::Write { edit: 2 });
        assert_eq!(
            a.retry(),
            SaveAction::Nothing,
            "the pending retry finds the write in flight"
        );
        assert_eq!(a.write_finished(2, Ok(T)), SaveAction::Nothing);
        assert!(!a.is_dirty());
    }

    #[test]
    fn flush_writes_only_what_is_not_written() {
        let mut a = Autosave::new();
        assert_eq!(a.flush(), SaveAction::Nothing);
        a.edited();
        assert_eq!(
            a.flush(),
            SaveAction::Nothing,
            "a write is already in flight"
        );
        a.write_finished(1, Ok(T));
        assert_eq!(a.flush(), SaveAction::Nothing);
    }

    #[test]
    fn a_stale_completion_does_not_mark_newer_text_saved() {
        let mut a = Autosave::new();
        a.edited();
        a.edited();
        assert_eq!(a.write_finished(7, Ok(T)), SaveAction::Nothing);
        assert!(a.is_dirty());
    }
}
