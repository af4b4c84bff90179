//! `/api/console`: what the researcher console reads. Everything it answers is still sealed
//! (envelopes, recordings as uploaded): the console verifies and opens it in the browser with
//! the study key, which the server never holds. Signed-in study team members only (admins
//! and researchers; coders see only their assigned recordings, through the coding API), and
//! every read is in the team's audit log. The team's own records are posted to
//! `/api/console/team-records` (`team_records.rs`).

use attune_core::review::Snapshot;
use attune_core::team::Role;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::AppError;
use crate::team::{Member, audit};

/// Who may review the study's data.
pub(crate) const REVIEWERS: &[Role] = &[Role::Admin, Role::Researcher];

/// `GET /api/console/snapshot`: every device, stored envelope, kept conflict, withdrawal and
/// published protocol.
pub async fn snapshot(State(state): State<AppState>, member: Member) -> Result<Response, AppError> {
    member.require(REVIEWERS)?;
    let store = &state.store;
    let snapshot = Snapshot {
        devices: store.list_devices().await?,
        envelopes: store.envelopes().await?,
        conflicts: store.kept_conflicts().await?,
        withdrawals: store.withdrawals().await?,
        protocols: store
            .published_protocols()
            .await?
            .into_iter()
            .map(|p| p.protocol)
            .collect(),
        team_records: store.team_records().await?,
    };
    audit(
        &state,
        Some(&member),
        "data_read",
        &format!(
            "read {} sealed revisions and {} conflicts",
            snapshot.envelopes.len(),
            snapshot.conflicts.len()
        ),
    )
    .await?;
    Ok(([(CACHE_CONTROL, "no-store")], Json(snapshot)).into_response())
}

/// `GET /api/console/blobs/{blob_id}`: a recording's sealed bytes, from its first complete
/// upload (the console checks the blob id and SHA-256 inside after opening it).
pub async fn blob(
    State(state): State<AppState>,
    member: Member,
    Path(blob_id): Path<String>,
) -> Result<Response, AppError> {
    member.require(REVIEWERS)?;
    let not_found = || AppError::NotFound {
        path: format!("/api/console/blobs/{blob_id}"),
    };
    if blob_id.parse::<attune_core::ids::BlobId>().is_err() {
        return Err(not_found());
    }
    for upload in state.store.uploads_of_blob(&blob_id).await? {
        if let Some(sealed) = state.blobs.read(&upload.sha256).await? {
            audit(
                &state,
                Some(&member),
                "recording_read",
                &format!("blob {blob_id}"),
            )
            .await?;
            return Ok((
                [
                    (CACHE_CONTROL, "no-store"),
                    (CONTENT_TYPE, "application/octet-stream"),
                ],
                Body::from(sealed),
            )
                .into_response());
        }
    }
    Err(not_found())
}
