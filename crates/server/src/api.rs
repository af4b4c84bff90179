//! The sync API: enrolment, push and pull. JSON in and out (the bodies are
//! [`attune_core::sync::api`]'s, shared with devices); every refusal is an [`AppError`].
//!
//! - `POST /api/enrol/challenge` -> `{challenge, expires_at, study: {public_key, signing_key,
//!   public_key_signature}}`: a one-time challenge (10 minutes) and the study's public keys,
//!   which the device checks against the study fingerprint before spending its code. Rate
//!   limited per client address ([`RateLimits`]).
//! - `POST /api/enrol` `{code, device_public_key, device_name, device_id?, challenge, proof}` ->
//!   `{device_id, device_token, study_public_key, study}`. `proof` is the device key's
//!   signature over the challenge, code, device id and public key: without a valid one (a
//!   device registering a key it does not hold) enrolment is refused. The challenge is used
//!   up either way. Rate limited per client address, per code and per device id
//!   ([`RateLimits`]).
//! - `POST /api/push` (Bearer device token) `{envelopes: [Envelope]}` ->
//!   `{results: [{record_id, rev, hash, outcome, reason?}]}` with outcome `stored`,
//!   `already_stored` or `conflict` (with its `reason`: `rev_taken`, `gap`,
//!   `parent_mismatch`, `owned_by_another_device`, `code_taken`; see
//!   [`Store::push_checked`](crate::store::Store::push_checked)), sent only after the batch's
//!   transaction committed. A batch with any bad envelope is refused whole: nothing from it is
//!   stored; so is a batch of more than [`MAX_PUSH_ENVELOPES`] (413 `too_many_envelopes`).
//! - `GET /api/pull?after=CURSOR` (Bearer device token) ->
//!   `{messages: [{id, seq, kind, ..., created_at, signature}], cursor, revoked}`: the signed
//!   control messages as the study team's CLI made them, unchanged. `revoked` is `null` or
//!   `{reason, statement}` with the signed revocation (a revoked device may still pull, to
//!   learn why).
//! - `POST /api/codes/reserve` (Bearer device token) `{prefixes: [{prefix, want, after}]}` ->
//!   `{blocks: [{id, prefix, first, count}]}`: participant-code numbers reserved for the
//!   device ([`reserve_codes`]).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use attune_core::sync::{
    EnrolChallenge, EnrolRequest, EnrolResponse, ErrorCode, MAX_PUSH_ENVELOPES, PullResponse,
    PushRequest, PushResponse, PushResult, ReserveRequest, ReserveResponse, Revocation, StudyKeys,
    normalise_enrolment_code,
};
use attune_core::{DeviceId, DevicePublicKey, Timestamp};
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::AppState;
use crate::error::AppError;
use crate::store::{Device, DeviceStatus, EnrolOutcome, NewDevice, RateLimit};

/// The largest request body accepted (a batch of envelopes).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// SHA-256 hex: how tokens and enrolment codes are stored.
pub fn sha256_hex(text: &str) -> String {
    attune_core::hex::encode(&Sha256::digest(text.as_bytes()))
}

/// Enrolment codes are typed by hand: case, spaces and dashes do not matter.
pub fn normalise_code(code: &str) -> String {
    normalise_enrolment_code(code)
}

/// How long an enrolment challenge is accepted.
pub const ENROL_CHALLENGE_MS: i64 = 10 * 60 * 1000;

/// The current time as a core [`Timestamp`].
pub fn now() -> Timestamp {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0);
    Timestamp(millis)
}

/// `bytes` random bytes from the OS, as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0; bytes];
    getrandom::fill(&mut buf).expect("the OS random source failed");
    attune_core::hex::encode(&buf)
}

/// The rate limits, counted in the database ([`Store::count_attempt`](crate::store::RateLimitStore::count_attempt))
/// so that every server instance on one database counts the same attempts. Fixed windows;
/// an attempt over a limit is refused with 429 `rate_limited` (and still counted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimits {
    /// `POST /api/enrol` per client address: 10 a minute.
    pub enrol_per_address: RateLimit,
    /// `POST /api/enrol` per enrolment code (its SHA-256, normalised), from any address: 10
    /// in 10 minutes.
    pub enrol_per_code: RateLimit,
    /// `POST /api/enrol` per device id sent, from any address: 10 in 10 minutes.
    pub enrol_per_device: RateLimit,
    /// `POST /api/enrol/challenge` per client address (each is a database row until used or
    /// expired): 30 a minute.
    pub challenge_per_address: RateLimit,
    /// Passkey ceremony requests (start and finish) per client address: 60 a minute.
    pub team_per_address: RateLimit,
}

const MINUTE_MS: i64 = 60 * 1000;

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            enrol_per_address: RateLimit::new("enrol_address", 10, MINUTE_MS),
            enrol_per_code: RateLimit::new("enrol_code", 10, 10 * MINUTE_MS),
            enrol_per_device: RateLimit::new("enrol_device", 10, 10 * MINUTE_MS),
            challenge_per_address: RateLimit::new("challenge_address", 30, MINUTE_MS),
            team_per_address: RateLimit::new("team_address", 60, MINUTE_MS),
        }
    }
}

/// Counts an attempt against `limit` for `key`; 429 `rate_limited` when over it.
pub(crate) async fn rate_limit(
    state: &AppState,
    limit: &RateLimit,
    key: &str,
) -> Result<(), AppError> {
    let attempt = state.store.count_attempt(limit, key, now()).await?;
    if attempt.allowed {
        Ok(())
    } else {
        tracing::info!(bucket = limit.bucket, "rate limited");
        Err(AppError::RateLimited)
    }
}

/// The client's address: the connection's peer, or, when the peer is a trusted reverse
/// proxy, the address it forwarded ([`client_address`]).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
        let forwarded: Vec<&str> = parts
            .headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        Ok(ClientIp(client_address(
            peer,
            &forwarded,
            &state.trusted_proxies,
        )))
    }
}

/// Who the client is. A peer that is not a trusted proxy is the client, whatever it claims
/// in `X-Forwarded-For`. From a trusted proxy, the forwarded addresses are read from the
/// right (the nearest hop first): the first that is not itself a trusted proxy is the
/// client. Anything unreadable stops the walk at the last address known to be true.
pub fn client_address(peer: IpAddr, forwarded_for: &[&str], trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let hops: Vec<&str> = forwarded_for
        .iter()
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        let Ok(address) = hop.parse::<IpAddr>() else {
            return client;
        };
        client = address;
        if !trusted.contains(&address) {
            return address;
        }
    }
    client
}

/// The device whose `Authorization: Bearer` token was sent, whatever its status.
pub struct AuthenticatedDevice(pub Device);

impl FromRequestParts<AppState> for AuthenticatedDevice {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or(AppError::MissingToken)?;
        state
            .store
            .device_by_token(&sha256_hex(token))
            .await?
            .map(AuthenticatedDevice)
            .ok_or(AppError::UnknownToken)
    }
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, AppError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge {
                limit: MAX_BODY_BYTES,
            }
        } else {
            AppError::Malformed(rejection.body_text())
        }
    })?;
    serde_json::from_slice(&bytes).map_err(|error| AppError::Malformed(error.to_string()))
}

/// The study's public keys for devices: refused before `study init`, and for a study whose
/// signing key was never registered (devices would have nothing to pin).
async fn study_keys(state: &AppState) -> Result<StudyKeys, AppError> {
    let study = state
        .store
        .study_keys()
        .await?
        .ok_or(AppError::StudyNotInitialised)?;
    match (study.signing_public_key, study.public_key_signature) {
        (Some(signing_key), Some(public_key_signature)) => Ok(StudyKeys {
            public_key: study.public_key,
            signing_key,
            public_key_signature,
        }),
        _ => Err(AppError::StudyNotSigned),
    }
}

pub async fn enrol_challenge(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
) -> Result<Json<EnrolChallenge>, AppError> {
    rate_limit(
        &state,
        &state.rate_limits.challenge_per_address,
        &ip.to_string(),
    )
    .await?;
    let study = study_keys(&state).await?;
    let now = now();
    // 256 bits from the OS.
    let challenge = random_hex(32);
    let expires_at = Timestamp(now.as_millis() + ENROL_CHALLENGE_MS);
    state
        .store
        .create_enrol_challenge(&challenge, expires_at, now)
        .await?;
    Ok(Json(EnrolChallenge {
        challenge,
        expires_at,
        study,
    }))
}

pub async fn enrol(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<EnrolResponse>, AppError> {
    let limits = state.rate_limits;
    rate_limit(&state, &limits.enrol_per_address, &ip.to_string()).await?;
    let request: EnrolRequest = json_body(body)?;
    // Never the raw code: its SHA-256, as the codes are stored.
    let code_hash = sha256_hex(&normalise_code(&request.code));
    rate_limit(&state, &limits.enrol_per_code, &code_hash).await?;
    if let Some(device_id) = request.device_id {
        rate_limit(&state, &limits.enrol_per_device, &device_id.to_string()).await?;
    }
    let public_key = DevicePublicKey::from_text(&request.device_public_key)
        .map_err(|error| AppError::Malformed(error.to_string()))?;
    let device_name = request.device_name.trim();
    if device_name.is_empty() || device_name.chars().count() > 100 {
        return Err(AppError::Malformed(
            "device_name must have 1 to 100 characters".into(),
        ));
    }
    let study = study_keys(&state).await?;
    let now = now();
    // Used up whatever happens next: a challenge is good for one attempt.
    if !state
        .store
        .take_enrol_challenge(&request.challenge, now)
        .await?
    {
        return Err(AppError::EnrolmentRefused {
            code: ErrorCode::EnrolmentChallengeUnknown,
            message: "The enrolment challenge is unknown, used or expired: start the \
                      enrolment again (an app too old to send one must be updated)",
        });
    }
    // Proof of possession: the key registered must have signed this challenge, code and id.
    if public_key
        .verify_enrolment(
            &request.challenge,
            &request.code,
            request.device_id,
            &request.proof,
        )
        .is_err()
    {
        return Err(AppError::EnrolmentRefused {
            code: ErrorCode::EnrolmentProofInvalid,
            message: "The enrolment request is not signed by the key it registers",
        });
    }
    let device_id = request.device_id.unwrap_or_else(|| DeviceId::new(now));
    // 256 bits from the OS; only its SHA-256 is stored.
    let device_token = random_hex(32);
    let outcome = state
        .store
        .enrol_device(
            &code_hash,
            NewDevice {
                id: device_id.to_string(),
                name: device_name.to_owned(),
                public_key: public_key.to_text(),
                token_hash: sha256_hex(&device_token),
            },
            now,
        )
        .await?;
    let refused = |code, message| Err(AppError::EnrolmentRefused { code, message });
    match outcome {
        EnrolOutcome::Enrolled(device) => {
            tracing::info!(device_id = %device.id, "device enrolled");
            Ok(Json(EnrolResponse {
                device_id,
                device_token,
                study_public_key: study.public_key.clone(),
                study,
            }))
        }
        EnrolOutcome::UnknownCode => {
            refused(ErrorCode::EnrolmentCodeUnknown, "Unknown enrolment code")
        }
        EnrolOutcome::Expired => refused(
            ErrorCode::EnrolmentCodeExpired,
            "This enrolment code has expired: ask for a new one",
        ),
        EnrolOutcome::AlreadyUsed => refused(
            ErrorCode::EnrolmentCodeUsed,
            "This enrolment code was already used: ask for a new one",
        ),
        EnrolOutcome::DeviceIdTaken => Err(AppError::DeviceIdTaken),
    }
}

pub(crate) fn active(device: Device) -> Result<Device, AppError> {
    match device.status {
        DeviceStatus::Active => Ok(device),
        DeviceStatus::Revoked => Err(AppError::DeviceRevoked {
            reason: device.revoked_reason.unwrap_or_default(),
        }),
    }
}

pub async fn push(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<PushResponse>, AppError> {
    let device = active(device)?;
    let request: PushRequest = json_body(body)?;
    if request.envelopes.len() > MAX_PUSH_ENVELOPES {
        return Err(AppError::TooManyEnvelopes {
            sent: request.envelopes.len(),
            limit: MAX_PUSH_ENVELOPES,
        });
    }
    let device_key = DevicePublicKey::from_text(&device.public_key)
        .map_err(|error| AppError::Store(crate::store::StoreError::Corrupt(error.to_string())))?;
    // Everything is checked before anything is stored: one bad item refuses the batch.
    for (index, envelope) in request.envelopes.iter().enumerate() {
        if envelope.device_id.to_string() != device.id {
            return Err(AppError::WrongDevice { index });
        }
    }
    let request = verify_all(request, device_key).await?;
    let outcomes = state
        .store
        .push_checked(&device.id, &request.envelopes, now())
        .await?;
    let results = request
        .envelopes
        .iter()
        .zip(outcomes)
        .map(|(envelope, pushed)| PushResult {
            record_id: envelope.record_id,
            rev: envelope.rev,
            hash: envelope.hash,
            outcome: pushed.outcome,
            reason: pushed.reason,
        })
        .collect();
    Ok(Json(PushResponse { results }))
}

/// Checks every envelope's signature, off the async threads and on every core (a batch of
/// 100 is some milliseconds of Ed25519), reporting the first bad one by its index.
async fn verify_all(
    request: PushRequest,
    device_key: DevicePublicKey,
) -> Result<PushRequest, AppError> {
    /// Fewer than this per thread is not worth a thread.
    const PER_THREAD: usize = 16;
    tokio::task::spawn_blocking(move || {
        let envelopes = &request.envelopes;
        let threads = std::thread::available_parallelism()
            .map_or(1, usize::from)
            .min(envelopes.len().div_ceil(PER_THREAD))
            .max(1);
        let chunk = envelopes.len().div_ceil(threads).max(1);
        let check = |start: usize, part: &[attune_core::Envelope]| {
            part.iter().enumerate().try_for_each(|(offset, envelope)| {
                let index = start + offset;
                envelope.verify(&device_key).map_err(|error| match error {
                    attune_core::EnvelopeError::BadSignature => AppError::BadSignature { index },
                    other => AppError::Malformed(format!("envelope {index}: {other}")),
                })
            })
        };
        let first_error = std::thread::scope(|scope| {
            let mut parts = envelopes.chunks(chunk).enumerate();
            let (_, first) = parts.next().unwrap_or((0, &[]));
            let others: Vec<_> = parts
                .map(|(number, part)| scope.spawn(move || check(number * chunk, part)))
                .collect();
            // The lowest index fails first: this thread's part, then the others in order.
            let mut results = vec![check(0, first)];
            results.extend(others.into_iter().map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            }));
            results.into_iter().find_map(Result::err)
        });
        match first_error {
            Some(error) => Err(error),
            None => Ok(request),
        }
    })
    .await
    // A panic in a check is a bug: it goes on as the handler's own panic would.
    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
}

/// `GET /api/pull` query.
#[derive(Debug, Deserialize)]
pub struct PullQuery {
    #[serde(default)]
    pub after: i64,
}

pub async fn pull(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    query: Result<Query<PullQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<PullResponse>, AppError> {
    let Query(query) = query.map_err(|error| AppError::Malformed(error.body_text()))?;
    if device.status == DeviceStatus::Revoked {
        let statement = state.store.revocation_statement(&device.id).await?;
        return Ok(Json(PullResponse {
            messages: Vec::new(),
            cursor: query.after,
            revoked: Some(Revocation {
                reason: device.revoked_reason.unwrap_or_default(),
                statement,
            }),
        }));
    }
    let messages = state.store.control_messages_after(query.after).await?;
    let cursor = messages.last().map_or(query.after, |message| message.id);
    Ok(Json(PullResponse {
        messages,
        cursor,
        revoked: None,
    }))
}

/// `POST /api/codes/reserve`: participant-code numbers for the device, per prefix (see
/// [`attune_core::codes`] and [`crate::store::Store::reserve_codes`]). Each prefix must be
/// one capital letter, given at most once; a `want` over
/// [`MAX_BLOCK`](attune_core::codes::MAX_BLOCK) is cut to it. A revoked device is refused.
pub async fn reserve_codes(
    State(state): State<AppState>,
    AuthenticatedDevice(device): AuthenticatedDevice,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReserveResponse>, AppError> {
    let device = active(device)?;
    let mut request: ReserveRequest = json_body(body)?;
    let mut seen = std::collections::HashSet::new();
    for (index, want) in request.prefixes.iter_mut().enumerate() {
        let mut chars = want.prefix.chars();
        let letter = match (chars.next(), chars.next()) {
            (Some(letter), None) if letter.is_ascii_uppercase() => letter,
            _ => {
                return Err(AppError::Malformed(format!(
                    "prefixes[{index}].prefix must be one capital letter A-Z"
                )));
            }
        };
        if !seen.insert(letter) {
            return Err(AppError::Malformed(format!(
                "prefixes[{index}].prefix {letter} is asked for twice"
            )));
        }
        if want.after < 0 {
            return Err(AppError::Malformed(format!(
                "prefixes[{index}].after must not be negative"
            )));
        }
        want.want = want.want.min(attune_core::codes::MAX_BLOCK);
    }
    let blocks = state
        .store
        .reserve_codes(&device.id, &request.prefixes, now())
        .await?;
    Ok(Json(ReserveResponse { blocks }))
}

#[cfg(test)]
mod client_address_tests {
    use super::client_address;
    use std::net::IpAddr;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_forwarded_address_counts_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.2");
        let trusted = [proxy];
        // A client that is not the proxy cannot choose its address.
        assert_eq!(
            client_address(ip("203.0.113.9"), &["198.51.100.1"], &trusted),
            ip("203.0.113.9")
        );
        // Through the proxy: the address it saw.
        assert_eq!(
            client_address(proxy, &["198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        // A client that sends its own X-Forwarded-For through the proxy: the proxy appends
        // the real one, which is read first.
        assert_eq!(
            client_address(proxy, &["1.2.3.4, 198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(proxy, &["1.2.3.4", "198.51.100.1"], &trusted),
            ip("198.51.100.1")
        );
        // Two proxies in a row, both trusted; garbage stops at the last true address.
        let both = [proxy, ip("10.0.0.3")];
        assert_eq!(
            client_address(proxy, &["198.51.100.1, 10.0.0.3"], &both),
            ip("198.51.100.1")
        );
        assert_eq!(client_address(proxy, &["not-an-ip"], &trusted), proxy);
        assert_eq!(client_address(proxy, &[], &trusted), proxy);
        assert_eq!(
            client_address(proxy, &["2001:db8::1"], &trusted),
            ip("2001:db8::1")
        );
    }
}
