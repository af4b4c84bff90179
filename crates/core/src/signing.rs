//! The study signing key: how the study team instructs devices without trusting the server.
//!
//! `attune-server study init` makes, besides the study's encryption key pair, an Ed25519
//! **study signing key**. Its secret half lives only in the passphrase-protected study key
//! file ([`StudyKeyFile`](crate::StudyKeyFile), version 2), with the researchers; the server
//! holds its public half. The signing key signs:
//!
//! - the study's public encryption key ([`StudySigningKey::sign_study_key`]), so a device
//!   knows the key it seals every revision to is the study team's;
//! - every control message ([`StudySigningKey::sign_control`]): withdrawals, protocol
//!   updates and revocations, each with its number `seq` (1, 2, 3...).
//!
//! A device pins the signing key at enrolment: the fieldworker types the study's
//! [`StudyFingerprint`] (printed by `attune-server enrol create`) and the device refuses a
//! server whose signing key does not match it or whose study key is not signed by it
//! ([`verify_study_keys`]). From then on a compromised server can delay or withhold
//! instructions, never forge them; the numbering shows a device an instruction that is
//! missing or replayed.
//!
//! Enrolment also proves possession of the device's key: the device signs the server's
//! one-time challenge with the key it registers ([`DeviceKey::sign_enrolment`]).
//!
//! # Encodings
//!
//! Canonical encodings ([`crate::encoding`]), each under its own domain tag:
//!
//! - study key statement, `attune.study-key-statement.v1`: the 32 bytes of the study public
//!   key;
//! - control message, `attune.control-message.v1`: `seq` (u64), the kind's name (string:
//!   `withdrawal`, `protocol_update`, `revocation`), the kind's fields, `created_at` (i64
//!   milliseconds). A withdrawal's fields are the participant id (16 bytes) and code
//!   (string); a protocol update's the protocol file's JSON (string); a revocation's the
//!   device id (16 bytes) and the reason (string);
//! - fingerprint: SHA-256 of `attune.study-fingerprint.v1` then the signing key's 32 bytes;
//!   its first 100 bits as 20 characters of Crockford's base32, shown in groups of 4;
//! - enrolment proof, `attune.enrol-proof.v1`: the challenge (string), the enrolment code as
//!   normalised by [`normalise_enrolment_code`] (string), the device id (optional, 16 bytes),
//!   the device public key (32 bytes).
//! - team record, `attune.team-record.v1`: the record's id (16 bytes), then its sealed bytes
//!   (a byte string); see [`crate::review::team_records`].
//!
//! Signatures are Ed25519 (verified strictly), as base64 text.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hpke::Serializable as _;
use sha2::{Digest, Sha256};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::Encoder;
use crate::envelope::{DeviceKey, DevicePublicKey, StudyPublicKey};
use crate::ids::{DeviceId, TeamRecordId};
use crate::sync::api::{ControlKind, ControlMessage, StudyKeys, normalise_enrolment_code};
use crate::time::Timestamp;

const SIGNATURE_LEN: usize = 64;
/// Crockford's base32: no I, L, O or U, so nothing is misread.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
/// Characters in a fingerprint: 20 x 5 = 100 bits.
const FINGERPRINT_CHARS: usize = 20;

/// Why a signature, key or fingerprint was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SigningError {
    /// A key or signature is not well-formed (base64, length, curve point).
    #[error("malformed key or signature: {0}")]
    Malformed(String),
    /// The signature does not verify with the key.
    #[error("the signature does not verify with the study signing key")]
    BadSignature,
    /// A control message of a kind this version cannot encode, so cannot check.
    #[error("a study instruction of a kind this version of Attune does not know")]
    UnknownKind,
    /// The signing key does not have the fingerprint the study team gave.
    #[error("the server's study signing key does not match the study fingerprint")]
    FingerprintMismatch,
    /// The platform's secure random source failed.
    #[error("the secure random source failed")]
    Randomness,
}

fn signature_text(signature: ed25519_dalek::Signature) -> String {
    BASE64.encode(signature.to_bytes())
}

fn parse_signature(text: &str) -> Result<ed25519_dalek::Signature, SigningError> {
    let bytes: [u8; SIGNATURE_LEN] = BASE64
        .decode(text.trim())
        .map_err(|_| SigningError::Malformed("the signature is not base64".into()))?
        .try_into()
        .map_err(|_| SigningError::Malformed("a signature is 64 bytes".into()))?;
    Ok(ed25519_dalek::Signature::from_bytes(&bytes))
}

/// The study's Ed25519 signing key. Only ever in memory after
/// [`StudyKeyFile::open_keys`](crate::StudyKeyFile::open_keys) (or at `study init`).
pub struct StudySigningKey(pub(crate) SigningKey);

impl fmt::Debug for StudySigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "StudySigningKey(public: {})",
            self.public_key().to_text()
        )
    }
}

impl StudySigningKey {
    /// A new random signing key.
    ///
    /// # Errors
    /// [`SigningError::Randomness`] if the secure random source fails.
    pub fn generate() -> Result<Self, SigningError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        getrandom::fill(seed.as_mut()).map_err(|_| SigningError::Randomness)?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    pub(crate) fn from_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    pub(crate) fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public half: devices pin it at enrolment.
    pub fn public_key(&self) -> StudyVerifyingKey {
        StudyVerifyingKey(self.0.verifying_key())
    }

    /// Signs the study's public encryption key (stored on the server, handed to devices at
    /// enrolment). Base64.
    pub fn sign_study_key(&self, study: &StudyPublicKey) -> String {
        signature_text(self.0.sign(&study_key_statement(study)))
    }

    /// Signs a control message's `seq`, kind and time. Base64.
    ///
    /// # Errors
    /// [`SigningError::UnknownKind`] for [`ControlKind::Unknown`], which has nothing to sign.
    pub fn sign_control(
        &self,
        seq: u64,
        kind: &ControlKind,
        created_at: Timestamp,
    ) -> Result<String, SigningError> {
        let bytes = control_signed_bytes(seq, kind, created_at).ok_or(SigningError::UnknownKind)?;
        Ok(signature_text(self.0.sign(&bytes)))
    }
}

impl StudySigningKey {
    /// Signs a study team record: its id and sealed bytes ([`team_record_signed_bytes`]).
    /// Base64.
    pub fn sign_team_record(&self, id: &TeamRecordId, sealed: &[u8]) -> String {
        signature_text(self.0.sign(&team_record_signed_bytes(id, sealed)))
    }
}

/// The bytes a team record's signature covers: its id, then its sealed bytes.
pub fn team_record_signed_bytes(id: &TeamRecordId, sealed: &[u8]) -> Vec<u8> {
    Encoder::new("attune.team-record.v1")
        .fixed(id.as_bytes())
        .bytes(sealed)
        .finish()
}

/// The study signing key's public half. Text form: base64 of its 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct StudyVerifyingKey(VerifyingKey);

impl fmt::Debug for StudyVerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StudyVerifyingKey({})", self.to_text())
    }
}

impl StudyVerifyingKey {
    /// The key as base64 text.
    pub fn to_text(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// Parses [`StudyVerifyingKey::to_text`].
    ///
    /// # Errors
    /// [`SigningError::Malformed`] if it is not base64 of an Ed25519 public key.
    pub fn from_text(text: &str) -> Result<Self, SigningError> {
        let bytes: [u8; 32] = BASE64
            .decode(text.trim())
            .map_err(|_| SigningError::Malformed("the study signing key is not base64".into()))?
            .try_into()
            .map_err(|_| SigningError::Malformed("a study signing key is 32 bytes".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| SigningError::Malformed("not an Ed25519 public key".into()))
    }

    /// The fingerprint the study team gives fieldworkers with their enrolment code.
    pub fn fingerprint(&self) -> StudyFingerprint {
        let digest = Sha256::digest(
            Encoder::new("attune.study-fingerprint.v1")
                .fixed(self.0.as_bytes())
                .finish(),
        );
        // 100 bits: the first 12 bytes and the top half of the 13th, five bits a character.
        let mut bits: u128 = 0;
        for byte in &digest[..13] {
            bits = (bits << 8) | u128::from(*byte);
        }
        bits >>= 4;
        let text = (0..FINGERPRINT_CHARS)
            .rev()
            .map(|i| char::from(CROCKFORD[((bits >> (5 * i)) & 31) as usize]))
            .collect();
        StudyFingerprint(text)
    }

    /// Checks a signature over the study public key.
    ///
    /// # Errors
    /// [`SigningError::BadSignature`] or [`SigningError::Malformed`].
    pub fn verify_study_key(
        &self,
        study: &StudyPublicKey,
        signature: &str,
    ) -> Result<(), SigningError> {
        self.0
            .verify_strict(&study_key_statement(study), &parse_signature(signature)?)
            .map_err(|_| SigningError::BadSignature)
    }

    /// Checks a team record's signature over its id and sealed bytes.
    ///
    /// # Errors
    /// [`SigningError::BadSignature`] or [`SigningError::Malformed`].
    pub fn verify_team_record(
        &self,
        id: &TeamRecordId,
        sealed: &[u8],
        signature: &str,
    ) -> Result<(), SigningError> {
        self.0
            .verify_strict(
                &team_record_signed_bytes(id, sealed),
                &parse_signature(signature)?,
            )
            .map_err(|_| SigningError::BadSignature)
    }

    /// Checks a control message's signature over its `seq`, kind and time.
    ///
    /// # Errors
    /// [`SigningError::UnknownKind`] for a kind this version cannot encode,
    /// [`SigningError::BadSignature`] or [`SigningError::Malformed`].
    pub fn verify_control(&self, message: &ControlMessage) -> Result<(), SigningError> {
        let bytes = control_signed_bytes(message.seq, &message.kind, message.created_at)
            .ok_or(SigningError::UnknownKind)?;
        self.0
            .verify_strict(&bytes, &parse_signature(&message.signature)?)
            .map_err(|_| SigningError::BadSignature)
    }
}

/// The encoding a study key statement signs.
fn study_key_statement(study: &StudyPublicKey) -> Vec<u8> {
    Encoder::new("attune.study-key-statement.v1")
        .fixed(&study.0.to_bytes())
        .finish()
}

/// The bytes a control message's signature covers; `None` for [`ControlKind::Unknown`].
pub fn control_signed_bytes(
    seq: u64,
    kind: &ControlKind,
    created_at: Timestamp,
) -> Option<Vec<u8>> {
    let mut e = Encoder::new("attune.control-message.v1");
    e.u64(seq);
    match kind {
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => {
            e.str("withdrawal")
                .fixed(participant_id.as_bytes())
                .str(participant_code);
        }
        ControlKind::ProtocolUpdate { protocol } => {
            e.str("protocol_update").str(protocol);
        }
        ControlKind::Revocation { device_id, reason } => {
            e.str("revocation").fixed(device_id.as_bytes()).str(reason);
        }
        ControlKind::Unknown => return None,
    }
    e.i64(created_at.as_millis());
    Some(e.finish())
}

/// The study signing key's fingerprint: 100 bits as 20 characters of Crockford's base32,
/// shown as five groups of four (`7K3M-Q9XD-2HCA-W4RT-PZ8N`). Typed back, case, spaces and
/// dashes do not matter, and the letters O, I and L read as 0, 1 and 1.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct StudyFingerprint(String);

/// Why a typed fingerprint could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum FingerprintError {
    /// Not 20 characters (ignoring spaces and dashes).
    #[error("a study fingerprint has 20 letters and digits; this one has {0}")]
    WrongLength(usize),
    /// A character that is not in a fingerprint.
    #[error("{0:?} is not in a study fingerprint")]
    InvalidCharacter(char),
}

impl StudyFingerprint {
    /// Reads a typed fingerprint.
    ///
    /// # Errors
    /// A [`FingerprintError`] saying what is wrong with it.
    pub fn parse(typed: &str) -> Result<Self, FingerprintError> {
        let mut text = String::with_capacity(FINGERPRINT_CHARS);
        for c in typed.chars() {
            if c.is_whitespace() || c == '-' || c == '\u{2013}' || c == '.' {
                continue;
            }
            let c = match c.to_ascii_uppercase() {
                'O' => '0',
                'I' | 'L' => '1',
                c => c,
            };
            if !c.is_ascii() || !CROCKFORD.contains(&(c as u8)) {
                return Err(FingerprintError::InvalidCharacter(c));
            }
            text.push(c);
        }
        if text.chars().count() != FINGERPRINT_CHARS {
            return Err(FingerprintError::WrongLength(text.chars().count()));
        }
        Ok(Self(text))
    }

    /// The fingerprint without separators (20 characters).
    pub fn as_compact(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for StudyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let groups: Vec<&str> = (0..self.0.len())
            .step_by(4)
            .map(|i| &self.0[i..(i + 4).min(self.0.len())])
            .collect();
        f.write_str(&groups.join("-"))
    }
}

impl fmt::Debug for StudyFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StudyFingerprint({self})")
    }
}

/// The study's keys a device may trust: the encryption key and the pinned signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedStudyKeys {
    /// What revisions are sealed to.
    pub public_key: StudyPublicKey,
    /// What every control message must be signed by.
    pub signing_key: StudyVerifyingKey,
}

/// Checks the study keys a server sent against the fingerprint the study team gave: the
/// signing key must have that fingerprint and must have signed the study key.
///
/// # Errors
/// [`SigningError::FingerprintMismatch`], [`SigningError::BadSignature`] or
/// [`SigningError::Malformed`].
pub fn verify_study_keys(
    keys: &StudyKeys,
    fingerprint: &StudyFingerprint,
) -> Result<VerifiedStudyKeys, SigningError> {
    let signing_key = StudyVerifyingKey::from_text(&keys.signing_key)?;
    if &signing_key.fingerprint() != fingerprint {
        return Err(SigningError::FingerprintMismatch);
    }
    let public_key = StudyPublicKey::from_text(&keys.public_key)
        .map_err(|error| SigningError::Malformed(error.to_string()))?;
    signing_key.verify_study_key(&public_key, &keys.public_key_signature)?;
    Ok(VerifiedStudyKeys {
        public_key,
        signing_key,
    })
}

/// The bytes a device signs to prove, at enrolment, that it holds the key it registers.
pub fn enrol_proof_bytes(
    challenge: &str,
    code: &str,
    device_id: Option<DeviceId>,
    device_key: &DevicePublicKey,
) -> Vec<u8> {
    Encoder::new("attune.enrol-proof.v1")
        .str(challenge)
        .str(&normalise_enrolment_code(code))
        .option(device_id, |e, id| {
            e.fixed(id.as_bytes());
        })
        .fixed(device_key.0.as_bytes())
        .finish()
}

impl DeviceKey {
    /// The proof of possession for an enrolment request: this key's signature over
    /// [`enrol_proof_bytes`] with its own public key. Base64.
    pub fn sign_enrolment(
        &self,
        challenge: &str,
        code: &str,
        device_id: Option<DeviceId>,
    ) -> String {
        let bytes = enrol_proof_bytes(challenge, code, device_id, &self.public_key());
        signature_text(self.0.sign(&bytes))
    }
}

impl DevicePublicKey {
    /// Checks an enrolment proof made by the key this is the public half of.
    ///
    /// # Errors
    /// [`SigningError::BadSignature`] (another key signed, or other bytes) or
    /// [`SigningError::Malformed`].
    pub fn verify_enrolment(
        &self,
        challenge: &str,
        code: &str,
        device_id: Option<DeviceId>,
        proof: &str,
    ) -> Result<(), SigningError> {
        let bytes = enrol_proof_bytes(challenge, code, device_id, self);
        self.0
            .verify_strict(&bytes, &parse_signature(proof)?)
            .map_err(|_| SigningError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::StudyKeyPair;
    use crate::ids::ParticipantId;

    fn message(seq: u64, kind: ControlKind, key: &StudySigningKey) -> ControlMessage {
        let created_at = Timestamp(1_750_000_000_000);
        ControlMessage {
            id: 9,
            seq,
            signature: key.sign_control(seq, &kind, created_at).unwrap(),
            kind,
            created_at,
        }
    }

    fn withdrawal() -> ControlKind {
        ControlKind::Withdrawal {
            participant_id: ParticipantId::from_bytes([7; 16]),
            participant_code: "C01".into(),
        }
    }

    #[test]
    fn a_signed_control_message_verifies_and_any_change_to_it_does_not() {
        let key = StudySigningKey::generate().unwrap();
        let public = key.public_key();
        let signed = message(3, withdrawal(), &key);
        public.verify_control(&signed).unwrap();
        // The id is the server's cursor, not signed: it may differ.
        let mut moved = signed.clone();
        moved.id = 40;
        public.verify_control(&moved).unwrap();

        let mut renumbered = signed.clone();
        renumbered.seq = 4;
        let mut retimed = signed.clone();
        retimed.created_at = Timestamp(1);
        let mut other_participant = signed.clone();
        other_participant.kind = ControlKind::Withdrawal {
            participant_id: ParticipantId::from_bytes([8; 16]),
            participant_code: "C01".into(),
        };
        let mut other_kind = signed.clone();
        other_kind.kind = ControlKind::Revocation {
            device_id: DeviceId::from_bytes([7; 16]),
            reason: "C01".into(),
        };
        for altered in [renumbered, retimed, other_participant, other_kind] {
            assert_eq!(
                public.verify_control(&altered),
                Err(SigningError::BadSignature)
            );
        }
        let other = StudySigningKey::generate().unwrap().public_key();
        assert_eq!(
            other.verify_control(&signed),
            Err(SigningError::BadSignature)
        );
        let mut garbage = signed;
        garbage.signature = "not base64!".into();
        assert!(matches!(
            public.verify_control(&garbage),
            Err(SigningError::Malformed(_))
        ));
    }

    #[test]
    fn an_unknown_kind_cannot_be_signed_or_verified() {
        let key = StudySigningKey::generate().unwrap();
        assert_eq!(
            key.sign_control(1, &ControlKind::Unknown, Timestamp(0)),
            Err(SigningError::UnknownKind)
        );
    }

    #[test]
    fn every_kind_signs_to_its_own_bytes() {
        let kinds = [
            withdrawal(),
            ControlKind::ProtocolUpdate {
                protocol: "{}".into(),
            },
            ControlKind::Revocation {
                device_id: DeviceId::from_bytes([7; 16]),
                reason: "lost".into(),
            },
        ];
        let encoded: Vec<Vec<u8>> = kinds
            .iter()
            .map(|kind| control_signed_bytes(1, kind, Timestamp(0)).unwrap())
            .collect();
        assert_ne!(encoded[0], encoded[1]);
        assert_ne!(encoded[1], encoded[2]);
        assert_ne!(encoded[0], encoded[2]);
    }

    #[test]
    fn the_study_keys_are_trusted_only_with_the_right_fingerprint_and_signature() {
        let signing = StudySigningKey::generate().unwrap();
        let study = StudyKeyPair::generate().public_key();
        let keys = StudyKeys {
            public_key: study.to_text(),
            signing_key: signing.public_key().to_text(),
            public_key_signature: signing.sign_study_key(&study),
        };
        let fingerprint = signing.public_key().fingerprint();
        let verified = verify_study_keys(&keys, &fingerprint).unwrap();
        assert_eq!(verified.public_key, study);
        assert_eq!(verified.signing_key, signing.public_key());

        let stranger = StudySigningKey::generate()
            .unwrap()
            .public_key()
            .fingerprint();
        assert_eq!(
            verify_study_keys(&keys, &stranger),
            Err(SigningError::FingerprintMismatch)
        );
        // Another study key under the genuine signing key's name: not signed.
        let swapped = StudyKeys {
            public_key: StudyKeyPair::generate().public_key().to_text(),
            ..keys.clone()
        };
        assert_eq!(
            verify_study_keys(&swapped, &fingerprint),
            Err(SigningError::BadSignature)
        );
    }

    #[test]
    fn a_fingerprint_has_100_bits_in_five_groups_and_reads_back_as_typed() {
        let key = StudySigningKey::generate().unwrap().public_key();
        let fingerprint = key.fingerprint();
        let shown = fingerprint.to_string();
        assert_eq!(shown.len(), 24, "{shown}");
        assert_eq!(shown.split('-').count(), 5);
        assert_eq!(StudyFingerprint::parse(&shown).unwrap(), fingerprint);
        let typed = shown.to_lowercase().replace('-', " ");
        assert_eq!(StudyFingerprint::parse(&typed).unwrap(), fingerprint);
        // O, I and L are read as the digits they look like.
        assert_eq!(
            StudyFingerprint::parse("OIL0-1100-0000-0000-0000").unwrap(),
            StudyFingerprint::parse("0110-1100-0000-0000-0000").unwrap()
        );
        assert_eq!(
            StudyFingerprint::parse("ABCD-EFGH"),
            Err(FingerprintError::WrongLength(8))
        );
        assert_eq!(
            StudyFingerprint::parse("ABCD-EFGH-JKMN-PQRS-TVWU"),
            Err(FingerprintError::InvalidCharacter('U'))
        );
        // Different keys, different fingerprints.
        let other = StudySigningKey::generate().unwrap().public_key();
        assert_ne!(other.fingerprint(), fingerprint);
    }

    #[test]
    fn an_enrolment_proof_verifies_only_for_its_challenge_code_device_and_key() {
        let device = DeviceKey::generate().unwrap();
        let id = Some(DeviceId::from_bytes([1; 16]));
        let proof = device.sign_enrolment("challenge-1", "abcd efgh-jkmn", id);
        let public = device.public_key();
        // The code is signed normalised: as the server reads it.
        public
            .verify_enrolment("challenge-1", "ABCDEFGHJKMN", id, &proof)
            .unwrap();
        for (challenge, code, device_id) in [
            ("challenge-2", "ABCDEFGHJKMN", id),
            ("challenge-1", "ABCDEFGHJKMP", id),
            ("challenge-1", "ABCDEFGHJKMN", None),
            (
                "challenge-1",
                "ABCDEFGHJKMN",
                Some(DeviceId::from_bytes([2; 16])),
            ),
        ] {
            assert_eq!(
                public.verify_enrolment(challenge, code, device_id, &proof),
                Err(SigningError::BadSignature)
            );
        }
        // Another device's public key with this device's proof: refused.
        let other = DeviceKey::generate().unwrap().public_key();
        assert_eq!(
            other.verify_enrolment("challenge-1", "ABCDEFGHJKMN", id, &proof),
            Err(SigningError::BadSignature)
        );
    }
}
