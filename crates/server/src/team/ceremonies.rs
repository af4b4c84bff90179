//! The passkey ceremonies' handlers: `register/start|finish`, `login/start|finish`.
//!
//! A ceremony's challenge is 32 random bytes, stored with the origin and RP id it was made for
//! and good once for 5 minutes. Every refused finish is audited with its reason
//! (`registration_refused`, `sign_in_refused`).

use attune_core::team::{CeremonyFinish, CeremonyOptions, Me, RegisterStart};
use attune_core::{MemberId, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::json;

use super::webauthn::{self, B64URL, CredentialKey, Expected};
use super::{PublicOrigin, cli, invitation_invalid, origin, passkey_refused, session};
use crate::AppState;
use crate::api::{ClientIp, json_body, now, random_hex, sha256_hex};
use crate::error::AppError;
use crate::store::{
    Ceremony, CeremonyKind, InvitationState, NewTeamMember, Passkey, RegisterOutcome, TeamMember,
};

/// How long a ceremony may take: 5 minutes.
pub const CEREMONY_MS: i64 = 5 * 60 * 1000;

fn random_b64(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    getrandom::fill(&mut buf).expect("the OS random source failed");
    B64URL.encode(buf)
}

async fn limit(state: &AppState, ip: std::net::IpAddr) -> Result<(), AppError> {
    crate::api::rate_limit(state, &state.rate_limits.team_per_address, &ip.to_string()).await
}

/// Audits a registration refused for its invitation and returns the answer.
async fn refused_invitation(app: &AppState, state: InvitationState) -> AppError {
    let why = match state {
        InvitationState::Used => "the invitation was already used",
        InvitationState::Expired => "the invitation has expired",
        _ => "the invitation is unknown",
    };
    if let Err(error) = app
        .store
        .add_team_audit(now(), None, "registration_refused", why)
        .await
    {
        return error.into();
    }
    invitation_invalid(match state {
        InvitationState::Used => {
            "This invitation was already used: ask a study admin for a new one"
        }
        InvitationState::Expired => "This invitation has expired: ask a study admin for a new one",
        _ => "Unknown invitation: check the link, or ask a study admin for a new one",
    })
}

/// Audits a refusal (by whom, if known) and returns its answer.
async fn refused(
    state: &AppState,
    action: &str,
    member: Option<&TeamMember>,
    reason: impl Into<String>,
) -> AppError {
    let reason = reason.into();
    let by = member.map(|m| (m.id.as_str(), m.name.as_str()));
    if let Err(error) = state.store.add_team_audit(now(), by, action, &reason).await {
        return error.into();
    }
    passkey_refused(reason)
}

/// The ceremony of `kind` named by `id`, spent whatever happens next.
async fn take(
    state: &AppState,
    id: &str,
    kind: CeremonyKind,
    action: &str,
) -> Result<Ceremony, AppError> {
    match state.store.take_ceremony(id, now()).await? {
        Some(ceremony) if ceremony.kind == kind => Ok(ceremony),
        _ => Err(refused(
            state,
            action,
            None,
            "the ceremony is unknown, used or expired: start again",
        )
        .await),
    }
}

async fn new_ceremony(
    state: &AppState,
    kind: CeremonyKind,
    expected: &PublicOrigin,
    invitation: Option<(String, String)>,
) -> Result<Ceremony, AppError> {
    let now = now();
    let (invitation_hash, member_name) = invitation.unzip();
    let ceremony = Ceremony {
        id: random_hex(16),
        kind,
        challenge: random_b64(32),
        origin: expected.origin.clone(),
        rp_id: expected.rp_id.clone(),
        user_handle: invitation_hash.as_ref().map(|_| random_b64(32)),
        invitation_hash,
        member_name,
        expires_at: Timestamp(now.as_millis() + CEREMONY_MS),
    };
    state.store.create_ceremony(&ceremony, now).await?;
    Ok(ceremony)
}

fn signed_in(
    ceremony: &Ceremony,
    member: &TeamMember,
    token: &str,
    expires_at: Timestamp,
) -> Response {
    let origin = PublicOrigin {
        origin: ceremony.origin.clone(),
        rp_id: ceremony.rp_id.clone(),
    };
    (
        [(
            header::SET_COOKIE,
            session::set_cookie(&origin, Some(token)),
        )],
        Json(Me {
            member_id: member.id.clone(),
            name: member.name.clone(),
            role: member.role,
            expires_at,
        }),
    )
        .into_response()
}

/// `POST /api/team/register/start` `{token, name}` -> creation options.
pub async fn register_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CeremonyOptions>, AppError> {
    limit(&state, ip).await?;
    let request: RegisterStart = json_body(body)?;
    let name = cli::clean_name(&request.name)?;
    let expected = origin::expected(&state, &headers)?;
    let invitation_hash = sha256_hex(request.token.trim());
    match state.store.team_invitation(&invitation_hash, now()).await? {
        InvitationState::Usable { .. } => {}
        other => return Err(refused_invitation(&state, other).await),
    }
    let ceremony = new_ceremony(
        &state,
        CeremonyKind::Register,
        &expected,
        Some((invitation_hash, name.clone())),
    )
    .await?;
    Ok(Json(CeremonyOptions {
        public_key: json!({
            "rp": {"id": ceremony.rp_id, "name": "Attune"},
            "user": {"id": ceremony.user_handle, "name": name, "displayName": name},
            "challenge": ceremony.challenge,
            "pubKeyCredParams": [
                {"type": "public-key", "alg": webauthn::ES256},
                {"type": "public-key", "alg": webauthn::EDDSA},
            ],
            "timeout": CEREMONY_MS,
            "excludeCredentials": [],
            "authenticatorSelection": {
                "residentKey": "required",
                "requireResidentKey": true,
                "userVerification": "preferred",
            },
            "attestation": "none",
        }),
        ceremony_id: ceremony.id,
    }))
}

/// `POST /api/team/register/finish` -> [`Me`] and the session cookie; spends the invitation.
pub async fn register_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    const ACTION: &str = "registration_refused";
    limit(&state, ip).await?;
    let request: CeremonyFinish = json_body(body)?;
    let ceremony = take(&state, &request.ceremony_id, CeremonyKind::Register, ACTION).await?;
    let (Some(invitation_hash), Some(name), Some(user_handle)) = (
        &ceremony.invitation_hash,
        &ceremony.member_name,
        &ceremony.user_handle,
    ) else {
        return Err(refused(&state, ACTION, None, "the ceremony is not a registration").await);
    };
    let expected = Expected {
        challenge: &ceremony.challenge,
        origin: &ceremony.origin,
        rp_id: &ceremony.rp_id,
        user_verification: false,
    };
    let credential = match webauthn::verify_registration(&request.credential, &expected) {
        Ok(credential) => credential,
        Err(refusal) => return Err(refused(&state, ACTION, None, refusal.0).await),
    };
    let now = now();
    let member_id = MemberId::new(now).to_string();
    let passkey = Passkey {
        credential_id: B64URL.encode(&credential.id),
        member_id: member_id.clone(),
        algorithm: credential.key.algorithm,
        public_key: B64URL.encode(&credential.key.bytes),
        sign_count: credential.sign_count,
    };
    let new_member = NewTeamMember {
        id: member_id,
        name: name.clone(),
        user_handle: user_handle.clone(),
    };
    let member = match state
        .store
        .register_team_member(invitation_hash, &new_member, &passkey, now)
        .await?
    {
        RegisterOutcome::Registered(member) => member,
        RegisterOutcome::Invitation(outcome) => {
            return Err(refused_invitation(&state, outcome).await);
        }
        RegisterOutcome::CredentialTaken => {
            return Err(refused(&state, ACTION, None, "this passkey is already registered").await);
        }
    };
    let (token, expires_at) = session::start(&state, &member, now).await?;
    let detail = format!(
        "{} registered as {} with a passkey",
        member.name,
        member.role.label()
    );
    let by = Some((member.id.as_str(), member.name.as_str()));
    state
        .store
        .add_team_audit(now, by, "member_registered", &detail)
        .await?;
    Ok(signed_in(&ceremony, &member, &token, expires_at))
}

/// `POST /api/team/login/start` (empty body or `{}`) -> request options for a discoverable
/// passkey.
pub async fn login_start(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<CeremonyOptions>, AppError> {
    limit(&state, ip).await?;
    if body
        .as_ref()
        .is_ok_and(|bytes| !bytes.iter().all(u8::is_ascii_whitespace))
    {
        let _: serde_json::Map<String, serde_json::Value> = json_body(body)?;
    }
    let expected = origin::expected(&state, &headers)?;
    let ceremony = new_ceremony(&state, CeremonyKind::Login, &expected, None).await?;
    Ok(Json(CeremonyOptions {
        public_key: json!({
            "challenge": ceremony.challenge,
            "timeout": CEREMONY_MS,
            "rpId": ceremony.rp_id,
            "allowCredentials": [],
            "userVerification": "preferred",
        }),
        ceremony_id: ceremony.id,
    }))
}

/// `POST /api/team/login/finish` -> [`Me`] and the session cookie.
pub async fn login_finish(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    const ACTION: &str = "sign_in_refused";
    limit(&state, ip).await?;
    let request: CeremonyFinish = json_body(body)?;
    let ceremony = take(&state, &request.ceremony_id, CeremonyKind::Login, ACTION).await?;
    let claim = match webauthn::assertion_claim(&request.credential) {
        Ok(claim) => claim,
        Err(refusal) => return Err(refused(&state, ACTION, None, refusal.0).await),
    };
    let Some(passkey) = state.store.passkey(&claim.credential_id).await? else {
        return Err(refused(&state, ACTION, None, "this passkey is not registered here").await);
    };
    let Some(member) = state.store.team_member(&passkey.member_id).await? else {
        return Err(refused(&state, ACTION, None, "this passkey's member is gone").await);
    };
    if claim.user_handle.as_deref() != Some(member.user_handle.as_str()) {
        let reason = "the passkey's user handle is not its member's";
        return Err(refused(&state, ACTION, Some(&member), reason).await);
    }
    let key = CredentialKey {
        algorithm: passkey.algorithm,
        bytes: B64URL.decode(&passkey.public_key).unwrap_or_default(),
    };
    let expected = Expected {
        challenge: &ceremony.challenge,
        origin: &ceremony.origin,
        rp_id: &ceremony.rp_id,
        user_verification: false,
    };
    let checked = match webauthn::verify_assertion(&request.credential, &expected, &key) {
        Ok(checked) => checked,
        Err(refusal) => return Err(refused(&state, ACTION, Some(&member), refusal.0).await),
    };
    let now = now();
    if !state
        .store
        .record_sign_in(&passkey.credential_id, checked.sign_count, now)
        .await?
    {
        let reason = format!(
            "the passkey's signature counter went back ({} after {}): it may have been cloned",
            checked.sign_count, passkey.sign_count
        );
        return Err(refused(&state, ACTION, Some(&member), reason).await);
    }
    let (token, expires_at) = session::start(&state, &member, now).await?;
    let by = Some((member.id.as_str(), member.name.as_str()));
    state
        .store
        .add_team_audit(now, by, "signed_in", "signed in with a passkey")
        .await?;
    Ok(signed_in(&ceremony, &member, &token, expires_at))
}
