//! What has reached the server: the per-visit status list of the sync screen, from the
//! revisions' synced flags.

use attune_core::{RecordStore, Timestamp};

use crate::features::fieldwork::data;
use crate::records::explain;
use crate::session::Session;

/// Where a visit's records are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VisitSyncState {
    /// Some record (or attachment) is only on this tablet.
    SavedOnTablet,
    /// Some record is not confirmed yet and a sync is running.
    Sending,
    /// The server durably holds every record of the visit, attachments included.
    Confirmed,
}

impl VisitSyncState {
    /// The words shown.
    pub fn words(self) -> &'static str {
        match self {
            VisitSyncState::SavedOnTablet => "Saved on this tablet",
            VisitSyncState::Sending => "Sending\u{2026}",
            VisitSyncState::Confirmed => "Confirmed on the server",
        }
    }

    /// The CSS class of the badge.
    pub fn class(self) -> &'static str {
        match self {
            VisitSyncState::SavedOnTablet => "badge sync-local",
            VisitSyncState::Sending => "badge sync-sending",
            VisitSyncState::Confirmed => "badge sync-confirmed",
        }
    }
}

/// One row of the list.
#[derive(Clone, Debug)]
pub struct VisitSync {
    /// The visit's address in the app.
    pub href: String,
    /// Participant codes, e.g. "C01, K01" (never names: the screen may be shown around).
    pub codes: String,
    /// When the visit took place.
    pub date: Timestamp,
    /// Whether some participant of the visit is no longer on this tablet (withdrawn and
    /// purged at the research team's request).
    pub withdrawn: bool,
    /// Records of the visit not yet confirmed.
    pub unsynced: usize,
    /// Records of the visit.
    pub records: usize,
    /// Whether the server holds every record.
    pub all_synced: bool,
}

impl VisitSync {
    /// The state to show, given whether a sync is running.
    pub fn state(&self, syncing: bool) -> VisitSyncState {
        match (self.all_synced, syncing) {
            (true, _) => VisitSyncState::Confirmed,
            (false, true) => VisitSyncState::Sending,
            (false, false) => VisitSyncState::SavedOnTablet,
        }
    }
}

/// Every visit, newest first, with how much of it the server holds. A record counts as
/// confirmed when its latest revision is: the outbox sends a record's revisions in order.
pub async fn visits(session: &Session) -> Result<Vec<VisitSync>, String> {
    let participants = data::participants(session).await?;
    let mut rows = Vec::new();
    for visit in data::visits(session).await? {
        let stored = session
            .store
            .list_latest_by_visit(visit.id)
            .await
            .map_err(|e| explain(&e))?;
        let unsynced = stored.iter().filter(|r| !r.synced).count();
        let present: Vec<_> = visit
            .body
            .participants
            .iter()
            .filter_map(|id| participants.iter().find(|p| p.id == *id))
            .collect();
        let withdrawn = present.len() < visit.body.participants.len();
        let codes = present
            .iter()
            .map(|p| p.body.code.clone())
            .collect::<Vec<_>>()
            .join(", ");
        rows.push(VisitSync {
            href: format!("/visits/{}", visit.id),
            codes,
            withdrawn,
            date: visit.body.date,
            unsynced,
            records: stored.len(),
            all_synced: unsynced == 0,
        });
    }
    Ok(rows)
}

/// A time in words for the fieldworker, e.g. "Tue 3 June, 14:05".
pub fn when(time: Timestamp) -> String {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(time.0 as f64));
    let day: String = date.to_date_string().into();
    format!("{day}, {:02}:{:02}", date.get_hours(), date.get_minutes())
}
