//! Passkey ceremonies checked as WebAuthn Level 3 says: §7.1 (registering a new credential)
//! and §7.2 (verifying an authentication assertion). Pure functions: the handlers bring the
//! stored ceremony and passkey.
//!
//! Attestation is not verified: registration asks for `attestation: "none"`, as is usual for
//! passkeys, and whatever statement an authenticator sends anyway is ignored (the server
//! learns nothing from it it would trust). The credential's public key is taken from the
//! authenticator data, as §7.1 says.

use base64::Engine as _;
use base64::alphabet::URL_SAFE;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::cbor::{self, Value};

/// base64url without padding (as `toJSON()` writes it); padding is accepted when reading.
pub const B64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// COSE algorithm ES256 (ECDSA on P-256 with SHA-256).
pub const ES256: i64 = -7;
/// COSE algorithm EdDSA (Ed25519 here).
pub const EDDSA: i64 = -8;

/// Authenticator data flags.
const FLAG_UP: u8 = 0x01;
const FLAG_UV: u8 = 0x04;
const FLAG_BE: u8 = 0x08;
const FLAG_BS: u8 = 0x10;
const FLAG_AT: u8 = 0x40;
const FLAG_ED: u8 = 0x80;

/// The longest credential id §5.8.3 allows.
const MAX_CREDENTIAL_ID: usize = 1023;

/// Why a ceremony was refused (for the client and the audit log: never a secret).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refusal(pub String);

fn refuse<T>(reason: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(reason.into()))
}

/// What the ceremony must match: the challenge sent (base64url), the origin and RP id.
#[derive(Clone, Copy, Debug)]
pub struct Expected<'a> {
    pub challenge: &'a str,
    pub origin: &'a str,
    pub rp_id: &'a str,
    /// `userVerification: "required"` (the console asks for "preferred").
    pub user_verification: bool,
}

/// A credential's public key, checked to be a valid key of its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialKey {
    /// [`ES256`] or [`EDDSA`].
    pub algorithm: i64,
    /// SEC1 uncompressed point (ES256) or the 32 bytes (EdDSA).
    pub bytes: Vec<u8>,
}

/// A registered credential.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewCredential {
    pub id: Vec<u8>,
    pub key: CredentialKey,
    pub sign_count: u32,
}

/// A checked assertion: who it claims to be and the counter to store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckedAssertion {
    pub sign_count: u32,
}

#[derive(Deserialize)]
struct CredentialJson<T> {
    id: String,
    #[serde(rename = "rawId")]
    raw_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    response: T,
}

#[derive(Deserialize)]
struct AttestationJson {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "attestationObject")]
    attestation_object: String,
}

#[derive(Deserialize)]
struct AssertionJson {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "authenticatorData")]
    authenticator_data: String,
    signature: String,
    #[serde(rename = "userHandle")]
    user_handle: Option<String>,
}

#[derive(Deserialize)]
struct ClientData {
    #[serde(rename = "type")]
    kind: String,
    challenge: String,
    origin: String,
    #[serde(rename = "crossOrigin", default)]
    cross_origin: Option<bool>,
    #[serde(rename = "topOrigin", default)]
    top_origin: Option<String>,
}

fn b64(field: &str, text: &str) -> Result<Vec<u8>, Refusal> {
    B64URL
        .decode(text.trim())
        .or_else(|_| refuse(format!("{field} is not base64url")))
}

fn parse<T: serde::de::DeserializeOwned>(
    credential: &serde_json::Value,
) -> Result<CredentialJson<T>, Refusal> {
    let parsed: CredentialJson<T> =
        serde_json::from_value(credential.clone()).or_else(|error| {
            refuse(format!(
                "the credential is not what toJSON() gives: {error}"
            ))
        })?;
    if parsed.kind != "public-key" {
        return refuse("the credential's type is not public-key");
    }
    if let Some(raw_id) = &parsed.raw_id
        && b64("rawId", raw_id)? != b64("id", &parsed.id)?
    {
        return refuse("the credential's id and rawId differ");
    }
    Ok(parsed)
}

/// §7.1 steps 5-12 and §7.2 steps 10-15: the client data's type, challenge and origin.
fn check_client_data(raw: &[u8], kind: &str, expected: &Expected<'_>) -> Result<(), Refusal> {
    let data: ClientData = serde_json::from_slice(raw)
        .or_else(|_| refuse("clientDataJSON is not the JSON a browser makes"))?;
    if data.kind != kind {
        return refuse(format!(
            "clientDataJSON's type is {:?}, not {kind:?}",
            data.kind
        ));
    }
    if b64("the challenge", &data.challenge)? != b64("the challenge", expected.challenge)? {
        return refuse("the challenge is not the one this ceremony sent");
    }
    if data.origin != expected.origin {
        return refuse(format!(
            "the origin {:?} is not this console's ({})",
            data.origin, expected.origin
        ));
    }
    if data.cross_origin == Some(true) || data.top_origin.is_some() {
        return refuse("the ceremony ran in a frame of another site");
    }
    Ok(())
}

/// Authenticator data (§6.1), split.
struct AuthData<'a> {
    rp_id_hash: &'a [u8],
    flags: u8,
    sign_count: u32,
    /// The attested credential data (AT): credential id and COSE key.
    attested: Option<(Vec<u8>, Value)>,
}

fn auth_data(bytes: &[u8]) -> Result<AuthData<'_>, Refusal> {
    if bytes.len() < 37 {
        return refuse("the authenticator data is shorter than 37 bytes");
    }
    let flags = bytes[32];
    let sign_count = u32::from_be_bytes([bytes[33], bytes[34], bytes[35], bytes[36]]);
    let mut rest = &bytes[37..];
    let mut attested = None;
    if flags & FLAG_AT != 0 {
        if rest.len() < 18 {
            return refuse("the attested credential data is cut short");
        }
        let length = usize::from(u16::from_be_bytes([rest[16], rest[17]]));
        rest = &rest[18..];
        if length > MAX_CREDENTIAL_ID || rest.len() < length {
            return refuse("the credential id is too long or cut short");
        }
        let id = rest[..length].to_vec();
        let (key, used) = cbor::decode_prefix(&rest[length..])
            .or_else(|error| refuse(format!("the credential public key: {error}")))?;
        rest = &rest[length + used..];
        attested = Some((id, key));
    }
    if flags & FLAG_ED != 0 {
        let (_, used) = cbor::decode_prefix(rest)
            .or_else(|error| refuse(format!("the extensions: {error}")))?;
        rest = &rest[used..];
    }
    if !rest.is_empty() {
        return refuse("bytes left after the authenticator data");
    }
    Ok(AuthData {
        rp_id_hash: &bytes[..32],
        flags,
        sign_count,
        attested,
    })
}

/// §7.1 steps 13-17 / §7.2 steps 15-17: RP id hash and flags.
fn check_auth_data(data: &AuthData<'_>, expected: &Expected<'_>) -> Result<(), Refusal> {
    if data.rp_id_hash != Sha256::digest(expected.rp_id.as_bytes()).as_slice() {
        return refuse(format!("the passkey is not for {}", expected.rp_id));
    }
    if data.flags & FLAG_UP == 0 {
        return refuse("the authenticator did not check that a person is present");
    }
    if expected.user_verification && data.flags & FLAG_UV == 0 {
        return refuse("the authenticator did not verify the user");
    }
    if data.flags & FLAG_BE == 0 && data.flags & FLAG_BS != 0 {
        return refuse("the authenticator data's backup flags contradict each other");
    }
    Ok(())
}

/// The COSE key (RFC 9052/9053) of an ES256 or EdDSA credential, checked to be a valid key.
pub fn cose_key(key: &Value) -> Result<CredentialKey, Refusal> {
    let int = |label| key.get_int(label).and_then(Value::as_int);
    let bytes = |label| key.get_int(label).and_then(Value::as_bytes);
    match (int(1), int(3)) {
        // kty EC2, alg ES256, crv P-256, x, y.
        (Some(2), Some(-7)) => {
            let (Some(1), Some(x), Some(y)) = (int(-1), bytes(-2), bytes(-3)) else {
                return refuse("the ES256 key is not a P-256 key with x and y");
            };
            if x.len() != 32 || y.len() != 32 {
                return refuse("the ES256 key's coordinates are not 32 bytes");
            }
            let point = [&[0x04][..], x, y].concat();
            if p256::ecdsa::VerifyingKey::from_sec1_bytes(&point).is_err() {
                return refuse("the ES256 key is not a point on P-256");
            }
            Ok(CredentialKey {
                algorithm: ES256,
                bytes: point,
            })
        }
        // kty OKP, alg EdDSA, crv Ed25519, x.
        (Some(1), Some(-8)) => {
            let (Some(6), Some(x)) = (int(-1), bytes(-2)) else {
                return refuse("the EdDSA key is not an Ed25519 key");
            };
            let Ok(x) = <[u8; 32]>::try_from(x) else {
                return refuse("the Ed25519 key is not 32 bytes");
            };
            if ed25519_dalek::VerifyingKey::from_bytes(&x).is_err() {
                return refuse("the Ed25519 key is not a valid point");
            }
            Ok(CredentialKey {
                algorithm: EDDSA,
                bytes: x.to_vec(),
            })
        }
        _ => refuse("the passkey's algorithm is neither ES256 (-7) nor EdDSA (-8)"),
    }
}

/// §7.1: checks a `RegistrationResponseJSON` and returns the new credential.
pub fn verify_registration(
    credential: &serde_json::Value,
    expected: &Expected<'_>,
) -> Result<NewCredential, Refusal> {
    let parsed: CredentialJson<AttestationJson> = parse(credential)?;
    let client_data = b64("clientDataJSON", &parsed.response.client_data_json)?;
    check_client_data(&client_data, "webauthn.create", expected)?;
    let object = b64("attestationObject", &parsed.response.attestation_object)?;
    let object = cbor::decode(&object)
        .or_else(|error| refuse(format!("the attestation object: {error}")))?;
    let (Some(_fmt), Some(_statement), Some(auth)) = (
        object.get_text("fmt").and_then(Value::as_text),
        object.get_text("attStmt").and_then(Value::entries),
        object.get_text("authData").and_then(Value::as_bytes),
    ) else {
        return refuse("the attestation object lacks fmt, attStmt or authData");
    };
    let data = auth_data(auth)?;
    check_auth_data(&data, expected)?;
    let Some((id, key)) = &data.attested else {
        return refuse("the authenticator data holds no credential");
    };
    if *id != b64("id", &parsed.id)? {
        return refuse("the credential id is not the one in the authenticator data");
    }
    Ok(NewCredential {
        id: id.clone(),
        key: cose_key(key)?,
        sign_count: data.sign_count,
    })
}

/// An `AuthenticationResponseJSON`'s credential id and user handle, read before its passkey
/// is looked up.
pub struct AssertionClaim {
    /// base64url, as stored.
    pub credential_id: String,
    /// base64url, as stored; `None` if the authenticator sent none.
    pub user_handle: Option<String>,
}

/// Reads who an assertion claims to be.
pub fn assertion_claim(credential: &serde_json::Value) -> Result<AssertionClaim, Refusal> {
    let parsed: CredentialJson<AssertionJson> = parse(credential)?;
    let normal = |field, text: &str| b64(field, text).map(|bytes| B64URL.encode(bytes));
    Ok(AssertionClaim {
        credential_id: normal("id", &parsed.id)?,
        user_handle: match parsed.response.user_handle.as_deref() {
            Some(handle) if !handle.is_empty() => Some(normal("userHandle", handle)?),
            _ => None,
        },
    })
}

/// §7.2: checks an assertion's client data, authenticator data and signature with the
/// passkey's key, and returns its counter (compared with the stored one by the store).
pub fn verify_assertion(
    credential: &serde_json::Value,
    expected: &Expected<'_>,
    key: &CredentialKey,
) -> Result<CheckedAssertion, Refusal> {
    let parsed: CredentialJson<AssertionJson> = parse(credential)?;
    let client_data = b64("clientDataJSON", &parsed.response.client_data_json)?;
    check_client_data(&client_data, "webauthn.get", expected)?;
    let auth = b64("authenticatorData", &parsed.response.authenticator_data)?;
    let data = auth_data(&auth)?;
    check_auth_data(&data, expected)?;
    let signature = b64("signature", &parsed.response.signature)?;
    let signed = [&auth[..], Sha256::digest(&client_data).as_slice()].concat();
    if !signature_verifies(key, &signed, &signature) {
        return refuse("the signature does not verify with this passkey");
    }
    Ok(CheckedAssertion {
        sign_count: data.sign_count,
    })
}

fn signature_verifies(key: &CredentialKey, message: &[u8], signature: &[u8]) -> bool {
    match key.algorithm {
        ES256 => {
            use p256::ecdsa::signature::Verifier as _;
            let (Ok(public), Ok(signature)) = (
                p256::ecdsa::VerifyingKey::from_sec1_bytes(&key.bytes),
                p256::ecdsa::Signature::from_der(signature),
            ) else {
                return false;
            };
            public.verify(message, &signature).is_ok()
        }
        EDDSA => {
            let (Ok(public), Ok(signature)) = (
                <[u8; 32]>::try_from(key.bytes.as_slice()),
                ed25519_dalek::Signature::from_slice(signature),
            ) else {
                return false;
            };
            ed25519_dalek::VerifyingKey::from_bytes(&public)
                .is_ok_and(|public| public.verify_strict(message, &signature).is_ok())
        }
        _ => false,
    }
}

#[cfg(test)]
#[path = "webauthn_tests.rs"]
mod tests;
