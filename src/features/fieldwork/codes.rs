//! Participant codes on this tablet: the pool of codes the research server reserved for it
//! (attune-core's [`CodePool`], kept sealed among the profile's device values under
//! [`CODE_POOL_KEY`]), the code of a new participant, and provisional labels.
//!
//! A new participant takes the next reserved code of their group. With none left (offline
//! since the pool ran out, never synced, or not enrolled) they get a provisional label such
//! as `C-new-1`, shown as provisional until a sync reserves a code and the sync engine
//! writes it into their record ([`attune_core::codes`]).

use std::cell::Cell;
use std::collections::HashSet;

use attune_core::codes::{CODE_POOL_KEY, CodeKeeper, CodePool};
use attune_core::fieldwork::PurgeBody;
use attune_core::{Kind, StoreError};

use super::data;
use crate::records::{self, load_device_value, save_device_value};
use crate::session::Session;

thread_local! {
    /// A change of the pool is under way (in this tab): the next one waits for it.
    static BUSY: Cell<bool> = const { Cell::new(false) };
}

/// One change of the pool at a time; released when dropped, also when the sync task that
/// holds it is aborted.
struct Turn;

impl Turn {
    async fn wait() -> Turn {
        while BUSY.with(Cell::get) {
            gloo_timers::future::TimeoutFuture::new(5).await;
        }
        BUSY.with(|busy| busy.set(true));
        Turn
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        BUSY.with(|busy| busy.set(false));
    }
}

/// The code pool of the open profile, kept sealed in its database.
pub struct SessionCodes<'a> {
    session: &'a Session,
}

impl<'a> SessionCodes<'a> {
    /// The pool of `session`'s profile.
    pub fn new(session: &'a Session) -> Self {
        Self { session }
    }
}

impl CodeKeeper for SessionCodes<'_> {
    async fn update<R>(&self, change: impl FnOnce(&mut CodePool) -> R) -> Result<R, StoreError> {
        let _turn = Turn::wait().await;
        let mut pool: CodePool =
            load_device_value(self.session, CODE_POOL_KEY, "the participant codes")
                .await
                .map_err(StoreError::Backend)?
                .unwrap_or_default();
        let result = change(&mut pool);
        save_device_value(self.session, CODE_POOL_KEY, &pool)
            .await
            .map_err(StoreError::Backend)?;
        Ok(result)
    }
}

/// Every code and provisional label on this tablet, withdrawn and purged participants'
/// included: none is given again.
pub async fn used_codes(session: &Session) -> Result<HashSet<String>, String> {
    let mut used: HashSet<String> = data::participants(session)
        .await?
        .into_iter()
        .map(|p| p.body.code)
        .collect();
    for revision in records::latest_of_kind(session, Kind::Purge).await? {
        if let Ok(body) = revision.body_json::<PurgeBody>() {
            used.insert(body.participant_code);
        }
    }
    Ok(used)
}

/// The code of a new participant of the group with `prefix`: the next code reserved for this
/// tablet, or a provisional label. Marked as given (kept) before it is returned, so a
/// participant saved with it never shares it.
pub async fn new_code(session: &Session, prefix: char) -> Result<String, String> {
    let used = used_codes(session).await?;
    SessionCodes::new(session)
        .update(|pool| pool.new_code(prefix, &used))
        .await
        .map_err(|e| {
            format!(
                "the participant codes could not be kept: {}",
                records::explain(&e)
            )
        })
}
