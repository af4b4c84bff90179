//! `POST /api/console/team-records`: the study team's own records (safeguarding
//! acknowledgements, conflict resolutions), sealed to the study key and signed with the study
//! signing key in the console ([`attune_core::review::team_records`]). The server cannot read
//! them: it checks the signature with the study signing key it holds, stores them as posted
//! and hands them back in the snapshot. Admins and researchers only, behind the same-origin
//! guard, audited without their contents.

use attune_core::review::team_records::{
    MAX_TEAM_RECORD_BYTES, NewTeamRecord, TeamRecordAdded, TeamRecordProblem,
};
use attune_core::signing::StudyVerifyingKey;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::api::now;
use crate::console::REVIEWERS;
use crate::error::AppError;
use crate::store::TeamRecordOutcome;
use crate::team::{Member, audit};

/// Stores a team record whose signature is the study signing key's: 201 when stored, 200
/// when the same record was already stored, 409 when another record holds its id.
pub async fn add(
    State(state): State<AppState>,
    member: Member,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    member.require(REVIEWERS)?;
    let bytes = body.map_err(|rejection| AppError::Malformed(rejection.body_text()))?;
    if bytes.len() > MAX_TEAM_RECORD_BYTES {
        return Err(AppError::TooLarge {
            limit: MAX_TEAM_RECORD_BYTES,
        });
    }
    let record: NewTeamRecord =
        serde_json::from_slice(&bytes).map_err(|error| AppError::Malformed(error.to_string()))?;
    let study = state
        .store
        .study_keys()
        .await?
        .ok_or(AppError::StudyNotInitialised)?;
    let key = study
        .signing_public_key
        .as_deref()
        .ok_or(AppError::StudyNotSigned)
        .and_then(|text| {
            StudyVerifyingKey::from_text(text)
                .map_err(|_| AppError::Malformed("the study signing key is unreadable".into()))
        })?;
    record.verify(&key).map_err(|problem| match problem {
        TeamRecordProblem::Malformed(why) => AppError::Malformed(why),
        _ => AppError::TeamRecordSignatureInvalid,
    })?;
    let (status, stored) = match state
        .store
        .add_team_record(&record, &member.id, now())
        .await?
    {
        TeamRecordOutcome::Added(stored) => (StatusCode::CREATED, stored),
        TeamRecordOutcome::AlreadyStored(stored) => (StatusCode::OK, stored),
        TeamRecordOutcome::IdTaken => return Err(AppError::TeamRecordIdTaken),
    };
    if status == StatusCode::CREATED {
        audit(
            &state,
            Some(&member),
            "team_record_added",
            &format!("team record {}", stored.id),
        )
        .await?;
    }
    let answer = TeamRecordAdded {
        id: stored.id,
        created_at: stored.created_at,
    };
    Ok((status, Json(answer)).into_response())
}
