//! Audio recording decisions: which format to ask the browser for, the order chunks are
//! written in, the elapsed time across pauses, and the level meter.
//!
//! The app's recorder (`src/components/recorder`) does the browser I/O (MediaRecorder, Web
//! Audio, IndexedDB); everything it decides is here so it is tested natively.
//!
//! # Chunks
//!
//! MediaRecorder hands over a chunk of the encoded stream every [`TIMESLICE_MS`]. Each chunk
//! gets the next index when it arrives, is sealed for that index and written with
//! `BlobStore::put_chunk`, which only accepts chunks in order from 0. [`ChunkQueue`] keeps the
//! chunks that are not yet stored, in arrival order, with at most one write in flight. A
//! failed write is retried, with a growing delay, until it succeeds: a chunk is never
//! dropped or skipped, and nothing after it is written before it. A crash therefore loses
//! only what the browser had not yet handed over (at most one timeslice) and the chunks not
//! yet stored.

use std::collections::VecDeque;

/// The media types asked for, best first: Opus in WebM (Chromium, Firefox), then MP4
/// (Safari, iPad). If the browser supports neither, its default is used.
pub const PREFERRED_MEDIA_TYPES: [&str; 2] = ["audio/webm;codecs=opus", "audio/mp4"];

/// The bitrate asked for: plenty for speech (browsers default to about 128 kbps).
pub const AUDIO_BITS_PER_SECOND: u32 = 32_000;

/// How often MediaRecorder hands over a chunk, in milliseconds: the most audio a crash loses
/// before it was handed over.
pub const TIMESLICE_MS: u32 = 2_000;

/// How often the level meter and the elapsed time on screen are refreshed, in milliseconds.
pub const METER_INTERVAL_MS: u32 = 100;

/// The quietest level the meter shows, in dB below full scale; quieter is 0.
pub const METER_FLOOR_DB: f32 = -60.0;

/// The first delay before a failed chunk write is retried, in milliseconds.
pub const FIRST_RETRY_MS: u32 = 500;

/// The longest delay between retries of a failed chunk write, in milliseconds.
pub const MAX_RETRY_MS: u32 = 30_000;

/// The media type to pass to MediaRecorder: the first of [`PREFERRED_MEDIA_TYPES`] the
/// browser supports (`is_supported` is `MediaRecorder.isTypeSupported`), or `None` for the
/// browser's default.
pub fn choose_media_type(is_supported: impl Fn(&str) -> bool) -> Option<&'static str> {
    PREFERRED_MEDIA_TYPES
        .into_iter()
        .find(|media_type| is_supported(media_type))
}

/// `12:05` for 12 minutes 5 seconds; minutes keep counting past an hour (`75:00`).
pub fn format_clock(millis: u64) -> String {
    let seconds = millis / 1000;
    format!("{:02}:{:02}", seconds / 60, seconds % 60)
}

/// The root mean square of audio samples in -1.0..=1.0 (0.0 for none).
pub fn rms(samples: &[f32]) -> f32 {
    if samples.is_empty() {
        return 0.0;
    }
    let sum: f64 = samples.iter().map(|&s| f64::from(s) * f64::from(s)).sum();
    (sum / samples.len() as f64).sqrt() as f32
}

/// The meter position, 0.0..=1.0, for an RMS level: decibels from [`METER_FLOOR_DB`] (0.0)
/// to full scale (1.0), which follows loudness as heard better than the raw RMS.
pub fn meter_level(rms: f32) -> f32 {
    if !rms.is_finite() || rms <= 0.0 {
        return 0.0;
    }
    let db = 20.0 * rms.log10();
    ((db - METER_FLOOR_DB) / -METER_FLOOR_DB).clamp(0.0, 1.0)
}

/// Elapsed recording time that leaves out pauses. Times are milliseconds of a monotonic
/// clock (`performance.now()`); a clock that appears to run backwards counts as no time.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Stopwatch {
    /// Time counted before the current run.
    banked_ms: f64,
    /// When the current run started, if running.
    running_since: Option<f64>,
}

impl Stopwatch {
    /// A stopwatch at zero, not running.
    pub fn new() -> Stopwatch {
        Stopwatch::default()
    }

    /// Starts (or resumes) counting at `now`. Does nothing if already running.
    pub fn run(&mut self, now: f64) {
        if self.running_since.is_none() {
            self.running_since = Some(now);
        }
    }

    /// Stops counting at `now` (pause or stop), keeping the time counted so far.
    pub fn halt(&mut self, now: f64) {
        if let Some(since) = self.running_since.take() {
            self.banked_ms += (now - since).max(0.0);
        }
    }

    /// Whether it is counting.
    pub fn is_running(&self) -> bool {
        self.running_since.is_some()
    }

    /// The time counted up to `now`, in whole milliseconds.
    pub fn elapsed_ms(&self, now: f64) -> u64 {
        let running = self
            .running_since
            .map_or(0.0, |since| (now - since).max(0.0));
        (self.banked_ms + running) as u64
    }
}

/// A chunk write the caller must do now: seal `payload` for `index`, store it, and report
/// with [`ChunkQueue::write_finished`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkWrite<T> {
    /// The chunk's index in the blob.
    pub index: u32,
    /// The chunk (as the caller queued it).
    pub payload: T,
}

/// An instruction from [`ChunkQueue`] to the caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueAction<T> {
    /// Write this chunk now.
    Write(ChunkWrite<T>),
    /// The last write failed: call [`ChunkQueue::retry`] after this many milliseconds.
    RetryAfter {
        /// Delay before retrying.
        millis: u32,
    },
    /// Nothing to do now (a write is in flight, a retry is scheduled, or the queue is empty).
    Nothing,
}

#[derive(Clone, Debug)]
struct Pending<T> {
    index: u32,
    payload: T,
    bytes: u64,
    audio_until_ms: u64,
}

/// The chunks of one recording that are not yet stored, written in order one at a time.
///
/// `T` is the caller's chunk (the browser's `Blob`); it is cloned into each
/// [`ChunkWrite`], so it should be cheap to clone.
#[derive(Clone, Debug)]
pub struct ChunkQueue<T> {
    next_index: u32,
    /// Not yet stored, in index order; the front is the one in flight or to retry.
    waiting: VecDeque<Pending<T>>,
    in_flight: bool,
    retry_scheduled: bool,
    failures: u32,
    saved_chunks: u32,
    saved_bytes: u64,
    saved_audio_ms: u64,
}

impl<T> Default for ChunkQueue<T> {
    fn default() -> Self {
        ChunkQueue {
            next_index: 0,
            waiting: VecDeque::new(),
            in_flight: false,
            retry_scheduled: false,
            failures: 0,
            saved_chunks: 0,
            saved_bytes: 0,
            saved_audio_ms: 0,
        }
    }
}

/// The delay before retry number `failures` (1 for the first failure): doubling from
/// [`FIRST_RETRY_MS`] up to [`MAX_RETRY_MS`].
pub fn retry_delay_ms(failures: u32) -> u32 {
    let doublings = failures.saturating_sub(1).min(16);
    FIRST_RETRY_MS
        .saturating_mul(1 << doublings)
        .min(MAX_RETRY_MS)
}

impl<T: Clone> ChunkQueue<T> {
    /// An empty queue for a new blob (the first chunk gets index 0).
    pub fn new() -> ChunkQueue<T> {
        ChunkQueue::default()
    }

    /// Queues the next chunk, `bytes` long, holding the audio up to `audio_until_ms` into
    /// the recording. Empty chunks (MediaRecorder sends them, e.g. after a pause) are not
    /// stored and get no index.
    pub fn push(&mut self, payload: T, bytes: u64, audio_until_ms: u64) -> QueueAction<T> {
        if bytes == 0 {
            return QueueAction::Nothing;
        }
        let index = self.next_index;
        self.next_index += 1;
        self.waiting.push_back(Pending {
            index,
            payload,
            bytes,
            audio_until_ms,
        });
        self.next_write()
    }

    /// Reports the end of the write of chunk `index`. A success stores it and moves on to
    /// the next chunk; a failure keeps it at the front, to be retried after a delay.
    /// A report for any other chunk than the one in flight is ignored.
    pub fn write_finished(&mut self, index: u32, stored: bool) -> QueueAction<T> {
        let in_flight = self.in_flight && self.waiting.front().is_some_and(|p| p.index == index);
        if !in_flight {
            return QueueAction::Nothing;
        }
        self.in_flight = false;
        if stored {
            self.failures = 0;
            if let Some(done) = self.waiting.pop_front() {
                self.saved_chunks += 1;
                self.saved_bytes += done.bytes;
                self.saved_audio_ms = self.saved_audio_ms.max(done.audio_until_ms);
            }
            self.next_write()
        } else {
            self.failures = self.failures.saturating_add(1);
            self.retry_scheduled = true;
            QueueAction::RetryAfter {
                millis: retry_delay_ms(self.failures),
            }
        }
    }

    /// The retry delay has passed: write the failed chunk again.
    pub fn retry(&mut self) -> QueueAction<T> {
        self.retry_scheduled = false;
        self.next_write()
    }

    fn next_write(&mut self) -> QueueAction<T> {
        if self.in_flight || self.retry_scheduled {
            return QueueAction::Nothing;
        }
        match self.waiting.front() {
            Some(front) => {
                self.in_flight = true;
                QueueAction::Write(ChunkWrite {
                    index: front.index,
                    payload: front.payload.clone(),
                })
            }
            None => QueueAction::Nothing,
        }
    }

    /// Whether every chunk queued so far is stored.
    pub fn is_drained(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Chunks queued but not yet stored (including the one in flight).
    pub fn pending(&self) -> usize {
        self.waiting.len()
    }

    /// Failed writes in a row of the chunk at the front (0 when the last write succeeded).
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// The index the next queued chunk will get, which is also how many were queued.
    pub fn next_index(&self) -> u32 {
        self.next_index
    }

    /// Chunks stored.
    pub fn saved_chunks(&self) -> u32 {
        self.saved_chunks
    }

    /// Bytes of audio stored (before sealing).
    pub fn saved_bytes(&self) -> u64 {
        self.saved_bytes
    }

    /// How much of the recording is stored, in milliseconds from its start.
    pub fn saved_audio_ms(&self) -> u64 {
        self.saved_audio_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn opus_in_webm_first_then_mp4_then_the_browser_default() {
        assert_eq!(choose_media_type(|_| true), Some("audio/webm;codecs=opus"));
        assert_eq!(
            choose_media_type(|t| t == "audio/mp4"),
            Some("audio/mp4"),
            "Safari"
        );
        assert_eq!(choose_media_type(|t| t == "audio/ogg"), None);
        assert_eq!(choose_media_type(|_| false), None);
    }

    #[test]
    fn clock_shows_minutes_and_seconds() {
        assert_eq!(format_clock(0), "00:00");
        assert_eq!(format_clock(999), "00:00");
        assert_eq!(format_clock(61_500), "01:01");
        assert_eq!(format_clock(59 * 60_000 + 59_999), "59:59");
        assert_eq!(format_clock(75 * 60_000), "75:00");
    }

    #[test]
    fn meter_follows_decibels() {
        assert_eq!(rms(&[]), 0.0);
        assert!((rms(&[0.5, -0.5, 0.5, -0.5]) - 0.5).abs() < 1e-6);
        assert_eq!(meter_level(0.0), 0.0);
        assert_eq!(meter_level(f32::NAN), 0.0);
        assert_eq!(meter_level(1.0), 1.0);
        assert_eq!(meter_level(2.0), 1.0);
        assert_eq!(meter_level(0.0001), 0.0, "-80 dB is below the floor");
        assert!(meter_level(0.001).abs() < 1e-5, "-60 dB is the floor");
        assert!(
            (meter_level(0.031_622_8) - 0.5).abs() < 1e-4,
            "-30 dB is half way"
        );
    }

    #[test]
    fn stopwatch_leaves_out_pauses() {
        let mut watch = Stopwatch::new();
        assert_eq!(watch.elapsed_ms(500.0), 0);
        watch.run(1_000.0);
        assert_eq!(watch.elapsed_ms(3_000.0), 2_000);
        watch.halt(3_000.0);
        assert!(!watch.is_running());
        assert_eq!(
            watch.elapsed_ms(9_000.0),
            2_000,
            "paused time is not counted"
        );
        watch.run(5_000.0);
        watch.run(6_000.0); // already running: ignored
        assert_eq!(watch.elapsed_ms(7_500.0), 4_500);
        watch.halt(8_000.0);
        watch.halt(9_000.0); // already halted: ignored
        assert_eq!(watch.elapsed_ms(100_000.0), 5_000);
    }

    #[test]
    fn stopwatch_ignores_a_clock_running_backwards() {
        let mut watch = Stopwatch::new();
        watch.run(1_000.0);
        assert_eq!(watch.elapsed_ms(500.0), 0);
        watch.halt(400.0);
        assert_eq!(watch.elapsed_ms(2_000.0), 0);
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        assert_eq!(retry_delay_ms(1), 500);
        assert_eq!(retry_delay_ms(2), 1_000);
        assert_eq!(retry_delay_ms(3), 2_000);
        assert_eq!(retry_delay_ms(7), 30_000);
        assert_eq!(retry_delay_ms(u32::MAX), 30_000);
        assert_eq!(retry_delay_ms(0), 500);
    }

    fn write(index: u32, payload: &str) -> QueueAction<String> {
        QueueAction::Write(ChunkWrite {
            index,
            payload: payload.to_owned(),
        })
    }

    #[test]
    fn one_write_in_flight_and_the_rest_in_order() {
        let mut queue = ChunkQueue::new();
        assert_eq!(queue.push("a".to_owned(), 10, 2_000), write(0, "a"));
        assert_eq!(queue.push("b".to_owned(), 20, 4_000), QueueAction::Nothing);
        assert_eq!(queue.push("c".to_owned(), 30, 6_000), QueueAction::Nothing);
        assert_eq!(queue.pending(), 3);
        assert_eq!(queue.write_finished(0, true), write(1, "b"));
        assert_eq!(queue.saved_chunks(), 1);
        assert_eq!(queue.saved_bytes(), 10);
        assert_eq!(queue.saved_audio_ms(), 2_000);
        assert_eq!(queue.write_finished(1, true), write(2, "c"));
        assert_eq!(queue.write_finished(2, true), QueueAction::Nothing);
        assert!(queue.is_drained());
        assert_eq!(queue.saved_bytes(), 60);
        assert_eq!(queue.saved_audio_ms(), 6_000);
        assert_eq!(queue.push("d".to_owned(), 5, 7_000), write(3, "d"));
    }

    #[test]
    fn a_failed_write_is_retried_before_anything_after_it() {
        let mut queue = ChunkQueue::new();
        assert_eq!(queue.push("a".to_owned(), 1, 1), write(0, "a"));
        assert_eq!(queue.push("b".to_owned(), 1, 2), QueueAction::Nothing);
        assert_eq!(
            queue.write_finished(0, false),
            QueueAction::RetryAfter { millis: 500 }
        );
        // Chunks keep arriving while the retry waits; none jumps the queue.
        assert_eq!(queue.push("c".to_owned(), 1, 3), QueueAction::Nothing);
        assert_eq!(queue.retry(), write(0, "a"));
        assert_eq!(
            queue.write_finished(0, false),
            QueueAction::RetryAfter { millis: 1_000 }
        );
        assert_eq!(queue.failures(), 2);
        assert_eq!(queue.retry(), write(0, "a"));
        assert_eq!(queue.write_finished(0, true), write(1, "b"));
        assert_eq!(queue.failures(), 0);
        assert_eq!(queue.saved_chunks(), 1);
        assert_eq!(queue.pending(), 2);
    }

    #[test]
    fn empty_chunks_and_stray_reports_change_nothing() {
        let mut queue: ChunkQueue<String> = ChunkQueue::new();
        assert_eq!(queue.push(String::new(), 0, 2_000), QueueAction::Nothing);
        assert_eq!(queue.next_index(), 0);
        assert_eq!(queue.write_finished(0, true), QueueAction::Nothing);
        assert_eq!(queue.saved_chunks(), 0);
        assert_eq!(queue.push("a".to_owned(), 1, 1), write(0, "a"));
        assert_eq!(queue.write_finished(5, true), QueueAction::Nothing);
        assert_eq!(queue.retry(), QueueAction::Nothing, "still in flight");
        assert_eq!(queue.write_finished(0, true), QueueAction::Nothing);
        assert!(queue.is_drained());
    }

    #[derive(Clone, Debug)]
    enum Step {
        Push(u64),
        Finish(bool),
        Retry,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            (0u64..5).prop_map(Step::Push),
            any::<bool>().prop_map(Step::Finish),
            Just(Step::Retry),
        ]
    }

    /// Checks an action of the queue against what the test stored so far.
    fn handle(
        action: QueueAction<u32>,
        stored: usize,
        in_flight: &mut Option<u32>,
        retry_due: &mut bool,
    ) {
        match action {
            QueueAction::Write(w) => {
                assert!(in_flight.is_none(), "two writes in flight");
                assert_eq!(w.payload, w.index, "payload belongs to its index");
                assert_eq!(w.index as usize, stored, "the next unstored chunk");
                *in_flight = Some(w.index);
            }
            QueueAction::RetryAfter { .. } => *retry_due = true,
            QueueAction::Nothing => {}
        }
    }

    proptest! {
        /// Whatever arrives and fails when: the writes are of consecutive indexes from 0,
        /// each repeated until stored, never two at once, and once every write succeeds
        /// every non-empty chunk is stored exactly once, in arrival order.
        #[test]
        fn chunks_are_stored_in_order_without_loss(steps in prop::collection::vec(step(), 0..80)) {
            let mut queue = ChunkQueue::new();
            let mut pushed = Vec::new();
            let mut stored: Vec<u32> = Vec::new();
            let mut in_flight: Option<u32> = None;
            let mut retry_due = false;
            for step in steps {
                match step {
                    Step::Push(bytes) => {
                        let index = queue.next_index();
                        if bytes > 0 { pushed.push(index); }
                        let action = queue.push(index, bytes, 0);
                        handle(action, stored.len(), &mut in_flight, &mut retry_due);
                    }
                    Step::Finish(ok) => {
                        if let Some(index) = in_flight.take() {
                            if ok { stored.push(index); }
                            let action = queue.write_finished(index, ok);
                            handle(action, stored.len(), &mut in_flight, &mut retry_due);
                        }
                    }
                    Step::Retry => {
                        if retry_due {
                            retry_due = false;
                            let action = queue.retry();
                            handle(action, stored.len(), &mut in_flight, &mut retry_due);
                        }
                    }
                }
                prop_assert_eq!(queue.saved_chunks() as usize, stored.len());
                prop_assert_eq!(queue.pending() + stored.len(), pushed.len());
            }
            // Let every remaining write succeed.
            let mut guard = 0;
            while !queue.is_drained() {
                guard += 1;
                prop_assert!(guard < 1_000);
                if retry_due {
                    retry_due = false;
                    let action = queue.retry();
                    handle(action, stored.len(), &mut in_flight, &mut retry_due);
                }
                if let Some(index) = in_flight.take() {
                    stored.push(index);
                    let action = queue.write_finished(index, true);
                    handle(action, stored.len(), &mut in_flight, &mut retry_due);
                }
            }
            prop_assert_eq!(stored, pushed);
        }
    }
}
