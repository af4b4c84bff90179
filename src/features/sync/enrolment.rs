//! Enrolling this profile with the research server, and what enrolment leaves on the tablet.
//!
//! The fieldworker types the one-time code and the study fingerprint printed by
//! `attune-server enrol create`. The app makes the profile's Ed25519 signing key and runs
//! attune-core's enrolment ([`attune_core::sync::enrol`]): it fetches a challenge with the
//! study's public keys, checks them against the fingerprint (a mismatch stops here, before
//! the code is spent), signs the challenge with its key (proof of possession) and enrols its
//! public half with the profile's device id. It keeps what comes back (the device token, the
//! study's public key, and the study signing key it now pins) with the signing key in one
//! value sealed by the vault in the profile's database. Nothing of it is readable while the
//! tablet is locked.
//!
//! A profile enrolled before study instructions were signed has no pinned signing key: it
//! must enrol again (with a new code and the fingerprint); it keeps its device key, so the
//! server knows it as the same device.

use attune_core::sync::enrol::{EnrolDetails, EnrolError, EnrolTransport};
use attune_core::sync::{EnrolChallenge, EnrolRequest, EnrolResponse, ErrorCode, TransportError};
use attune_core::{
    DeviceId, DeviceKey, SigningError, StudyFingerprint, StudyPublicKey, StudyVerifyingKey,
    Timestamp,
};
use serde::{Deserialize, Serialize};

use super::http;
use super::transport::to_transport_error;
use crate::records::{load_device_value, save_device_value};
use crate::session::{Session, now};

/// The key of the sealed enrolment in the profile's database.
const ENROLMENT_KEY: &str = "enrolment";

/// What enrolment gave this profile. The token and the signing key are secrets: they exist
/// in clear only in memory while the profile is unlocked.
#[derive(Clone, Serialize, Deserialize)]
pub struct Enrolment {
    /// The server's origin, e.g. `https://attune.example.org`.
    pub server: String,
    /// The id the server enrolled (the profile's device id).
    pub device_id: DeviceId,
    /// The bearer token for push and pull.
    pub token: String,
    /// The Ed25519 signing key's secret bytes.
    pub device_key: [u8; 32],
    /// The study's public key (base64), which every revision is sealed to.
    pub study_public_key: String,
    /// The study signing key (base64), pinned at enrolment by the fingerprint: every study
    /// instruction must be signed by it. `None` for an enrolment from before instructions
    /// were signed: the profile must enrol again.
    #[serde(default)]
    pub study_signing_key: Option<String>,
    /// When the tablet enrolled.
    pub enrolled_at: Timestamp,
}

impl Enrolment {
    /// The signing key.
    pub fn signing_key(&self) -> DeviceKey {
        DeviceKey::from_bytes(&self.device_key)
    }

    /// The study's public key.
    pub fn study_key(&self) -> Result<StudyPublicKey, String> {
        StudyPublicKey::from_text(&self.study_public_key)
            .map_err(|e| format!("the study key saved at enrolment is not valid: {e}"))
    }

    /// The pinned study signing key.
    pub fn pinned_signing_key(&self) -> Result<StudyVerifyingKey, String> {
        let text = self
            .study_signing_key
            .as_deref()
            .ok_or_else(|| REENROL_WORDS.to_string())?;
        StudyVerifyingKey::from_text(text)
            .map_err(|e| format!("the study signing key saved at enrolment is not valid: {e}"))
    }

    /// Whether this enrolment is from before study instructions were signed.
    pub fn needs_reenrolment(&self) -> bool {
        self.study_signing_key.is_none()
    }
}

/// Why a profile enrolled before study instructions were signed cannot sync.
pub const REENROL_WORDS: &str = "This tablet was enrolled before study instructions were \
    signed. Enrol it again with a new code and the study fingerprint from your study team: \
    your work stays on this tablet.";

/// The enrolment endpoints on `fetch` (no token yet).
struct FetchEnrol<'a> {
    server: &'a str,
}

impl EnrolTransport for FetchEnrol<'_> {
    async fn enrol_challenge(&self) -> Result<EnrolChallenge, TransportError> {
        http::post_json(
            self.server,
            "/api/enrol/challenge",
            None,
            &serde_json::json!({}),
        )
        .await
        .map_err(to_transport_error)
    }

    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, TransportError> {
        http::post_json(self.server, "/api/enrol", None, request)
            .await
            .map_err(to_transport_error)
    }
}

/// The profile's enrolment, if it has enrolled.
pub async fn load(session: &Session) -> Result<Option<Enrolment>, String> {
    load_device_value(session, ENROLMENT_KEY, "the enrolment").await
}

async fn save(session: &Session, enrolment: &Enrolment) -> Result<(), String> {
    save_device_value(session, ENROLMENT_KEY, enrolment).await
}

/// This app's own origin: the only server it may talk to (the Content-Security-Policy says
/// `connect-src 'self'`, so the browser blocks any other).
pub fn own_origin() -> String {
    web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default()
}

/// Why this page may not enrol: it was opened over plain `http://` from another machine than
/// this one. Enrolment sends the one-time code and receives the tablet's token, and the
/// browser would keep no service worker (so no offline use) on such a page. `None` on
/// `https://` and on `http://localhost`, which browsers treat as secure.
pub fn insecure_connection() -> Option<String> {
    let window = web_sys::window()?;
    if window.is_secure_context() {
        return None;
    }
    Some(format!(
        "This page was opened over plain http ({}), so anyone on the network could read the          enrolment code and this tablet's key to the server, and the tablet could not work          offline. Ask your study team for the server's https:// address and open Attune from          there.",
        own_origin()
    ))
}

/// Checks the typed server address: it must be this app's own origin.
fn check_server(typed: &str) -> Result<String, String> {
    let typed = typed.trim().trim_end_matches('/');
    if typed.is_empty() {
        return Err("Type the server address.".into());
    }
    let with_scheme = if typed.contains("://") {
        typed.to_owned()
    } else {
        format!("https://{typed}")
    };
    let origin = web_sys::Url::new(&with_scheme)
        .map(|url| url.origin())
        .map_err(|_| format!("\u{201c}{typed}\u{201d} is not a web address."))?;
    let own = own_origin();
    if origin != own {
        return Err(format!(
            "This app can only send data to the server it was opened from, {own}. \
             To use {origin}, open Attune from that address and enrol there."
        ));
    }
    Ok(own)
}

/// Enrols the open profile with `server` using the one-time `code` and the study
/// `fingerprint`, requests persistent storage, and keeps the enrolment. The error is in words
/// for the fieldworker.
pub async fn enrol(
    session: &Session,
    server: &str,
    code: &str,
    fingerprint: &str,
) -> Result<Enrolment, String> {
    if let Some(why) = insecure_connection() {
        return Err(why);
    }
    let server = check_server(server)?;
    let code = code.trim();
    if code.is_empty() {
        return Err("Type the enrolment code from your study team.".into());
    }
    if fingerprint.trim().is_empty() {
        return Err(
            "Type the study fingerprint from your study team (it comes with the code).".into(),
        );
    }
    let fingerprint = StudyFingerprint::parse(fingerprint).map_err(|e| {
        format!("That study fingerprint cannot be right: {e}. Check it against the one from your study team.")
    })?;
    if !http::online() {
        return Err(
            "This tablet is offline. Connect to the internet (Wi-Fi or mobile data), then try again."
                .into(),
        );
    }
    // A profile enrolling again (enrolled before instructions were signed) keeps its key: the
    // server knows it as the same device.
    let key = match load(session).await.ok().flatten() {
        Some(earlier) => earlier.signing_key(),
        None => DeviceKey::generate().map_err(|e| e.to_string())?,
    };
    let device_name = format!("{} (Attune)", session.profile.name);
    let enrolled = attune_core::sync::enrol::enrol(
        &FetchEnrol { server: &server },
        EnrolDetails {
            code,
            fingerprint: &fingerprint,
            device_key: &key,
            device_id: Some(session.device),
            device_name: &device_name,
        },
    )
    .await
    .map_err(|e| explain_enrol_error(&e, &server, session.device))?;
    let response = enrolled.response;
    let enrolment = Enrolment {
        server,
        device_id: response.device_id,
        token: response.device_token,
        device_key: *key.to_bytes(),
        study_public_key: enrolled.study.public_key.to_text(),
        study_signing_key: Some(enrolled.study.signing_key.to_text()),
        enrolled_at: now(),
    };
    save(session, &enrolment).await.map_err(|e| {
        format!("The server enrolled this tablet, but the tablet could not keep it ({e}). Ask for a new code and try again.")
    })?;
    // Enrolled tablets hold data the team is waiting for: ask the browser to keep it.
    crate::pwa::storage_status(true).await;
    Ok(enrolment)
}

fn explain_enrol_error(error: &EnrolError, server: &str, device: DeviceId) -> String {
    let transport = match error {
        EnrolError::Transport(transport) => transport,
        EnrolError::Study(SigningError::FingerprintMismatch) => {
            return "The study fingerprint does not match this server's study. Check it letter by \
                    letter against the one from your study team. Your code was not used."
                .into();
        }
        EnrolError::Study(_) => {
            return "This server's study key is not signed by the study team's key, so this \
                    tablet did not enrol. Tell your study team. Your code was not used."
                .into();
        }
        EnrolError::StudyChanged => {
            return "The server changed its study keys during enrolment, so this tablet did not \
                    enrol. Tell your study team."
                .into();
        }
        EnrolError::WrongDevice => {
            return "The server enrolled another device id than this profile's.".into();
        }
        _ => return format!("Enrolment failed: {error}"),
    };
    match transport {
        TransportError::Network(_) => format!(
            "The server at {server} cannot be reached. Check the Wi-Fi, then try again."
        ),
        TransportError::Status { code, message, .. } => match code {
            ErrorCode::EnrolmentCodeUnknown => {
                "That code is not right. Check it letter by letter, or ask for a new one.".into()
            }
            ErrorCode::EnrolmentCodeExpired => {
                "That code has expired. Ask your study team for a new one.".into()
            }
            ErrorCode::EnrolmentCodeUsed => {
                "That code was already used. Each code works once: ask for a new one.".into()
            }
            ErrorCode::RateLimited => "Too many tries. Wait a minute, then try again.".into(),
            ErrorCode::DeviceIdTaken => format!(
                "The server already has this profile's device ({device}). An earlier try may \
                 have been cut off, or another profile on this tablet shares its id. Ask your \
                 study team to check `attune-server device list`."
            ),
            ErrorCode::StudyNotInitialised => {
                "The server has no study key yet: the study team must run `attune-server study init`."
                    .into()
            }
            ErrorCode::StudyNotSigned => {
                "The server's study has no signing key yet: the study team must run `attune-server study upgrade-key`."
                    .into()
            }
            ErrorCode::EnrolmentChallengeUnknown => {
                "The enrolment took too long or was cut off. Try again.".into()
            }
            ErrorCode::EnrolmentProofInvalid => {
                "The server did not accept this tablet's key. Try again; if it happens again, tell your study team."
                    .into()
            }
            ErrorCode::UnreadableAnswer => format!("The server's answer could not be read: {message}"),
            _ => format!("The server refused: {message}"),
        },
        other => format!("Enrolment failed: {other}"),
    }
}
