//! Running sync: on demand ("Sync now"), when the tablet comes back online, and after
//! unlocking while online. It never blocks the UI (it runs as a local task and yields at
//! every request and IndexedDB call), and stopping it at any point (offline, closing the tab,
//! locking) is harmless: the server acknowledges each batch only after committing it, and a
//! revision is marked synced only after that, so the next run resends what was not
//! confirmed and the server answers "already stored".

use attune_core::Timestamp;
use futures::future::{AbortHandle, abortable};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use super::enrolment::{self, Enrolment};
use super::http;
use crate::records::{load_device_value, save_device_value};
use crate::session::{LockState, Session, Sessions, now};

/// The key of the sealed sync state in the profile's database.
const STATE_KEY: &str = "sync_state";

/// How the last sync ended, in words, kept across reloads.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SyncSummary {
    /// When it ended.
    pub at: Timestamp,
    /// Whether everything waiting was sent and confirmed.
    pub ok: bool,
    /// What happened, for the fieldworker.
    pub words: String,
    /// Why the study team revoked this tablet, if they did: sync stops.
    #[serde(default)]
    pub revoked: Option<String>,
    /// Participants (codes) whose data this tablet deleted because they withdrew.
    #[serde(default)]
    pub purged: Vec<String>,
    /// Revisions the server kept as conflicts.
    #[serde(default)]
    pub conflicts: usize,
    /// What became of study protocol updates received (the version now in use, or why one
    /// was ignored).
    #[serde(default)]
    pub protocol: Option<String>,
    /// Study instructions refused (not signed by the study team's key), missing or replayed,
    /// in words.
    #[serde(default)]
    pub instructions: Vec<String>,
    /// Participants whose provisional code was confirmed, e.g. "C-new-1 is now C07".
    #[serde(default)]
    pub confirmed: Vec<String>,
}

/// What the tablet keeps about sync (sealed; nothing in it is needed while locked).
#[derive(Default, Serialize, Deserialize)]
pub(crate) struct SyncState {
    /// The pull cursor: control messages up to here were applied (saved only after the
    /// purges they asked for were durable).
    #[serde(default)]
    pub cursor: i64,
    /// The number of the last study instruction applied (0 before the first): the next must
    /// be one more, or it is reported missing (more) or replayed (not more).
    #[serde(default)]
    pub last_seq: u64,
    /// How the last sync ended.
    #[serde(default)]
    pub last: Option<SyncSummary>,
}

pub(crate) async fn load_state(session: &Session) -> Result<SyncState, String> {
    Ok(load_device_value(session, STATE_KEY, "the sync state")
        .await?
        .unwrap_or_default())
}

pub(crate) async fn save_state(session: &Session, state: &SyncState) -> Result<(), String> {
    save_device_value(session, STATE_KEY, state).await
}

/// The app-wide sync state, provided as context.
#[derive(Clone, Copy)]
pub struct SyncRunner {
    sessions: Sessions,
    running: RwSignal<bool>,
    progress: RwSignal<Option<(usize, usize)>>,
    last: RwSignal<Option<SyncSummary>>,
    /// A message about a sync that could not start (offline, not enrolled).
    notice: RwSignal<Option<String>>,
    /// Bumped when records' sync state may have changed, so lists reload.
    changed: RwSignal<u32>,
    abort: StoredValue<Option<AbortHandle>, LocalStorage>,
}

impl SyncRunner {
    /// Starts watching for unlocks, locks and the network. Call once, in `App`.
    pub fn provide(sessions: Sessions) -> SyncRunner {
        let runner = SyncRunner {
            sessions,
            running: RwSignal::new(false),
            progress: RwSignal::new(None),
            last: RwSignal::new(None),
            notice: RwSignal::new(None),
            changed: RwSignal::new(0),
            abort: StoredValue::new_local(None),
        };
        provide_context(runner);
        let unlocked = Memo::new(move |_| match sessions.state() {
            LockState::Unlocked(session) => Some(session.profile.id),
            _ => None,
        });
        Effect::new(move |_| match unlocked.get() {
            Some(_) => leptos::task::spawn_local(async move {
                if let Some(session) = sessions.current() {
                    // Before the first sync: recordings cut off by a crash or a lock get
                    // their hash, so their audio is sent too.
                    let unlocked_at = now();
                    if let Err(message) =
                        crate::features::fieldwork::interview::finish_interrupted_recordings(
                            &session,
                            unlocked_at,
                        )
                        .await
                    {
                        leptos::logging::warn!("interrupted recordings: {message}");
                    }
                    let last = load_state(&session).await.ok().and_then(|s| s.last);
                    runner.last.try_set(last);
                }
                runner.start_quietly();
            }),
            None => runner.stop(),
        });
        let _ = window_event_listener(leptos::ev::online, move |_| runner.start_quietly());
        let _ = window_event_listener(leptos::ev::offline, move |_| runner.stop());
        runner
    }

    /// Whether a sync is running.
    pub fn running(&self) -> bool {
        self.running.get()
    }

    /// `(done, total)` revisions of the running sync.
    pub fn progress(&self) -> Option<(usize, usize)> {
        self.progress.get()
    }

    /// How the last sync ended.
    pub fn last(&self) -> Option<SyncSummary> {
        self.last.get()
    }

    /// Why "Sync now" did not start.
    pub fn notice(&self) -> Option<String> {
        self.notice.get()
    }

    /// Tracks changes of the records' sync state.
    pub fn track_changes(&self) {
        self.changed.track();
    }

    /// After enrolling: the screen reloads and the first sync starts.
    pub fn enrolled(&self) {
        self.changed.update(|n| *n += 1);
        self.start();
    }

    /// Syncs now, saying why if it cannot.
    pub fn start(&self) {
        self.begin(true);
    }

    /// Syncs if the tablet is unlocked, enrolled, online and not revoked; silently not.
    fn start_quietly(&self) {
        self.begin(false);
    }

    fn begin(&self, asked: bool) {
        if self.running.get_untracked() {
            return;
        }
        if !http::online() {
            if asked {
                self.notice.set(Some(
                    "This tablet is offline. Everything is saved here; sync starts by itself when the tablet is back online."
                        .into(),
                ));
            }
            return;
        }
        if !asked
            && self
                .last
                .get_untracked()
                .is_some_and(|last| last.revoked.is_some())
        {
            return;
        }
        let Some(session) = self.sessions.current() else {
            return;
        };
        self.notice.set(None);
        self.running.set(true);
        self.progress.set(None);
        let runner = *self;
        let (task, handle) = abortable(async move {
            let outcome = runner.run(&session).await;
            // Dropping the session here: a lock during the run must not keep the vault key.
            drop(session);
            outcome
        });
        self.abort.set_value(Some(handle));
        leptos::task::spawn_local(async move {
            let finished = task.await;
            if let Ok(summary) = finished {
                if let Some(summary) = summary {
                    runner.last.try_set(Some(summary));
                }
                runner.abort.set_value(None);
                runner.running.try_set(false);
                runner.progress.try_set(None);
                runner.changed.try_update(|n| *n += 1);
            }
        });
    }

    /// Stops a running sync (locking, going offline). What was acknowledged stays marked;
    /// the rest is sent next time.
    pub fn stop(&self) {
        if let Some(handle) = self.abort.try_update_value(Option::take).flatten() {
            handle.abort();
        }
        if self.running.get_untracked() {
            self.running.set(false);
            self.progress.set(None);
            self.changed.update(|n| *n += 1);
        }
    }

    /// One sync; `None` when the profile is not enrolled.
    async fn run(&self, session: &Session) -> Option<SyncSummary> {
        let enrolment = match enrolment::load(session).await {
            Ok(Some(enrolment)) => enrolment,
            Ok(None) => return None,
            Err(message) => return Some(failed(message)),
        };
        let progress = self.progress;
        let changed = self.changed;
        let report = super::engine::run(session, &enrolment, move |done, total| {
            progress.try_set(Some((done, total)));
            changed.try_update(|n| *n += 1);
        })
        .await;
        Some(finish(session, &enrolment, report).await)
    }
}

fn failed(message: String) -> SyncSummary {
    SyncSummary {
        at: now(),
        ok: false,
        words: message,
        revoked: None,
        purged: Vec::new(),
        conflicts: 0,
        protocol: None,
        instructions: Vec::new(),
        confirmed: Vec::new(),
    }
}

/// Keeps how the sync ended (and the pull cursor, which the engine returns only after the
/// purges it asked for are durable), and says it in words.
async fn finish(
    session: &Session,
    _enrolment: &Enrolment,
    report: Result<super::engine::Report, String>,
) -> SyncSummary {
    let mut state = load_state(session).await.unwrap_or_default();
    let summary = match report {
        Err(message) => failed(message),
        Ok(report) => {
            if let Some(position) = report.position {
                state.cursor = position.cursor;
                state.last_seq = position.last_seq;
            }
            report.summary
        }
    };
    state.last = Some(summary.clone());
    if let Err(message) = save_state(session, &state).await {
        return failed(format!(
            "The sync ran, but its result could not be saved: {message}"
        ));
    }
    summary
}

/// The sync state provided by [`SyncRunner::provide`].
pub fn use_sync() -> SyncRunner {
    expect_context::<SyncRunner>()
}
