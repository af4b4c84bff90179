//! The study protocol in use: the one embedded in the app ([`default_protocol`]) until the
//! study team publishes a newer version of the same protocol, which arrives by sync, is
//! checked again here ([`Protocol::check_update`]), kept sealed in the profile's database and
//! used from then on.
//!
//! Screens read [`current`] once, when they open, and keep that protocol: an update never
//! changes a screen in the middle of a visit, and records keep naming the version they were
//! made under. Child mode remembers the version it started with ([`by_reference`]). Every
//! version received is kept ([`known`]), so a consent is always read against the form it was
//! given on.
//!
//! Each protocol read is leaked once (a few kilobytes per update, a handful per study), so
//! every screen can hold a `&'static Protocol`.

use std::cell::{Cell, RefCell};

use attune_core::ProtocolRef;
use attune_core::protocol::{Protocol, UpdateRefused, default_protocol};
use attune_core::sync::ProtocolUpdate;

use crate::records::{load_device_value, save_device_value};
use crate::session::Session;

/// The key of the sealed protocol update in the profile's database.
const PROTOCOL_KEY: &str = "study_protocol";
/// The key of every protocol update this profile ever accepted, oldest first (JSON texts):
/// consents and interviews are read against the version they were made under.
const HISTORY_KEY: &str = "study_protocol_history";

thread_local! {
    /// The protocol in use; `None` is the embedded default.
    static CURRENT: Cell<Option<&'static Protocol>> = const { Cell::new(None) };
    /// Every protocol read since the app started (the default is always known).
    static KNOWN: RefCell<Vec<&'static Protocol>> = const { RefCell::new(Vec::new()) };
}

/// The protocol in use now. Read it once when a screen opens.
pub fn current() -> &'static Protocol {
    CURRENT.get().unwrap_or_else(default_protocol)
}

/// The protocol a record or child session names, if this tablet has it; otherwise the one in
/// use.
pub fn by_reference(reference: &ProtocolRef) -> &'static Protocol {
    if default_protocol().is(reference) {
        return default_protocol();
    }
    KNOWN
        .with_borrow(|known| known.iter().copied().find(|p| p.is(reference)))
        .unwrap_or_else(current)
}

/// Every protocol version this tablet has: the embedded default and each update received
/// (kept across reloads), newest last. Consents are read against the form they were given on
/// among these ([`attune_core::consent::evaluate_given`]).
pub fn known() -> Vec<&'static Protocol> {
    let mut all = vec![default_protocol()];
    KNOWN.with_borrow(|known| all.extend(known.iter().copied()));
    all
}

/// Adds a version to the known ones (once: unlocking again leaks nothing more).
fn remember(protocol: Protocol) -> &'static Protocol {
    if let Some(known) = KNOWN.with_borrow(|known| known.iter().copied().find(|p| **p == protocol))
    {
        return known;
    }
    let protocol: &'static Protocol = Box::leak(Box::new(protocol));
    KNOWN.with_borrow_mut(|known| known.push(protocol));
    protocol
}

fn make_current(protocol: Protocol) -> &'static Protocol {
    let protocol = remember(protocol);
    CURRENT.set(Some(protocol));
    protocol
}

/// Back to the embedded default (on lock: the next profile loads its own).
pub fn reset() {
    CURRENT.set(None);
}

/// At unlock: the protocol update this profile received, if any. A stored update that no
/// longer opens or checks (a newer app with a newer built-in version) leaves the default.
pub async fn load(session: &Session) -> Result<(), String> {
    reset();
    let history =
        load_device_value::<Vec<String>>(session, HISTORY_KEY, "the study protocol history")
            .await?
            .unwrap_or_default();
    for json in &history {
        // Older versions are known for reading what was made under them, never made current.
        match Protocol::parse(json) {
            Ok(protocol) => {
                remember(protocol);
            }
            Err(error) => {
                leptos::logging::warn!("a stored protocol version is unreadable: {error}")
            }
        }
    }
    let Some(json) =
        load_device_value::<String>(session, PROTOCOL_KEY, "the study protocol update").await?
    else {
        return Ok(());
    };
    match default_protocol().check_update(&json) {
        Ok(protocol) => {
            make_current(protocol);
            Ok(())
        }
        // The app's own version caught up with the stored update: nothing to use.
        Err(UpdateRefused::NotNewer { .. }) => Ok(()),
        Err(refused) => Err(format!("the stored study protocol update: {refused}")),
    }
}

/// What happened to one protocol update received by sync.
#[derive(Clone, Debug, PartialEq)]
pub enum UpdateOutcome {
    /// Kept and in use for screens opened from now on: this version.
    Applied(u32),
    /// Not applied, and why.
    Ignored(String),
}

/// Checks the protocol updates a sync pulled, in order, against the protocol in use, and
/// keeps each accepted one sealed in the profile's database before it takes effect. Called
/// before the pull cursor is saved, so an update is never skipped.
///
/// # Errors
/// When an accepted update could not be stored: the cursor must then not be saved.
pub async fn apply_updates(
    session: &Session,
    updates: &[ProtocolUpdate],
) -> Result<Vec<UpdateOutcome>, String> {
    let mut outcomes = Vec::new();
    for update in updates {
        let protocol = match current().check_update(&update.protocol) {
            Ok(protocol) => protocol,
            Err(refused) => {
                leptos::logging::warn!("protocol update {} ignored: {refused}", update.message_id);
                outcomes.push(UpdateOutcome::Ignored(refused.to_string()));
                continue;
            }
        };
        // The history first: a version in use is always one the history holds.
        let mut history =
            load_device_value::<Vec<String>>(session, HISTORY_KEY, "the study protocol history")
                .await?
                .unwrap_or_default();
        history.push(update.protocol.clone());
        save_device_value(session, HISTORY_KEY, &history)
            .await
            .map_err(|e| format!("the study protocol update could not be saved: {e}"))?;
        save_device_value(session, PROTOCOL_KEY, &update.protocol)
            .await
            .map_err(|e| format!("the study protocol update could not be saved: {e}"))?;
        outcomes.push(UpdateOutcome::Applied(make_current(protocol).version));
    }
    Ok(outcomes)
}
