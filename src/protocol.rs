//! The study protocol in use: the one embedded in the app ([`default_protocol`]) until the
//! study team publishes a newer version of the same protocol, which arrives by sync, is
//! checked again here ([`Protocol::check_update`]), kept sealed in the profile's database and
//! used from then on.
//!
//! Screens read [`current`] once, when they open, and keep that protocol: an update never
//! changes a screen in the middle of a visit, and records keep naming the version they were
//! made under. Child mode remembers the version it started with ([`by_reference`]).
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

fn make_current(protocol: Protocol) -> &'static Protocol {
    let protocol: &'static Protocol = Box::leak(Box::new(protocol));
    KNOWN.with_borrow_mut(|known| known.push(protocol));
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
        save_device_value(session, PROTOCOL_KEY, &update.protocol)
            .await
            .map_err(|e| format!("the study protocol update could not be saved: {e}"))?;
        outcomes.push(UpdateOutcome::Applied(make_current(protocol).version));
    }
    Ok(outcomes)
}
