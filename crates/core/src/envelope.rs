//! Envelopes: how a revision travels from a device to the research server.
//!
//! Each revision is **sealed** to the study's public key with HPKE (RFC 9180, base mode,
//! X25519-HKDF-SHA256 + HKDF-SHA256 + ChaCha20-Poly1305) and **signed** by the device's
//! Ed25519 key. The server can check who sent an envelope and file it by its clear metadata,
//! but cannot read it: only the study's private key, kept by the researchers in a
//! passphrase-protected [`StudyKeyFile`], opens it.
//!
//! # Format
//!
//! An [`Envelope`] is JSON: the clear metadata (record id, rev, kind, participant code,
//! device, time, content hash, parent hash), `sealed` and `signature` in standard base64.
//!
//! - `sealed` = HPKE encapsulated key (32 bytes) followed by the ciphertext of
//!   [`Revision::to_bytes`]. The HPKE `info` is the string `attune.envelope.v1`; the `aad` is
//!   the canonical encoding (see [`crate::encoding`]) of the metadata under the domain tag
//!   `attune.envelope-metadata.v1`, in the field order above. Metadata moved onto another
//!   ciphertext therefore fails to open.
//! - `signature` = Ed25519 over the encoding, under the domain tag
//!   `attune.envelope-signature.v1`, of the metadata encoding (a byte string) then the sealed
//!   bytes (a byte string).
//!
//! # Study key file
//!
//! JSON ([`StudyKeyFile`]): the private keys encrypted with XChaCha20-Poly1305 under an
//! Argon2id key derived from the passphrase, the parameters stored beside it as in the
//! [vault](crate::vault), with the public keys in clear and bound as associated data.
//!
//! - Version 2 (made by `study init` now): the X25519 study key and the Ed25519 study signing
//!   key ([`crate::signing`]); the plaintext is the 32 secret bytes of each, in that order;
//!   the associated data (domain `attune.study-key.v2`) binds both public keys.
//! - Version 1 (before the signing key): the X25519 study key only. It still opens, so old
//!   data stays exportable; commands that sign need a version 2 file
//!   ([`StudyKeyFile::add_signing_key`] makes one with the same study key).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chacha20poly1305::aead::{Aead, Payload};
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, Kem as _, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::Encoder;
use crate::ids::{DeviceId, RecordId};
use crate::record::{ContentHash, Kind, Revision};
use crate::signing::{StudySigningKey, StudyVerifyingKey};
use crate::time::Timestamp;
use crate::vault::{
    self, KdfParams, NONCE_LEN, SALT_LEN, VaultError, check_new_passphrase, derive_kek,
};

type StudyKem = X25519HkdfSha256;
const HPKE_INFO: &[u8] = b"attune.envelope.v1";
/// X25519 public keys and encapsulated keys are 32 bytes.
const ENCAPPED_KEY_LEN: usize = 32;
const SIGNATURE_LEN: usize = 64;
/// The version of [`StudyKeyFile`] made now: Argon2id (v0x13), XChaCha20-Poly1305, the X25519
/// study key and the Ed25519 study signing key.
const KEY_FILE_VERSION: u8 = 2;
/// Files from before the study signing key: the X25519 study key only. They still open (for
/// export); signing commands need a version 2 file.
const KEY_FILE_VERSION_1: u8 = 1;

/// Why an envelope or a study key could not be made, checked or opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// A base64 field, key or length is malformed.
    #[error("malformed envelope or key: {0}")]
    Malformed(String),
    /// The signature does not match the metadata and sealed bytes for this device key.
    #[error("the envelope's signature does not verify")]
    BadSignature,
    /// The sealed bytes do not open with this study key: another study's key, or the
    /// metadata or ciphertext was altered.
    #[error("the envelope does not open with this study key")]
    CannotOpen,
    /// The opened revision does not match the envelope's clear metadata.
    #[error("the sealed revision does not match the envelope's metadata ({0})")]
    MetadataMismatch(&'static str),
    /// The revision is malformed or does not match its content hash.
    #[error("the revision is invalid: {0}")]
    InvalidRevision(String),
    /// The passphrase does not open the study key file (or the file was altered).
    #[error("the passphrase does not open this study key file")]
    WrongPassphrase,
    /// The study key file could not be created or read.
    #[error("study key file: {0}")]
    KeyFile(String),
    /// The platform's secure random source failed, or sealing failed.
    #[error("sealing failed: {0}")]
    Seal(String),
}

impl From<VaultError> for EnvelopeError {
    fn from(error: VaultError) -> Self {
        match error {
            VaultError::WrongPassphrase | VaultError::Tampered => EnvelopeError::WrongPassphrase,
            other => EnvelopeError::KeyFile(other.to_string()),
        }
    }
}

fn decode_base64(field: &str, text: &str) -> Result<Vec<u8>, EnvelopeError> {
    BASE64
        .decode(text)
        .map_err(|_| EnvelopeError::Malformed(format!("{field} is not base64")))
}

/// The study's public key: devices seal revisions to it. Text form: base64 of 32 bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct StudyPublicKey(pub(crate) <StudyKem as hpke::Kem>::PublicKey);

impl StudyPublicKey {
    /// The key as base64 text (what the server hands devices at enrolment).
    pub fn to_text(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// Parses [`StudyPublicKey::to_text`].
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] if it is not base64 of a valid X25519 key.
    pub fn from_text(text: &str) -> Result<Self, EnvelopeError> {
        let bytes = decode_base64("the study public key", text.trim())?;
        <StudyKem as hpke::Kem>::PublicKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| EnvelopeError::Malformed("not an X25519 public key".into()))
    }
}

impl fmt::Debug for StudyPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StudyPublicKey({})", self.to_text())
    }
}

/// The study's private key: opens envelopes. Only ever in memory after
/// [`StudyKeyFile::open`].
pub struct StudyPrivateKey {
    pub(crate) secret: <StudyKem as hpke::Kem>::PrivateKey,
    public: StudyPublicKey,
}

impl StudyPrivateKey {
    /// The matching public key.
    pub fn public_key(&self) -> StudyPublicKey {
        self.public.clone()
    }
}

impl fmt::Debug for StudyPrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StudyPrivateKey(<secret>)")
    }
}

/// A freshly generated study key pair.
#[derive(Debug)]
pub struct StudyKeyPair {
    private: StudyPrivateKey,
}

impl StudyKeyPair {
    /// A new random key pair from the platform's secure random source.
    pub fn generate() -> Self {
        let (secret, public) = StudyKem::gen_keypair();
        Self {
            private: StudyPrivateKey {
                secret,
                public: StudyPublicKey(public),
            },
        }
    }

    /// The public key, to give to devices.
    pub fn public_key(&self) -> StudyPublicKey {
        self.private.public_key()
    }

    /// The private key, to open envelopes.
    pub fn private_key(&self) -> &StudyPrivateKey {
        &self.private
    }

    /// Gives up the pair for its private key.
    pub fn into_private_key(self) -> StudyPrivateKey {
        self.private
    }
}

/// The study private keys encrypted under a passphrase: the file researchers keep.
/// Serialised as JSON with hex byte strings; contains no secret in clear.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StudyKeyFile {
    /// Always `attune-study-key`, so a wrong file is named as such.
    pub format: String,
    /// The file format version (2; 1 for files made before the study signing key).
    pub version: u8,
    /// The study public key as text, bound into the encryption.
    pub public_key: String,
    /// The study signing key's public half as text (version 2), bound into the encryption.
    /// Public: `enrol create` reads it without the passphrase to print the fingerprint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
    /// The Argon2id parameters.
    pub kdf: KdfParams,
    /// The Argon2id salt.
    #[serde(with = "crate::hex::array")]
    pub salt: [u8; SALT_LEN],
    /// The XChaCha20-Poly1305 nonce.
    #[serde(with = "crate::hex::array")]
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted private key(s) and the tag.
    #[serde(with = "crate::hex::vec")]
    pub ciphertext: Vec<u8>,
}

const KEY_FILE_FORMAT: &str = "attune-study-key";

fn key_file_associated_data(
    version: u8,
    kdf: KdfParams,
    salt: &[u8; SALT_LEN],
    public: &str,
    signing_public: Option<&str>,
) -> Vec<u8> {
    let domain = match signing_public {
        None => "attune.study-key.v1",
        Some(_) => "attune.study-key.v2",
    };
    let mut e = Encoder::new(domain);
    e.u8(version)
        .u32(kdf.m_kib)
        .u32(kdf.t)
        .u32(kdf.p)
        .fixed(salt)
        .str(public);
    if let Some(signing_public) = signing_public {
        e.str(signing_public);
    }
    e.finish()
}

/// What a study key file holds, opened.
#[derive(Debug)]
pub struct StudyPrivateKeys {
    /// Opens envelopes and attachments.
    pub private: StudyPrivateKey,
    /// Signs the study key and control messages; `None` in a version 1 file.
    pub signing: Option<StudySigningKey>,
}

impl StudyPrivateKeys {
    /// The signing key, or the error a signing command gives for a version 1 file.
    ///
    /// # Errors
    /// [`EnvelopeError::KeyFile`] if the file predates the study signing key.
    pub fn signing_key(&self) -> Result<&StudySigningKey, EnvelopeError> {
        self.signing.as_ref().ok_or_else(|| {
            EnvelopeError::KeyFile(
                "this is a version 1 study key file, made before study instructions were \
                 signed: it opens for export, but withdrawals, protocol updates and revocations \
                 need a version 2 file (make one with `attune-server study upgrade-key`)"
                    .into(),
            )
        })
    }
}

impl StudyKeyFile {
    /// Generates a study key pair and a study signing key and encrypts their private halves
    /// under `passphrase` with the default Argon2id parameters. Returns the file's bytes and
    /// the keys.
    ///
    /// # Errors
    /// A short passphrase, or a failing random source or key derivation.
    pub fn create(passphrase: &str) -> Result<(Vec<u8>, StudyPrivateKeys), EnvelopeError> {
        Self::create_with_params(passphrase, KdfParams::DEFAULT)
    }

    /// [`StudyKeyFile::create`] with chosen Argon2id parameters (tests use cheap ones).
    ///
    /// # Errors
    /// As [`StudyKeyFile::create`].
    pub fn create_with_params(
        passphrase: &str,
        kdf: KdfParams,
    ) -> Result<(Vec<u8>, StudyPrivateKeys), EnvelopeError> {
        check_new_passphrase(passphrase)?;
        let pair = StudyKeyPair::generate();
        let signing =
            StudySigningKey::generate().map_err(|error| EnvelopeError::Seal(error.to_string()))?;
        Self::write(passphrase, kdf, pair.into_private_key(), signing)
    }

    /// A version 2 file with the study key of a version 1 file (opened with its passphrase)
    /// and a new study signing key, encrypted under `new_passphrase`. The old file stays
    /// valid for export; the new one is the one to keep.
    ///
    /// # Errors
    /// As [`StudyKeyFile::open_keys`], and [`EnvelopeError::KeyFile`] if the file already
    /// has a signing key.
    pub fn add_signing_key(
        bytes: &[u8],
        passphrase: &str,
        new_passphrase: &str,
    ) -> Result<(Vec<u8>, StudyPrivateKeys), EnvelopeError> {
        let file = Self::read(bytes)?;
        let keys = Self::open_keys(bytes, passphrase)?;
        if keys.signing.is_some() {
            return Err(EnvelopeError::KeyFile(
                "this study key file already has a study signing key".into(),
            ));
        }
        check_new_passphrase(new_passphrase)?;
        let signing =
            StudySigningKey::generate().map_err(|error| EnvelopeError::Seal(error.to_string()))?;
        Self::write(new_passphrase, file.kdf, keys.private, signing)
    }

    /// A version 1 file (the study key only), as `study init` made before the study signing
    /// key: for tests of the upgrade path, never for a new study.
    ///
    /// # Errors
    /// As [`StudyKeyFile::create`].
    #[doc(hidden)]
    pub fn create_version_1(
        passphrase: &str,
        kdf: KdfParams,
    ) -> Result<(Vec<u8>, StudyPublicKey), EnvelopeError> {
        check_new_passphrase(passphrase)?;
        let pair = StudyKeyPair::generate();
        let public = pair.public_key();
        let secret = Zeroizing::new(pair.private.secret.to_bytes().to_vec());
        let bytes = Self::seal_file(
            passphrase,
            kdf,
            KEY_FILE_VERSION_1,
            public.to_text(),
            None,
            &secret,
        )?;
        Ok((bytes, public))
    }

    /// A key file of `version`: `secret` encrypted under a key derived from `passphrase`
    /// (fresh salt and nonce), the public keys bound in as associated data.
    fn seal_file(
        passphrase: &str,
        kdf: KdfParams,
        version: u8,
        public_key: String,
        signing_public_key: Option<String>,
        secret: &[u8],
    ) -> Result<Vec<u8>, EnvelopeError> {
        let salt = vault::random::<SALT_LEN>()?;
        let nonce = vault::random::<NONCE_LEN>()?;
        let kek = derive_kek(passphrase, kdf, &salt)?;
        let aad = key_file_associated_data(
            version,
            kdf,
            &salt,
            &public_key,
            signing_public_key.as_deref(),
        );
        let ciphertext = vault::cipher(&kek)
            .encrypt(
                (&nonce).into(),
                Payload {
                    msg: secret,
                    aad: &aad,
                },
            )
            .map_err(|_| EnvelopeError::KeyFile("encryption failed".into()))?;
        let file = StudyKeyFile {
            format: KEY_FILE_FORMAT.into(),
            version,
            public_key,
            signing_public_key,
            kdf,
            salt,
            nonce,
            ciphertext,
        };
        serde_json::to_vec_pretty(&file).map_err(|error| EnvelopeError::KeyFile(error.to_string()))
    }

    fn write(
        passphrase: &str,
        kdf: KdfParams,
        private: StudyPrivateKey,
        signing: StudySigningKey,
    ) -> Result<(Vec<u8>, StudyPrivateKeys), EnvelopeError> {
        let mut secret = Zeroizing::new(private.secret.to_bytes().to_vec());
        secret.extend_from_slice(signing.to_bytes().as_ref());
        let bytes = Self::seal_file(
            passphrase,
            kdf,
            KEY_FILE_VERSION,
            private.public.to_text(),
            Some(signing.public_key().to_text()),
            &secret,
        )?;
        Ok((
            bytes,
            StudyPrivateKeys {
                private,
                signing: Some(signing),
            },
        ))
    }

    /// Reads a study key file's clear parts (no passphrase needed).
    ///
    /// # Errors
    /// [`EnvelopeError::KeyFile`] if the bytes are not a study key file of a known version.
    pub fn read(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        let file: StudyKeyFile = serde_json::from_slice(bytes).map_err(|error| {
            EnvelopeError::KeyFile(format!("not an Attune study key file: {error}"))
        })?;
        if file.format != KEY_FILE_FORMAT {
            return Err(EnvelopeError::KeyFile(
                "not an Attune study key file".into(),
            ));
        }
        let expected_signing_key = match file.version {
            KEY_FILE_VERSION_1 => false,
            KEY_FILE_VERSION => true,
            other => {
                return Err(EnvelopeError::KeyFile(format!(
                    "unsupported version {other} (this attune-server reads versions 1 and 2)"
                )));
            }
        };
        if file.signing_public_key.is_some() != expected_signing_key {
            return Err(EnvelopeError::KeyFile(format!(
                "a version {} study key file {} a signing key",
                file.version,
                if expected_signing_key {
                    "must have"
                } else {
                    "cannot have"
                }
            )));
        }
        Ok(file)
    }

    /// The study public key, from the clear part of the file.
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] if it is not a valid key.
    pub fn study_public_key(&self) -> Result<StudyPublicKey, EnvelopeError> {
        StudyPublicKey::from_text(&self.public_key)
    }

    /// The study signing key's public half, from the clear part of the file; `None` in a
    /// version 1 file.
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] if it is not a valid key.
    pub fn study_signing_key(&self) -> Result<Option<StudyVerifyingKey>, EnvelopeError> {
        self.signing_public_key
            .as_deref()
            .map(StudyVerifyingKey::from_text)
            .transpose()
            .map_err(|error| EnvelopeError::Malformed(error.to_string()))
    }

    /// Decrypts a study key file's study private key with its passphrase (any version).
    ///
    /// # Errors
    /// As [`StudyKeyFile::open_keys`].
    pub fn open(bytes: &[u8], passphrase: &str) -> Result<StudyPrivateKey, EnvelopeError> {
        Ok(Self::open_keys(bytes, passphrase)?.private)
    }

    /// Decrypts every key in a study key file with its passphrase.
    ///
    /// # Errors
    /// [`EnvelopeError::WrongPassphrase`] for a wrong passphrase or altered file;
    /// [`EnvelopeError::KeyFile`] if the bytes are not a study key file.
    pub fn open_keys(bytes: &[u8], passphrase: &str) -> Result<StudyPrivateKeys, EnvelopeError> {
        let file = Self::read(bytes)?;
        let public = StudyPublicKey::from_text(&file.public_key)?;
        let signing_public = file.study_signing_key()?;
        let kek = derive_kek(passphrase, file.kdf, &file.salt)?;
        let aad = key_file_associated_data(
            file.version,
            file.kdf,
            &file.salt,
            &file.public_key,
            file.signing_public_key.as_deref(),
        );
        let secret = Zeroizing::new(
            vault::cipher(&kek)
                .decrypt(
                    (&file.nonce).into(),
                    Payload {
                        msg: &file.ciphertext,
                        aad: &aad,
                    },
                )
                .map_err(|_| EnvelopeError::WrongPassphrase)?,
        );
        let expected_len = if signing_public.is_some() { 64 } else { 32 };
        if secret.len() != expected_len {
            return Err(EnvelopeError::KeyFile(
                "the private key is malformed".into(),
            ));
        }
        let (study_secret, signing_secret) = secret.split_at(32);
        let study_secret = <StudyKem as hpke::Kem>::PrivateKey::from_bytes(study_secret)
            .map_err(|_| EnvelopeError::KeyFile("the private key is malformed".into()))?;
        if <StudyKem as hpke::Kem>::sk_to_pk(&study_secret) != public.0 {
            return Err(EnvelopeError::KeyFile(
                "the private key does not match the public key".into(),
            ));
        }
        let signing = match signing_public {
            None => None,
            Some(expected) => {
                let seed: [u8; 32] = signing_secret
                    .try_into()
                    .map_err(|_| EnvelopeError::KeyFile("the signing key is malformed".into()))?;
                let seed = Zeroizing::new(seed);
                let signing = StudySigningKey::from_bytes(&seed);
                if signing.public_key() != expected {
                    return Err(EnvelopeError::KeyFile(
                        "the signing key does not match its public key".into(),
                    ));
                }
                Some(signing)
            }
        };
        Ok(StudyPrivateKeys {
            private: StudyPrivateKey {
                secret: study_secret,
                public,
            },
            signing,
        })
    }
}

/// A device's Ed25519 signing key. The device keeps it (in its vault); the server keeps the
/// public half from enrolment.
pub struct DeviceKey(pub(crate) SigningKey);

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeviceKey(public: {})", self.public_key().to_text())
    }
}

impl DeviceKey {
    /// A new random signing key.
    ///
    /// # Errors
    /// [`EnvelopeError::Seal`] if the secure random source fails.
    pub fn generate() -> Result<Self, EnvelopeError> {
        let seed = Zeroizing::new(
            vault::random::<32>().map_err(|error| EnvelopeError::Seal(error.to_string()))?,
        );
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Restores a key from its 32 secret bytes.
    pub fn from_bytes(secret: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(secret))
    }

    /// The 32 secret bytes, for the device to store in its vault.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key to register at enrolment.
    pub fn public_key(&self) -> DevicePublicKey {
        DevicePublicKey(self.0.verifying_key())
    }
}

/// A device's Ed25519 public key. Text form: base64 of 32 bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DevicePublicKey(pub(crate) VerifyingKey);

impl DevicePublicKey {
    /// The key as base64 text.
    pub fn to_text(&self) -> String {
        BASE64.encode(self.0.to_bytes())
    }

    /// Parses [`DevicePublicKey::to_text`].
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] if it is not base64 of a valid Ed25519 public key.
    pub fn from_text(text: &str) -> Result<Self, EnvelopeError> {
        let bytes: [u8; 32] = decode_base64("the device public key", text.trim())?
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("a device public key is 32 bytes".into()))?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| EnvelopeError::Malformed("not an Ed25519 public key".into()))
    }
}

impl fmt::Debug for DevicePublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DevicePublicKey({})", self.to_text())
    }
}

/// A sealed, signed revision with the clear metadata the server files it by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The record the revision belongs to.
    pub record_id: RecordId,
    /// The revision number.
    pub rev: u32,
    /// The record's kind.
    pub kind: Kind,
    /// The participant's pseudonymous protocol code (never a name), if the record is about
    /// one: withdrawals are matched on it.
    pub participant_code: Option<String>,
    /// The device that made and signed the revision.
    pub device_id: DeviceId,
    /// When the revision was made.
    pub time: Timestamp,
    /// The revision's content hash.
    pub hash: ContentHash,
    /// The previous revision's hash.
    pub parent_hash: Option<ContentHash>,
    /// Base64: HPKE encapsulated key, then the ciphertext of the revision.
    pub sealed: String,
    /// Base64: the device's Ed25519 signature.
    pub signature: String,
}

impl Envelope {
    /// The canonical encoding of the clear metadata (the HPKE aad).
    fn metadata_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new("attune.envelope-metadata.v1");
        e.fixed(self.record_id.as_bytes())
            .u32(self.rev)
            .str(self.kind.as_str())
            .option(self.participant_code.as_deref(), |e, code| {
                e.str(code);
            })
            .fixed(self.device_id.as_bytes())
            .i64(self.time.as_millis())
            .fixed(self.hash.as_bytes())
            .option(self.parent_hash, |e, hash| {
                e.fixed(hash.as_bytes());
            });
        e.finish()
    }

    fn signed_bytes(metadata: &[u8], sealed: &[u8]) -> Vec<u8> {
        Encoder::new("attune.envelope-signature.v1")
            .bytes(metadata)
            .bytes(sealed)
            .finish()
    }

    fn sealed_bytes(&self) -> Result<Vec<u8>, EnvelopeError> {
        let sealed = decode_base64("sealed", &self.sealed)?;
        if sealed.len() < ENCAPPED_KEY_LEN + 16 {
            return Err(EnvelopeError::Malformed("sealed is too short".into()));
        }
        Ok(sealed)
    }

    /// Checks the signature against the device's public key.
    ///
    /// # Errors
    /// [`EnvelopeError::Malformed`] for bad base64 or lengths, [`EnvelopeError::BadSignature`]
    /// if the envelope was altered or signed by another key.
    pub fn verify(&self, device: &DevicePublicKey) -> Result<(), EnvelopeError> {
        let sealed = self.sealed_bytes()?;
        let signature: [u8; SIGNATURE_LEN] = decode_base64("signature", &self.signature)?
            .try_into()
            .map_err(|_| EnvelopeError::Malformed("a signature is 64 bytes".into()))?;
        let signature = ed25519_dalek::Signature::from_bytes(&signature);
        let message = Self::signed_bytes(&self.metadata_bytes(), &sealed);
        device
            .0
            .verify_strict(&message, &signature)
            .map_err(|_| EnvelopeError::BadSignature)
    }

    /// Opens the sealed revision with the study private key and checks it against the
    /// metadata and its own content hash. Does not check the signature ([`Envelope::verify`]).
    ///
    /// # Errors
    /// [`EnvelopeError::CannotOpen`] (other key, or altered), [`EnvelopeError::InvalidRevision`],
    /// [`EnvelopeError::MetadataMismatch`].
    pub fn open(&self, key: &StudyPrivateKey) -> Result<Revision, EnvelopeError> {
        let sealed = self.sealed_bytes()?;
        let (encapped, ciphertext) = sealed.split_at(ENCAPPED_KEY_LEN);
        let encapped = <StudyKem as hpke::Kem>::EncappedKey::from_bytes(encapped)
            .map_err(|_| EnvelopeError::Malformed("bad encapsulated key".into()))?;
        let plaintext = Zeroizing::new(
            hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, StudyKem>(
                &OpModeR::Base,
                &key.secret,
                &encapped,
                HPKE_INFO,
                ciphertext,
                &self.metadata_bytes(),
            )
            .map_err(|_| EnvelopeError::CannotOpen)?,
        );
        let revision = Revision::from_bytes(&plaintext)
            .map_err(|error| EnvelopeError::InvalidRevision(error.to_string()))?;
        let mismatch = |field| Err(EnvelopeError::MetadataMismatch(field));
        if revision.record_id != self.record_id {
            return mismatch("record_id");
        }
        if revision.rev != self.rev {
            return mismatch("rev");
        }
        if revision.kind != self.kind {
            return mismatch("kind");
        }
        if revision.device != self.device_id {
            return mismatch("device_id");
        }
        if revision.time != self.time {
            return mismatch("time");
        }
        if revision.hash != self.hash {
            return mismatch("hash");
        }
        if revision.parent_hash != self.parent_hash {
            return mismatch("parent_hash");
        }
        Ok(revision)
    }
}

/// Seals `plaintext` to the study key with HPKE as envelopes are (base mode, the same
/// suite), under `info` and bound to `aad`: the encapsulated key (32 bytes) then the
/// ciphertext. For other sealed payloads of core (team records) with their own `info`.
///
/// # Errors
/// [`EnvelopeError::Seal`] if HPKE fails.
pub(crate) fn seal_to_study(
    study: &StudyPublicKey,
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<Vec<u8>, EnvelopeError> {
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, StudyKem>(
        &OpModeS::Base,
        &study.0,
        info,
        plaintext,
        aad,
    )
    .map_err(|error| EnvelopeError::Seal(error.to_string()))?;
    let mut sealed = encapped.to_bytes().to_vec();
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Opens what [`seal_to_study`] sealed with the same `info` and `aad`.
///
/// # Errors
/// [`EnvelopeError::Malformed`] if it is too short, [`EnvelopeError::CannotOpen`] for
/// another key, `info` or `aad`, or altered bytes.
pub(crate) fn open_from_study(
    key: &StudyPrivateKey,
    info: &[u8],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
    if sealed.len() < ENCAPPED_KEY_LEN + 16 {
        return Err(EnvelopeError::Malformed("sealed is too short".into()));
    }
    let (encapped, ciphertext) = sealed.split_at(ENCAPPED_KEY_LEN);
    let encapped = <StudyKem as hpke::Kem>::EncappedKey::from_bytes(encapped)
        .map_err(|_| EnvelopeError::Malformed("bad encapsulated key".into()))?;
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, StudyKem>(
        &OpModeR::Base,
        &key.secret,
        &encapped,
        info,
        ciphertext,
        aad,
    )
    .map(Zeroizing::new)
    .map_err(|_| EnvelopeError::CannotOpen)
}

/// Seals `revision` to the study key and signs it with the device key.
///
/// # Errors
/// [`EnvelopeError::InvalidRevision`] if the revision does not match its hash;
/// [`EnvelopeError::Seal`] if HPKE fails.
pub fn seal_envelope(
    revision: &Revision,
    participant_code: Option<String>,
    study: &StudyPublicKey,
    device: &DeviceKey,
) -> Result<Envelope, EnvelopeError> {
    if !revision.hash_is_valid() {
        return Err(EnvelopeError::InvalidRevision(
            "the revision does not match its content hash".into(),
        ));
    }
    let mut envelope = Envelope {
        record_id: revision.record_id,
        rev: revision.rev,
        kind: revision.kind,
        participant_code,
        device_id: revision.device,
        time: revision.time,
        hash: revision.hash,
        parent_hash: revision.parent_hash,
        sealed: String::new(),
        signature: String::new(),
    };
    let metadata = envelope.metadata_bytes();
    let plaintext = Zeroizing::new(revision.to_bytes());
    let (encapped, ciphertext) = hpke::single_shot_seal::<ChaCha20Poly1305, HkdfSha256, StudyKem>(
        &OpModeS::Base,
        &study.0,
        HPKE_INFO,
        &plaintext,
        &metadata,
    )
    .map_err(|error| EnvelopeError::Seal(error.to_string()))?;
    let mut sealed = encapped.to_bytes().to_vec();
    sealed.extend_from_slice(&ciphertext);
    let signature = device.0.sign(&Envelope::signed_bytes(&metadata, &sealed));
    envelope.sealed = BASE64.encode(&sealed);
    envelope.signature = BASE64.encode(signature.to_bytes());
    Ok(envelope)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::ProfileId;
    use crate::record::{Authorship, Links};

    const CHEAP: KdfParams = KdfParams {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    fn revision() -> Revision {
        let by = Authorship {
            device: DeviceId::new(Timestamp(1_700_000_000_000)),
            author: ProfileId::new(Timestamp(1_700_000_000_000)),
            time: Timestamp(1_700_000_000_123),
        };
        let first = Revision::first(
            RecordId::new(Timestamp(1_700_000_000_000)),
            Kind::InterviewNote,
            Links::default(),
            br#"{"text":"the child drew a house"}"#.to_vec(),
            by,
        );
        first
            .next(br#"{"text":"a red house"}"#.to_vec(), by)
            .unwrap()
    }

    struct Fixture {
        study: StudyKeyPair,
        device: DeviceKey,
        revision: Revision,
        envelope: Envelope,
    }

    fn fixture() -> Fixture {
        let study = StudyKeyPair::generate();
        let device = DeviceKey::generate().unwrap();
        let revision = revision();
        let envelope = seal_envelope(
            &revision,
            Some("VIG-007".into()),
            &study.public_key(),
            &device,
        )
        .unwrap();
        Fixture {
            study,
            device,
            revision,
            envelope,
        }
    }

    #[test]
    fn a_sealed_revision_verifies_and_opens_to_the_same_revision() {
        let f = fixture();
        f.envelope.verify(&f.device.public_key()).unwrap();
        let json = serde_json::to_string(&f.envelope).unwrap();
        assert!(!json.contains("red house"), "the body must not be in clear");
        let back: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, f.envelope);
        assert_eq!(back.open(f.study.private_key()).unwrap(), f.revision);
    }

    #[test]
    fn altered_metadata_is_refused_by_the_signature_and_by_the_seal() {
        let f = fixture();
        let mut altered = f.envelope.clone();
        altered.participant_code = Some("VIG-008".into());
        assert_eq!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::BadSignature)
        );
        assert_eq!(
            altered.open(f.study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
        let mut altered = f.envelope.clone();
        altered.rev += 1;
        assert_eq!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn altered_sealed_bytes_are_refused() {
        let f = fixture();
        let mut sealed = BASE64.decode(&f.envelope.sealed).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        let mut altered = f.envelope.clone();
        altered.sealed = BASE64.encode(&sealed);
        assert_eq!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::BadSignature)
        );
        assert_eq!(
            altered.open(f.study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
        altered.sealed = "not base64!".into();
        assert!(matches!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn an_altered_signature_is_refused() {
        let f = fixture();
        let mut signature = BASE64.decode(&f.envelope.signature).unwrap();
        signature[0] ^= 1;
        let mut altered = f.envelope.clone();
        altered.signature = BASE64.encode(&signature);
        assert_eq!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::BadSignature)
        );
        altered.signature = BASE64.encode([0u8; 10]);
        assert!(matches!(
            altered.verify(&f.device.public_key()),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn another_study_key_cannot_open() {
        let f = fixture();
        let other = StudyKeyPair::generate();
        assert_eq!(
            f.envelope.open(other.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
    }

    #[test]
    fn another_device_key_does_not_verify() {
        let f = fixture();
        let other = DeviceKey::generate().unwrap();
        assert_eq!(
            f.envelope.verify(&other.public_key()),
            Err(EnvelopeError::BadSignature)
        );
    }

    #[test]
    fn a_revision_that_does_not_match_its_hash_is_not_sealed() {
        let f = fixture();
        let mut forged = f.revision.clone();
        forged.body = b"{}".to_vec();
        assert!(matches!(
            seal_envelope(&forged, None, &f.study.public_key(), &f.device),
            Err(EnvelopeError::InvalidRevision(_))
        ));
    }

    #[test]
    fn keys_roundtrip_through_text() {
        let f = fixture();
        let public = f.study.public_key();
        assert_eq!(
            StudyPublicKey::from_text(&public.to_text()).unwrap(),
            public
        );
        let device = f.device.public_key();
        assert_eq!(
            DevicePublicKey::from_text(&device.to_text()).unwrap(),
            device
        );
        let restored = DeviceKey::from_bytes(&f.device.to_bytes());
        assert_eq!(restored.public_key(), device);
        assert!(StudyPublicKey::from_text("abc").is_err());
        assert!(DevicePublicKey::from_text("").is_err());
    }

    #[test]
    fn the_study_key_file_opens_only_with_its_passphrase() {
        let (bytes, keys) =
            StudyKeyFile::create_with_params("correct horse battery", CHEAP).unwrap();
        let public = keys.private.public_key();
        assert!(!String::from_utf8_lossy(&bytes).contains("secret"));
        let private = StudyKeyFile::open(&bytes, "correct horse battery").unwrap();
        assert_eq!(private.public_key(), public);
        let opened = StudyKeyFile::open_keys(&bytes, "correct horse battery").unwrap();
        let signing = opened.signing_key().unwrap().public_key();
        assert_eq!(Some(signing), keys.signing.as_ref().map(|k| k.public_key()));
        // Both public keys are readable without the passphrase.
        let file = StudyKeyFile::read(&bytes).unwrap();
        assert_eq!(file.version, 2);
        assert_eq!(file.study_public_key().unwrap(), public);
        assert_eq!(file.study_signing_key().unwrap(), Some(signing));
        assert_eq!(
            StudyKeyFile::open(&bytes, "wrong horse battery").unwrap_err(),
            EnvelopeError::WrongPassphrase
        );
        assert!(matches!(
            StudyKeyFile::open(b"{}", "correct horse battery"),
            Err(EnvelopeError::KeyFile(_))
        ));
        // An envelope sealed to the public key opens with the key from the file.
        let device = DeviceKey::generate().unwrap();
        let revision = revision();
        let envelope = seal_envelope(&revision, None, &public, &device).unwrap();
        assert_eq!(envelope.open(&private).unwrap(), revision);
    }

    #[test]
    fn a_short_passphrase_makes_no_key_file() {
        assert!(matches!(
            StudyKeyFile::create_with_params("short", CHEAP),
            Err(EnvelopeError::KeyFile(_))
        ));
    }

    fn version_1_file(passphrase: &str) -> (Vec<u8>, StudyPublicKey) {
        StudyKeyFile::create_version_1(passphrase, CHEAP).unwrap()
    }

    #[test]
    fn a_version_1_file_opens_for_export_and_says_signing_needs_a_new_file() {
        let (bytes, public) = version_1_file("correct horse battery");
        assert!(!String::from_utf8_lossy(&bytes).contains("signing_public_key"));
        let private = StudyKeyFile::open(&bytes, "correct horse battery").unwrap();
        assert_eq!(private.public_key(), public);
        let keys = StudyKeyFile::open_keys(&bytes, "correct horse battery").unwrap();
        let error = keys.signing_key().unwrap_err().to_string();
        assert!(
            error.contains("version 1") && error.contains("upgrade-key"),
            "{error}"
        );
        assert_eq!(
            StudyKeyFile::read(&bytes).unwrap().study_signing_key(),
            Ok(None)
        );

        // Upgraded: the same study key (old envelopes still open), a new signing key.
        let (upgraded, keys) =
            StudyKeyFile::add_signing_key(&bytes, "correct horse battery", "a new passphrase")
                .unwrap();
        assert_eq!(keys.private.public_key(), public);
        let reopened = StudyKeyFile::open_keys(&upgraded, "a new passphrase").unwrap();
        assert_eq!(reopened.private.public_key(), public);
        assert_eq!(
            reopened.signing_key().unwrap().public_key(),
            keys.signing_key().unwrap().public_key()
        );
        assert!(matches!(
            StudyKeyFile::add_signing_key(&upgraded, "a new passphrase", "a new passphrase"),
            Err(EnvelopeError::KeyFile(_))
        ));
    }

    #[test]
    fn a_swapped_public_signing_key_in_the_file_does_not_open() {
        let (bytes, _) = StudyKeyFile::create_with_params("correct horse battery", CHEAP).unwrap();
        let mut file = StudyKeyFile::read(&bytes).unwrap();
        let other = crate::signing::StudySigningKey::generate().unwrap();
        file.signing_public_key = Some(other.public_key().to_text());
        let swapped = serde_json::to_vec(&file).unwrap();
        assert_eq!(
            StudyKeyFile::open_keys(&swapped, "correct horse battery").unwrap_err(),
            EnvelopeError::WrongPassphrase
        );
        file.signing_public_key = None;
        let stripped = serde_json::to_vec(&file).unwrap();
        assert!(matches!(
            StudyKeyFile::open_keys(&stripped, "correct horse battery"),
            Err(EnvelopeError::KeyFile(_))
        ));
    }
}
