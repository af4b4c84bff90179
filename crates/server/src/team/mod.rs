//! The study team of the researcher console: members who sign in with passkeys, their roles,
//! sessions, invitations and audit log. Bodies are [`attune_core::team`]'s.
//!
//! - [`Member`]: the axum extractor of the signed-in member (401 `sign_in_required`), with
//!   [`Member::require`] (403 `forbidden`); [`audit`] appends to the team's audit log.
//! - [`same_origin_only`]: the CSRF guard on every non-GET `/api/team/*` request (apply it to
//!   any other console API too, e.g. `/api/console`).
//! - `origin.rs`: the expected origin and RP id (`--public-url`, or `http://localhost:PORT`).
//! - `session.rs`: the `attune_session` cookie; `cbor.rs` and `webauthn.rs`: passkey
//!   ceremonies verified per WebAuthn §7.1/§7.2; `http.rs`: the `/api/team` handlers;
//!   `cli.rs`: `attune-server team invite|list`.

mod cbor;
mod ceremonies;
pub mod cli;
pub mod http;
mod origin;
mod session;
mod webauthn;

use attune_core::Timestamp;
use attune_core::team::Role;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};

pub use origin::PublicOrigin;
pub use session::SESSION_COOKIE;

use crate::AppState;
use crate::api::{now, sha256_hex};
use crate::error::AppError;

/// The `/api/team` routes (nested under `/api` by [`crate::router`]), behind
/// [`same_origin_only`].
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/register/start", post(http::register_start))
        .route("/register/finish", post(http::register_finish))
        .route("/login/start", post(http::login_start))
        .route("/login/finish", post(http::login_finish))
        .route("/logout", post(http::logout))
        .route("/me", get(http::me))
        .route("/invitations", post(http::create_invitation))
        .route("/members", get(http::members))
        .route("/audit", get(http::audit_log))
        .layer(middleware::from_fn_with_state(state, same_origin_only))
}

/// The signed-in study team member, from the `attune_session` cookie. Rejects with 401
/// `sign_in_required` when the cookie is missing, unknown or expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// The member's id.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their role.
    pub role: Role,
    /// When their session ends.
    pub expires_at: Timestamp,
}

impl Member {
    /// `Ok` if the member's role is one of `allowed`, else 403 `forbidden`.
    pub fn require(&self, allowed: &[Role]) -> Result<(), AppError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                role: self.role.label(),
            })
        }
    }
}

impl FromRequestParts<AppState> for Member {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = session::cookie_token(&parts.headers).ok_or(AppError::SignInRequired)?;
        let (member, expires_at) = state
            .store
            .team_session(&sha256_hex(token), now())
            .await?
            .ok_or(AppError::SignInRequired)?;
        Ok(Member {
            id: member.id,
            name: member.name,
            role: member.role,
            expires_at,
        })
    }
}

/// Appends to the team's audit log: `action` (e.g. `signed_in`), by `member` (`None`: the CLI
/// or someone not signed in), with `detail` for people. Never put a secret in `detail`.
pub async fn audit(
    state: &AppState,
    member: Option<&Member>,
    action: &str,
    detail: &str,
) -> Result<(), AppError> {
    state
        .store
        .add_team_audit(
            now(),
            member.map(|m| (m.id.as_str(), m.name.as_str())),
            action,
            detail,
        )
        .await?;
    Ok(())
}

/// CSRF guard (`axum::middleware::from_fn_with_state(state, same_origin_only)`): a request
/// that is not GET, HEAD or OPTIONS passes only with an `Origin` header equal to the expected
/// origin ([`PublicOrigin`]), or, without `Origin`, with `Sec-Fetch-Site: same-origin`.
/// Anything else gets 403 `cross_site_refused`. The session cookie is `SameSite=Strict` as
/// well; this guard does not rely on it.
pub async fn same_origin_only(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    ) {
        return next.run(request).await;
    }
    let headers = request.headers();
    let allowed = match headers.get(header::ORIGIN) {
        Some(sent) => origin::expected(&state, headers)
            .is_ok_and(|expected| sent.to_str().is_ok_and(|sent| sent == expected.origin)),
        None => headers
            .get("sec-fetch-site")
            .is_some_and(|site| site.as_bytes() == b"same-origin"),
    };
    if allowed {
        next.run(request).await
    } else {
        AppError::CrossSiteRefused.into_response()
    }
}

/// The error answer of a refused ceremony.
pub(crate) fn passkey_refused(reason: impl Into<String>) -> AppError {
    AppError::PasskeyRefused(reason.into())
}

/// The error answer of an invitation that cannot be used.
pub(crate) fn invitation_invalid(message: &'static str) -> AppError {
    AppError::InvitationInvalid { message }
}
