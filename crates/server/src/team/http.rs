//! The `/api/team` handlers. The ceremonies' checks are in `webauthn.rs`; every refusal of a
//! sign-in is written to the audit log with its reason.

use attune_core::team::{AuditEntry, Invitation, Me, MemberSummary, NewInvitation, Role};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::{Member, audit, origin, session};
use crate::AppState;
use crate::api::{json_body, now, sha256_hex};
use crate::error::AppError;

pub use super::ceremonies::{login_finish, login_start, register_finish, register_start};

/// How long an invitation made in the console lasts: 72 hours.
pub const INVITATION_HOURS: u32 = 72;

/// The most audit entries `GET /api/team/audit` returns.
const AUDIT_LIMIT: u32 = 1000;

/// `GET /api/team/me`.
pub async fn me(member: Member) -> Json<Me> {
    Json(Me {
        member_id: member.id,
        name: member.name,
        role: member.role,
        expires_at: member.expires_at,
    })
}

/// `POST /api/team/logout`: 204, the session deleted and the cookie cleared (also when there
/// was no session).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let expected = origin::expected(&state, &headers)?;
    if let Some(token) = session::cookie_token(&headers) {
        let hash = sha256_hex(token);
        if let Some((member, expires_at)) = state.store.team_session(&hash, now()).await? {
            state.store.delete_team_session(&hash).await?;
            let member = Member {
                id: member.id,
                name: member.name,
                role: member.role,
                expires_at,
            };
            audit(&state, Some(&member), "signed_out", "signed out").await?;
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, session::set_cookie(&expected, None))],
    )
        .into_response())
}

/// `POST /api/team/invitations` (admin).
pub async fn create_invitation(
    State(state): State<AppState>,
    member: Member,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Invitation>, AppError> {
    member.require(&[Role::Admin])?;
    let request: NewInvitation = json_body(body)?;
    let invitation = super::cli::new_invitation(
        state.store.as_ref(),
        Some(&member),
        request,
        INVITATION_HOURS,
    )
    .await?;
    Ok(Json(invitation))
}

/// `GET /api/team/members` (admin).
pub async fn members(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Vec<MemberSummary>>, AppError> {
    member.require(&[Role::Admin])?;
    Ok(Json(state.store.team_members().await?))
}

/// `GET /api/team/audit` (admin): the latest entries, newest first.
pub async fn audit_log(
    State(state): State<AppState>,
    member: Member,
) -> Result<Json<Vec<AuditEntry>>, AppError> {
    member.require(&[Role::Admin])?;
    Ok(Json(state.store.team_audit(AUDIT_LIMIT).await?))
}
