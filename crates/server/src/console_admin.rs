//! The study admin's console endpoints: study instructions signed in the browser
//! ([`attune_core::review::instructions`]: revocations, withdrawals, protocol updates) and
//! one-time enrolment codes ([`attune_core::review::enrolment`]). Study admins only; behind
//! the same-origin guard of `/api/console`; each change is in the team's audit log. The
//! rules are `admin/`'s, the same as the command line's.

use attune_core::review::enrolment::{EnrolmentCode, NewEnrolmentCode};
use attune_core::review::instructions::{InstructionRecorded, NextSeq, SignedInstruction};
use attune_core::sync::{ControlKind, ControlMessage};
use attune_core::team::Role;
use attune_core::{StudyVerifyingKey, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;

use crate::AppState;
use crate::admin::enrolment;
use crate::admin::instructions::{self, InstructionError, Recorded};
use crate::api::{json_body, now};
use crate::error::AppError;
use crate::store::NewControlMessage;
use crate::team::{Member, audit};

/// Who may instruct the tablets and enrol them.
const ADMINS: &[Role] = &[Role::Admin];

/// How far an instruction's `created_at` may be from the server's clock: 10 minutes.
pub const CLOCK_TOLERANCE_MS: i64 = 10 * 60 * 1000;

/// `GET /api/console/instructions/next`: the number the next instruction takes.
pub async fn next_seq(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<NextSeq>, AppError> {
    member.require(ADMINS)?;
    Ok(Json(NextSeq {
        seq: state.store.next_control_seq().await?,
    }))
}

/// The study signing key in this server's database.
async fn study_signing_key(state: &AppState) -> Result<StudyVerifyingKey, AppError> {
    let study = state
        .store
        .study_keys()
        .await?
        .ok_or(AppError::StudyNotInitialised)?;
    let text = study.signing_public_key.ok_or(AppError::StudyNotSigned)?;
    StudyVerifyingKey::from_text(&text).map_err(|_| AppError::StudyNotSigned)
}

/// The instruction, if its signature is the study signing key's and its time is current.
fn verified(
    key: &StudyVerifyingKey,
    signed: SignedInstruction,
    server_now: Timestamp,
) -> Result<NewControlMessage, AppError> {
    let message = ControlMessage {
        id: 0,
        seq: signed.seq,
        kind: signed.kind,
        created_at: signed.created_at,
        signature: signed.signature,
    };
    key.verify_control(&message).map_err(|_| {
        AppError::InstructionSignatureInvalid(
            "The instruction's signature is not the study signing key's: nothing was recorded. \
             Open this server's study key file in the console and try again."
                .into(),
        )
    })?;
    if (message.created_at.as_millis() - server_now.as_millis()).abs() > CLOCK_TOLERANCE_MS {
        return Err(AppError::InstructionSignatureInvalid(
            "The instruction was signed more than 10 minutes away from the server's clock: \
             nothing was recorded. Check this computer's date and time, then try again."
                .into(),
        ));
    }
    Ok(NewControlMessage {
        seq: message.seq,
        kind: message.kind,
        created_at: message.created_at,
        signature: message.signature,
    })
}

/// What the audit log says an instruction was (no secret, nothing the tablet's data holds).
fn described(kind: &ControlKind) -> String {
    match kind {
        ControlKind::Revocation { device_id, reason } => {
            format!("revoked device {device_id}: {}", reason.trim())
        }
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => format!("withdrew {participant_code} ({participant_id})"),
        ControlKind::ProtocolUpdate { protocol } => {
            match attune_core::protocol::Protocol::parse(protocol) {
                Ok(p) => format!("published protocol {:?} version {}", p.id, p.version),
                Err(_) => "published a protocol version that does not parse".into(),
            }
        }
        ControlKind::Unknown => "an unknown instruction".into(),
    }
}

/// `POST /api/console/instructions`: records a study instruction the console signed.
pub async fn record_instruction(
    State(state): State<AppState>,
    member: Member,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<InstructionRecorded>, AppError> {
    member.require(ADMINS)?;
    let signed: SignedInstruction = json_body(body)?;
    let key = study_signing_key(&state).await?;
    let message = verified(&key, signed, now())?;
    let what = described(&message.kind);
    match instructions::record(&state.store, &message).await {
        Ok(Recorded::Done {
            seq,
            message_id,
            sentence,
        }) => {
            let detail = format!("{what} (study instruction {seq}, message {message_id})");
            audit(&state, Some(&member), "instruction_recorded", &detail).await?;
            Ok(Json(InstructionRecorded {
                seq,
                message: sentence,
            }))
        }
        Ok(Recorded::AlreadyDone(sentence)) => Err(AppError::InstructionRefused(sentence)),
        Ok(Recorded::SeqTaken) => Err(AppError::InstructionSeqTaken { seq: message.seq }),
        Err(InstructionError::Refused(refusal)) => {
            let detail = format!("{what}: refused, {refusal}");
            audit(&state, Some(&member), "instruction_refused", &detail).await?;
            Err(AppError::InstructionRefused(refusal.to_string()))
        }
        Err(InstructionError::Store(error)) => Err(error.into()),
    }
}

/// `POST /api/console/enrolment-codes`: a one-time enrolment code. The audit log names the
/// fieldworker, never the code.
pub async fn create_enrolment_code(
    State(state): State<AppState>,
    member: Member,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EnrolmentCode>, AppError> {
    member.require(ADMINS)?;
    let request: NewEnrolmentCode = json_body(body)?;
    let fieldworker = request.checked().map_err(AppError::Malformed)?;
    study_signing_key(&state).await?;
    let (code, expires_at) =
        enrolment::create(&state.store, &fieldworker, request.valid_hours, now()).await?;
    let detail = format!(
        "enrolment code for {fieldworker}, valid {} hours",
        request.valid_hours
    );
    audit(&state, Some(&member), "enrolment_code_created", &detail).await?;
    Ok(Json(EnrolmentCode { code, expires_at }))
}
