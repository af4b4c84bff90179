//! The `attune_session` cookie: 32 random bytes (hex) whose SHA-256 is the session's row.
//! `HttpOnly; SameSite=Strict; Path=/; Max-Age=28800`, and `Secure` unless the console is
//! served from `http://localhost` or `http://127.0.0.1` (browsers drop `Secure` cookies there).

use attune_core::Timestamp;
use axum::http::{HeaderMap, HeaderValue, header};

use super::PublicOrigin;
use crate::AppState;
use crate::api::{random_hex, sha256_hex};
use crate::error::AppError;
use crate::store::TeamMember;

/// The cookie's name.
pub const SESSION_COOKIE: &str = "attune_session";

/// How long a session lasts: 8 hours.
pub const SESSION_MS: i64 = 8 * 60 * 60 * 1000;

/// The session token sent in the `Cookie` header(s), if any.
pub fn cookie_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
}

/// The `Set-Cookie` value of a new session (`token`), or of a cleared one (`None`).
pub fn set_cookie(origin: &PublicOrigin, token: Option<&str>) -> HeaderValue {
    let secure = if origin.is_local_http() {
        ""
    } else {
        "; Secure"
    };
    let (value, max_age) = match token {
        Some(token) => (token, SESSION_MS / 1000),
        None => ("", 0),
    };
    let cookie = format!(
        "{SESSION_COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}{secure}"
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// Starts a session for `member`: stores its hash and returns the token and its expiry.
pub async fn start(
    state: &AppState,
    member: &TeamMember,
    now: Timestamp,
) -> Result<(String, Timestamp), AppError> {
    // 256 bits from the OS; only the SHA-256 is stored.
    let token = random_hex(32);
    let expires_at = Timestamp(now.as_millis() + SESSION_MS);
    state
        .store
        .create_team_session(&sha256_hex(&token), &member.id, expires_at, now)
        .await?;
    Ok((token, expires_at))
}
