//! Saving the study team's own records (safeguarding acknowledgements, conflict
//! resolutions): the body is sealed to the study key and signed with the study signing key
//! here, in the page (core's `review::team_records`), and only then sent. The server cannot
//! read it, and cannot change it without the signature failing when the console reads it.

use attune_core::Timestamp;
use attune_core::review::team_records::{
    TEAM_RECORDS_PATH, TeamAction, TeamRecordAdded, TeamRecordBody, seal_and_sign,
};

use crate::api;
use crate::app::Unlocked;
use crate::error::Error;
use crate::screens::key;

/// Now, by this computer's clock.
pub fn now() -> Timestamp {
    Timestamp(js_sys::Date::now() as i64)
}

/// Seals, signs and sends a team record doing `action`, with `note`, made by `by` (the
/// member's name); then the study as the server holds it now, opened again.
///
/// # Errors
/// [`Error::NoSigningKey`] for a version 1 key file, [`Error::Seal`], or the server's refusal.
pub async fn save(
    unlocked: &Unlocked,
    action: TeamAction,
    note: String,
    by: String,
) -> Result<Unlocked, Error> {
    let signing = unlocked.signing.as_ref().ok_or(Error::NoSigningKey)?;
    let body = TeamRecordBody {
        action,
        note,
        by,
        at: now(),
    };
    let record = seal_and_sign(&body, &unlocked.key.public_key(), signing)
        .map_err(|problem| Error::Seal(problem.to_string()))?;
    let _: TeamRecordAdded = api::post(TEAM_RECORDS_PATH, &record).await?;
    key::reload(unlocked).await
}
