//! The vault: encryption at rest on the device.
//!
//! Each fieldworker profile has a random 32-byte **vault key**. Every record revision and
//! every blob chunk is sealed under it with XChaCha20-Poly1305 before it reaches storage.
//! The vault key itself is stored only **wrapped**: encrypted under a key-encryption key
//! derived from the fieldworker's passphrase with Argon2id. Changing the passphrase rewraps
//! the vault key ([`Vault::rewrap`]); no data is re-encrypted.
//!
//! # Sealed format
//!
//! `[format version: 1 byte = 1][nonce: 24 random bytes][ciphertext and 16-byte tag]`
//!
//! The associated data (authenticated, not stored) binds the ciphertext to where it
//! belongs, in the canonical encoding of [`crate::encoding`]:
//!
//! | what | domain tag | fields after the tag |
//! |---|---|---|
//! | [`Vault::seal_body`] | `attune.record-body.v1` | format version, record id, rev, kind |
//! | [`Vault::seal_revision`] | `attune.stored-revision.v1` | format version, record id, rev, kind, content hash |
//! | [`Vault::seal_chunk`] | `attune.blob-chunk.v1` | format version, blob id, chunk index |
//! | [`Vault::seal_device_value`] | `attune.device-value.v1` | format version, value name |
//! | wrapped vault key | `attune.vault-key.v1` | wrap version, m_kib, t, p, salt |
//!
//! So a body moved to another record, revision or kind, a chunk moved to another blob or
//! position, or a wrapped key whose KDF parameters were lowered, fails to open.
//!
//! Key material (the vault key, the key-encryption key, the unwrapped key bytes) is zeroed
//! when dropped.

use std::fmt;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use zeroize::Zeroizing;

use crate::encoding::Encoder;
use crate::ids::{BlobId, RecordId};
use crate::passphrase::MIN_PASSPHRASE_LEN;
use crate::record::{ContentHash, Kind, Revision};
use crate::store::StoredRevision;

/// The version byte at the start of everything [`Vault`] seals.
const SEALED_FORMAT: u8 = 1;
/// The version of [`WrappedVaultKey`]: Argon2id (v0x13) and XChaCha20-Poly1305.
const WRAP_VERSION: u8 = 1;
pub(crate) const KEY_LEN: usize = 32;
pub(crate) const SALT_LEN: usize = 16;
pub(crate) const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Why a vault operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum VaultError {
    /// The passphrase does not unlock this wrapped key (or the wrapped key was altered,
    /// which cannot be told apart).
    #[error("the passphrase does not unlock this vault")]
    WrongPassphrase,
    /// A new passphrase is shorter than [`MIN_PASSPHRASE_LEN`] characters.
    #[error("the passphrase must have at least {minimum} characters")]
    PassphraseTooShort {
        /// The minimum number of characters.
        minimum: usize,
    },
    /// The data was written by a newer (or unknown) format version.
    #[error("unsupported vault format version {0}")]
    UnsupportedVersion(u8),
    /// The Argon2id parameters are outside what this device will run.
    #[error("unusable key-derivation parameters: {0}")]
    InvalidKdfParams(String),
    /// Argon2id failed, e.g. it could not allocate its memory.
    #[error("key derivation failed: {0}")]
    KeyDerivation(String),
    /// Sealed data is truncated or malformed.
    #[error("sealed data is truncated or malformed")]
    Corrupt,
    /// Sealed data failed authentication: it was altered, or belongs to another record,
    /// revision, kind, blob or chunk.
    #[error("sealed data was altered or belongs elsewhere")]
    Tampered,
    /// A revision to seal does not match its own content hash.
    #[error("the revision does not match its content hash")]
    InvalidRevision,
    /// The data is too large to encrypt in one piece.
    #[error("the data is too large to encrypt")]
    TooLarge,
    /// The platform's secure random source failed.
    #[error("the secure random number generator failed")]
    Randomness,
}

/// Argon2id cost parameters, stored with the wrapped key so they can be raised later.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory in KiB.
    pub m_kib: u32,
    /// Passes over the memory (time cost).
    pub t: u32,
    /// Lanes (parallelism). Browsers run them one after another, so 1 is usual.
    pub p: u32,
}

impl KdfParams {
    /// 64 MiB, 3 passes, 1 lane: the starting point until unlock time is measured on
    /// tablets (the aim is 0.5-1 s).
    pub const DEFAULT: KdfParams = KdfParams {
        m_kib: 64 * 1024,
        t: 3,
        p: 1,
    };
    /// The most memory accepted (1 GiB), so a crafted wrapped key cannot exhaust a tablet.
    pub const MAX_M_KIB: u32 = 1024 * 1024;
    /// The most passes accepted.
    pub const MAX_T: u32 = 64;
    /// The most lanes accepted.
    pub const MAX_P: u32 = 16;

    /// The Argon2 parameters, if these are within bounds.
    fn to_argon2(self) -> Result<Params, VaultError> {
        let invalid = |reason: &str| Err(VaultError::InvalidKdfParams(reason.to_owned()));
        if self.p == 0 || self.p > Self::MAX_P {
            return invalid("p must be between 1 and 16");
        }
        if self.t == 0 || self.t > Self::MAX_T {
            return invalid("t must be between 1 and 64");
        }
        if self.m_kib > Self::MAX_M_KIB {
            return invalid("m_kib must be at most 1 GiB");
        }
        Params::new(self.m_kib, self.t, self.p, Some(KEY_LEN))
            .map_err(|error| VaultError::InvalidKdfParams(error.to_string()))
    }
}

impl Default for KdfParams {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// A vault key wrapped under a passphrase: what the device stores so the vault can be
/// unlocked later. Contains no secret in clear; serialises with hex byte strings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrappedVaultKey {
    /// The wrapping format (1: Argon2id v0x13 and XChaCha20-Poly1305).
    pub version: u8,
    /// The Argon2id parameters used to derive the key-encryption key.
    pub kdf: KdfParams,
    /// The Argon2id salt.
    #[serde(with = "crate::hex::array")]
    pub salt: [u8; SALT_LEN],
    /// The XChaCha20-Poly1305 nonce.
    #[serde(with = "crate::hex::array")]
    pub nonce: [u8; NONCE_LEN],
    /// The encrypted vault key and its tag.
    #[serde(with = "crate::hex::vec")]
    pub ciphertext: Vec<u8>,
}

/// An unlocked vault: holds the vault key in memory and seals and opens data with it.
///
/// Drop it to lock; the key is zeroed.
pub struct Vault {
    key: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Vault(<unlocked>)")
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], VaultError> {
    let mut bytes = [0; N];
    getrandom::fill(&mut bytes).map_err(|_| VaultError::Randomness)?;
    Ok(bytes)
}

pub(crate) fn check_new_passphrase(passphrase: &str) -> Result<(), VaultError> {
    if passphrase.chars().count() < MIN_PASSPHRASE_LEN {
        return Err(VaultError::PassphraseTooShort {
            minimum: MIN_PASSPHRASE_LEN,
        });
    }
    Ok(())
}

/// Argon2id(passphrase, salt) with the given parameters.
pub(crate) fn derive_kek(
    passphrase: &str,
    params: KdfParams,
    salt: &[u8; SALT_LEN],
) -> Result<Zeroizing<[u8; KEY_LEN]>, VaultError> {
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.to_argon2()?);
    let mut kek = Zeroizing::new([0; KEY_LEN]);
    argon2
        .hash_password_into(passphrase.as_bytes(), salt, kek.as_mut())
        .map_err(|error| VaultError::KeyDerivation(error.to_string()))?;
    Ok(kek)
}

pub(crate) fn cipher(key: &[u8; KEY_LEN]) -> XChaCha20Poly1305 {
    // The cipher keeps its own copy of the key, zeroed on drop (chacha20poly1305's
    // `zeroize` feature).
    XChaCha20Poly1305::new(<&Key>::from(key))
}

fn wrap_associated_data(version: u8, kdf: KdfParams, salt: &[u8; SALT_LEN]) -> Vec<u8> {
    Encoder::new("attune.vault-key.v1")
        .u8(version)
        .u32(kdf.m_kib)
        .u32(kdf.t)
        .u32(kdf.p)
        .fixed(salt)
        .finish()
}

fn body_associated_data(record: RecordId, rev: u32, kind: Kind) -> Vec<u8> {
    Encoder::new("attune.record-body.v1")
        .u8(SEALED_FORMAT)
        .fixed(record.as_bytes())
        .u32(rev)
        .str(kind.as_str())
        .finish()
}

fn revision_associated_data(record: RecordId, rev: u32, kind: Kind, hash: ContentHash) -> Vec<u8> {
    Encoder::new("attune.stored-revision.v1")
        .u8(SEALED_FORMAT)
        .fixed(record.as_bytes())
        .u32(rev)
        .str(kind.as_str())
        .fixed(hash.as_bytes())
        .finish()
}

fn chunk_associated_data(blob: BlobId, index: u32) -> Vec<u8> {
    Encoder::new("attune.blob-chunk.v1")
        .u8(SEALED_FORMAT)
        .fixed(blob.as_bytes())
        .u32(index)
        .finish()
}

fn device_value_associated_data(name: &str) -> Vec<u8> {
    Encoder::new("attune.device-value.v1")
        .u8(SEALED_FORMAT)
        .str(name)
        .finish()
}

impl Vault {
    /// The fewest characters a passphrase may have.
    pub const fn minimum_passphrase_len() -> usize {
        MIN_PASSPHRASE_LEN
    }

    /// Creates a vault with a new random key, and that key wrapped under `passphrase`.
    /// Store the [`WrappedVaultKey`]; keep the [`Vault`] while unlocked.
    ///
    /// # Errors
    /// [`VaultError::PassphraseTooShort`], [`VaultError::InvalidKdfParams`],
    /// [`VaultError::KeyDerivation`], [`VaultError::Randomness`].
    pub fn create(
        passphrase: &str,
        params: KdfParams,
    ) -> Result<(Vault, WrappedVaultKey), VaultError> {
        check_new_passphrase(passphrase)?;
        let mut key = Zeroizing::new([0; KEY_LEN]);
        getrandom::fill(key.as_mut()).map_err(|_| VaultError::Randomness)?;
        let vault = Vault { key };
        let wrapped = vault.wrap(passphrase, params)?;
        Ok((vault, wrapped))
    }

    /// Unlocks a vault with its passphrase. Takes as long as the Argon2id parameters make
    /// it (by design).
    ///
    /// # Errors
    /// [`VaultError::WrongPassphrase`] (also if the wrapped key was altered),
    /// [`VaultError::UnsupportedVersion`], [`VaultError::InvalidKdfParams`],
    /// [`VaultError::KeyDerivation`], [`VaultError::Corrupt`].
    pub fn unlock(passphrase: &str, wrapped: &WrappedVaultKey) -> Result<Vault, VaultError> {
        if wrapped.version != WRAP_VERSION {
            return Err(VaultError::UnsupportedVersion(wrapped.version));
        }
        let kek = derive_kek(passphrase, wrapped.kdf, &wrapped.salt)?;
        let associated_data = wrap_associated_data(wrapped.version, wrapped.kdf, &wrapped.salt);
        let unwrapped = cipher(&kek)
            .decrypt(
                &XNonce::from(wrapped.nonce),
                Payload {
                    msg: &wrapped.ciphertext,
                    aad: &associated_data,
                },
            )
            .map_err(|_| VaultError::WrongPassphrase)?;
        let unwrapped = Zeroizing::new(unwrapped);
        if unwrapped.len() != KEY_LEN {
            return Err(VaultError::Corrupt);
        }
        let mut key = Zeroizing::new([0; KEY_LEN]);
        key.copy_from_slice(&unwrapped);
        Ok(Vault { key })
    }

    /// Wraps this vault's key under a new passphrase (and possibly new parameters). Store
    /// the result in place of the old one: the old passphrase then no longer unlocks the
    /// vault, and all data stays readable without re-encryption.
    ///
    /// # Errors
    /// [`VaultError::PassphraseTooShort`], [`VaultError::InvalidKdfParams`],
    /// [`VaultError::KeyDerivation`], [`VaultError::Randomness`].
    pub fn rewrap(
        &self,
        new_passphrase: &str,
        params: KdfParams,
    ) -> Result<WrappedVaultKey, VaultError> {
        check_new_passphrase(new_passphrase)?;
        self.wrap(new_passphrase, params)
    }

    fn wrap(&self, passphrase: &str, kdf: KdfParams) -> Result<WrappedVaultKey, VaultError> {
        let salt = random::<SALT_LEN>()?;
        let nonce = random::<NONCE_LEN>()?;
        let kek = derive_kek(passphrase, kdf, &salt)?;
        let associated_data = wrap_associated_data(WRAP_VERSION, kdf, &salt);
        let ciphertext = cipher(&kek)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: self.key.as_slice(),
                    aad: &associated_data,
                },
            )
            .map_err(|_| VaultError::TooLarge)?;
        Ok(WrappedVaultKey {
            version: WRAP_VERSION,
            kdf,
            salt,
            nonce,
            ciphertext,
        })
    }

    fn seal(&self, associated_data: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        let nonce = random::<NONCE_LEN>()?;
        let ciphertext = cipher(&self.key)
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: associated_data,
                },
            )
            .map_err(|_| VaultError::TooLarge)?;
        let mut sealed = Vec::with_capacity(1 + NONCE_LEN + ciphertext.len());
        sealed.push(SEALED_FORMAT);
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(&ciphertext);
        Ok(sealed)
    }

    fn open(&self, associated_data: &[u8], sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        let (&version, rest) = sealed.split_first().ok_or(VaultError::Corrupt)?;
        if version != SEALED_FORMAT {
            return Err(VaultError::UnsupportedVersion(version));
        }
        if rest.len() < NONCE_LEN + TAG_LEN {
            return Err(VaultError::Corrupt);
        }
        let (nonce, ciphertext) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Corrupt)?;
        cipher(&self.key)
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ciphertext,
                    aad: associated_data,
                },
            )
            .map_err(|_| VaultError::Tampered)
    }

    /// Seals a record body, bound to its record, revision number and kind.
    ///
    /// # Errors
    /// [`VaultError::Randomness`], [`VaultError::TooLarge`].
    pub fn seal_body(
        &self,
        record: RecordId,
        rev: u32,
        kind: Kind,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.seal(&body_associated_data(record, rev, kind), plaintext)
    }

    /// Opens a body sealed by [`Vault::seal_body`] for the same record, revision and kind.
    ///
    /// # Errors
    /// [`VaultError::Tampered`] if the bytes were altered or belong to another record,
    /// revision or kind; [`VaultError::Corrupt`] if they are truncated;
    /// [`VaultError::UnsupportedVersion`].
    pub fn open_body(
        &self,
        record: RecordId,
        rev: u32,
        kind: Kind,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.open(&body_associated_data(record, rev, kind), sealed)
    }

    /// Seals one chunk of a blob, bound to the blob and the chunk's index.
    ///
    /// # Errors
    /// [`VaultError::Randomness`], [`VaultError::TooLarge`].
    pub fn seal_chunk(
        &self,
        blob: BlobId,
        index: u32,
        plaintext: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.seal(&chunk_associated_data(blob, index), plaintext)
    }

    /// Opens a chunk sealed by [`Vault::seal_chunk`] for the same blob and index.
    ///
    /// # Errors
    /// As [`Vault::open_body`].
    pub fn open_chunk(
        &self,
        blob: BlobId,
        index: u32,
        sealed: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        self.open(&chunk_associated_data(blob, index), sealed)
    }

    /// Seals a value that stays on this device and is never synced (participants' real
    /// names, the enrolment's device token and signing key), bound to its `name`.
    ///
    /// # Errors
    /// [`VaultError::Randomness`], [`VaultError::TooLarge`].
    pub fn seal_device_value(&self, name: &str, plaintext: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.seal(&device_value_associated_data(name), plaintext)
    }

    /// Opens a value sealed by [`Vault::seal_device_value`] under the same `name`.
    ///
    /// # Errors
    /// As [`Vault::open_body`]: a value stored under another name fails with
    /// [`VaultError::Tampered`].
    pub fn open_device_value(&self, name: &str, sealed: &[u8]) -> Result<Vec<u8>, VaultError> {
        self.open(&device_value_associated_data(name), sealed)
    }

    /// The secret seed for sealing an attachment to the study key
    /// ([`crate::attachment::seal_attachment`]): HKDF-SHA256 of the vault key with a domain
    /// label, the blob id and the content's SHA-256 (hex). Deterministic, so a device that
    /// reloads mid-upload re-seals to the same bytes; secret, because it fixes the HPKE
    /// ephemeral key; and different for different content, so no AEAD key is ever reused.
    pub fn attachment_seed(&self, blob: BlobId, content_sha256: &str) -> Zeroizing<[u8; 32]> {
        let info = Encoder::new("attune.attachment-seed.v1")
            .fixed(blob.as_bytes())
            .str(content_sha256)
            .finish();
        let mut seed = Zeroizing::new([0; 32]);
        hkdf::Hkdf::<sha2::Sha256>::new(None, self.key.as_slice())
            .expand(&info, seed.as_mut())
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        seed
    }

    /// Seals a whole revision for a [`crate::RecordStore`]: the index fields stay in clear,
    /// the complete revision ([`Revision::to_bytes`]) is sealed, bound to its record,
    /// revision number, kind and content hash.
    ///
    /// # Errors
    /// [`VaultError::InvalidRevision`] if the revision does not match its hash;
    /// [`VaultError::Randomness`], [`VaultError::TooLarge`].
    pub fn seal_revision(&self, revision: &Revision) -> Result<StoredRevision, VaultError> {
        if !revision.hash_is_valid() {
            return Err(VaultError::InvalidRevision);
        }
        let plaintext = Zeroizing::new(revision.to_bytes());
        let associated_data = revision_associated_data(
            revision.record_id,
            revision.rev,
            revision.kind,
            revision.hash,
        );
        let sealed = self.seal(&associated_data, &plaintext)?;
        Ok(StoredRevision::new(revision, sealed))
    }

    /// Opens a revision sealed by [`Vault::seal_revision`], checking that the clear index
    /// fields the store kept agree with the sealed revision.
    ///
    /// # Errors
    /// [`VaultError::Tampered`] if the sealed bytes or any clear index field were altered;
    /// [`VaultError::Corrupt`] if the sealed bytes are truncated or do not decode;
    /// [`VaultError::UnsupportedVersion`].
    pub fn open_revision(&self, stored: &StoredRevision) -> Result<Revision, VaultError> {
        let associated_data =
            revision_associated_data(stored.record_id, stored.rev, stored.kind, stored.hash);
        let plaintext = Zeroizing::new(self.open(&associated_data, &stored.sealed)?);
        let revision = Revision::from_bytes(&plaintext).map_err(|_| VaultError::Corrupt)?;
        let index_fields_agree = revision.record_id == stored.record_id
            && revision.rev == stored.rev
            && revision.parent_hash == stored.parent_hash
            && revision.kind == stored.kind
            && revision.participant == stored.participant
            && revision.visit == stored.visit
            && revision.time == stored.time
            && revision.hash == stored.hash;
        if index_fields_agree {
            Ok(revision)
        } else {
            Err(VaultError::Tampered)
        }
    }
}
