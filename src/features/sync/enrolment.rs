//! Enrolling this profile with the research server, and what enrolment leaves on the tablet.
//!
//! The fieldworker types the one-time code printed by `attune-server enrol create`. The app
//! makes the profile's Ed25519 signing key, sends its public half with the profile's device
//! id to `POST /api/enrol`, and keeps what comes back (the device token, the study's public
//! key) with the signing key in one value sealed by the vault in the profile's database.
//! Nothing of it is readable while the tablet is locked.

use attune_core::sync::{EnrolRequest, EnrolResponse};
use attune_core::{DeviceId, DeviceKey, StudyPublicKey, Timestamp};
use serde::{Deserialize, Serialize};

use super::http::{self, HttpError};
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

/// Enrols the open profile with `server` using the one-time `code`, requests persistent
/// storage, and keeps the enrolment. The error is in words for the fieldworker.
pub async fn enrol(session: &Session, server: &str, code: &str) -> Result<Enrolment, String> {
    let server = check_server(server)?;
    let code = code.trim();
    if code.is_empty() {
        return Err("Type the enrolment code from your study team.".into());
    }
    if !http::online() {
        return Err(
            "This tablet is offline. Connect to the internet (Wi-Fi or mobile data), then try again."
                .into(),
        );
    }
    let key = DeviceKey::generate().map_err(|e| e.to_string())?;
    let request = EnrolRequest {
        code: code.to_owned(),
        device_public_key: key.public_key().to_text(),
        device_name: format!("{} (Attune)", session.profile.name),
        device_id: Some(session.device),
    };
    let response: EnrolResponse = http::post_json(&server, "/api/enrol", None, &request)
        .await
        .map_err(|e| explain_enrol_error(&e, &server, session.device))?;
    if response.device_id != session.device {
        return Err("The server enrolled another device id than this profile's.".into());
    }
    StudyPublicKey::from_text(&response.study_public_key)
        .map_err(|e| format!("The server sent a study key that is not valid: {e}"))?;
    let enrolment = Enrolment {
        server,
        device_id: response.device_id,
        token: response.device_token,
        device_key: *key.to_bytes(),
        study_public_key: response.study_public_key,
        enrolled_at: now(),
    };
    save(session, &enrolment).await.map_err(|e| {
        format!("The server enrolled this tablet, but the tablet could not keep it ({e}). Ask for a new code and try again.")
    })?;
    // Enrolled tablets hold data the team is waiting for: ask the browser to keep it.
    crate::pwa::storage_status(true).await;
    Ok(enrolment)
}

fn explain_enrol_error(error: &HttpError, server: &str, device: DeviceId) -> String {
    match error {
        HttpError::Network(_) => format!(
            "The server at {server} cannot be reached. Check the Wi-Fi, then try again."
        ),
        HttpError::Status { code, message, .. } => match code.as_str() {
            "enrolment_code_unknown" => {
                "That code is not right. Check it letter by letter, or ask for a new one.".into()
            }
            "enrolment_code_expired" => {
                "That code has expired. Ask your study team for a new one.".into()
            }
            "enrolment_code_used" => {
                "That code was already used. Each code works once: ask for a new one.".into()
            }
            "rate_limited" => "Too many tries. Wait a minute, then try again.".into(),
            "device_id_taken" => format!(
                "The server already has this profile's device ({device}). An earlier try may \
                 have been cut off, or another profile on this tablet shares its id. Ask your \
                 study team to check `attune-server device list`."
            ),
            "study_not_initialised" => {
                "The server has no study key yet: the study team must run `attune-server study init`."
                    .into()
            }
            _ => format!("The server refused: {message}"),
        },
        HttpError::Body(message) => format!("The server's answer could not be read: {message}"),
    }
}
