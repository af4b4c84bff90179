//! Enrolment, sans-I/O: the steps a device takes to enrol, over an [`EnrolTransport`].
//!
//! 1. `POST /api/enrol/challenge`: a one-time challenge and the study's public keys.
//! 2. The keys are checked against the study fingerprint the fieldworker typed
//!    ([`verify_study_keys`]): the signing key must have that fingerprint and must have signed
//!    the study key. A mismatch stops here, before the one-time code is spent, so a mistyped
//!    fingerprint costs nothing.
//! 3. `POST /api/enrol` with the code, the device's public key and its proof of possession
//!    (the device key's signature over the challenge, code, device id and public key).
//! 4. The answer must carry the same study keys as the challenge; the device then pins the
//!    signing key ([`Enrolled::study`]).

use thiserror::Error;

use super::TransportError;
use super::api::{EnrolChallenge, EnrolRequest, EnrolResponse};
use crate::envelope::DeviceKey;
use crate::ids::DeviceId;
use crate::signing::{SigningError, StudyFingerprint, VerifiedStudyKeys, verify_study_keys};

/// How a device reaches the server's enrolment endpoints (no device token yet).
#[allow(async_fn_in_trait)]
pub trait EnrolTransport {
    /// `POST /api/enrol/challenge`.
    async fn enrol_challenge(&self) -> Result<EnrolChallenge, TransportError>;

    /// `POST /api/enrol`.
    async fn enrol(&self, request: &EnrolRequest) -> Result<EnrolResponse, TransportError>;
}

/// What a device enrols with.
#[derive(Debug)]
pub struct EnrolDetails<'a> {
    /// The one-time enrolment code, as typed.
    pub code: &'a str,
    /// The study fingerprint, as given with the code.
    pub fingerprint: &'a StudyFingerprint,
    /// The key the device registers (and proves it holds).
    pub device_key: &'a DeviceKey,
    /// The device's own id; the server makes one if `None`.
    pub device_id: Option<DeviceId>,
    /// The name shown in `attune-server device list`.
    pub device_name: &'a str,
}

/// A device enrolled: its id and token, and the study keys it verified.
#[derive(Debug)]
pub struct Enrolled {
    /// The server's answer (device id and token).
    pub response: EnrolResponse,
    /// The study keys, checked against the fingerprint: seal to `public_key`, pin
    /// `signing_key`.
    pub study: VerifiedStudyKeys,
}

/// Why enrolment stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnrolError {
    /// The server could not be reached, or refused.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// The study keys the server sent do not match the fingerprint, or the study key is not
    /// signed by the signing key. Before the code is spent when found at the challenge.
    #[error("the server's study keys cannot be trusted: {0}")]
    Study(SigningError),
    /// The enrolment answer carries other study keys than the challenge did.
    #[error("the server's study keys changed during enrolment")]
    StudyChanged,
    /// The server enrolled another device id than the one sent.
    #[error("the server enrolled another device id than this device's")]
    WrongDevice,
}

/// Enrols a device: challenge, fingerprint check, proof of possession, enrolment.
///
/// # Errors
/// An [`EnrolError`]: nothing is to be kept from a failed enrolment.
pub async fn enrol<T: EnrolTransport>(
    transport: &T,
    details: EnrolDetails<'_>,
) -> Result<Enrolled, EnrolError> {
    let challenge = transport.enrol_challenge().await?;
    let study =
        verify_study_keys(&challenge.study, details.fingerprint).map_err(EnrolError::Study)?;
    let proof =
        details
            .device_key
            .sign_enrolment(&challenge.challenge, details.code, details.device_id);
    let request = EnrolRequest {
        code: details.code.to_owned(),
        device_public_key: details.device_key.public_key().to_text(),
        device_name: details.device_name.to_owned(),
        device_id: details.device_id,
        challenge: challenge.challenge,
        proof,
    };
    let response = transport.enrol(&request).await?;
    if response.study != challenge.study || response.study_public_key != challenge.study.public_key
    {
        return Err(EnrolError::StudyChanged);
    }
    if details.device_id.is_some_and(|id| id != response.device_id) {
        return Err(EnrolError::WrongDevice);
    }
    Ok(Enrolled { response, study })
}
