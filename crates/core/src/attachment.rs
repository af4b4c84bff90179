//! Attachments on their way to the research server: sealing to the study key, and the
//! shapes of the resumable upload protocol.
//!
//! An attachment (a recording, a drawing, a photo) is stored on the device as vault-sealed
//! chunks. To sync it, the device opens those chunks and seals the plaintext to the study's
//! public key with [`seal_attachment`]; the server stores the sealed bytes, named by their
//! SHA-256, and only the study's private key opens them ([`open_attachment`]).
//!
//! # Sealed format
//!
//! ```text
//! header = canonical encoding (see crate::encoding) under the domain tag `attune.attachment.v1`:
//!          blob id (16 bytes), HPKE encapsulated key (32 bytes)
//! frame  = u32 big-endian ciphertext length, ciphertext (plaintext chunk + 16-byte tag)
//! sealed = header, frame 0, frame 1, ... (at least one frame; no chunks = one empty frame)
//! ```
//!
//! The HPKE suite is the one envelopes use (X25519-HKDF-SHA256, HKDF-SHA256,
//! ChaCha20-Poly1305), one sender context for the whole attachment. The HPKE `info` binds the
//! blob id; each frame's `aad` binds the blob id, the frame index and whether it is the last
//! frame. So moving sealed bytes to another blob, reordering frames, dropping frames at the
//! end (or anywhere) or altering any byte fails to open.
//!
//! # Determinism
//!
//! The HPKE ephemeral key comes from a ChaCha20 generator seeded with the 32-byte `seed`, so
//! the same seed and chunks always give the same bytes. A device that reloads in the middle of
//! an upload therefore re-seals to exactly the bytes the server already holds part of, and the
//! upload resumes. The seed must be secret and must never be reused for other content (that
//! would reuse an AEAD key and nonce): use [`crate::Vault::attachment_seed`], which derives it
//! from the vault key, the blob id and the content's SHA-256.

use chacha20::ChaCha20Rng;
use chacha20::rand_core::SeedableRng;
use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::{Deserializable, OpModeR, OpModeS, Serializable};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::encoding::{Decoder, Encoder};
use crate::envelope::{EnvelopeError, StudyPrivateKey, StudyPublicKey};
use crate::ids::BlobId;

type StudyKem = X25519HkdfSha256;

const DOMAIN: &str = "attune.attachment.v1";
const INFO_DOMAIN: &str = "attune.attachment-info.v1";
const FRAME_DOMAIN: &str = "attune.attachment-frame.v1";
const ENCAPPED_KEY_LEN: usize = 32;
/// Domain tag (u64 length + text), blob id, encapsulated key.
const HEADER_LEN: usize = 8 + DOMAIN.len() + 16 + ENCAPPED_KEY_LEN;
const TAG_LEN: usize = 16;

/// The most bytes one upload may hold (1 GiB): a longer one is refused when it is created.
pub const MAX_UPLOAD_LENGTH: u64 = 1 << 30;
/// The most bytes one upload request (`PATCH`) may carry (8 MiB).
pub const MAX_UPLOAD_PIECE: usize = 8 << 20;
/// The size of the pieces clients send (1 MiB): small enough that an interrupted piece costs
/// little, large enough that a 20 MB recording takes 20 requests.
pub const UPLOAD_PIECE: usize = 1 << 20;

/// `POST /api/uploads`: announce an upload of sealed attachment bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadCreate {
    /// The attachment's blob id (what its Attachment record's body names).
    pub blob_id: BlobId,
    /// The number of sealed bytes.
    pub length: u64,
    /// The SHA-256 of the sealed bytes, 64 lower-case hex digits: the upload's name.
    pub sha256: String,
}

/// The server's answer about an upload: how much of it it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadState {
    /// Bytes the server holds durably; the next piece starts here.
    pub offset: u64,
    /// The upload's total length.
    pub length: u64,
    /// Whether the server holds all of it, checked against its SHA-256.
    pub complete: bool,
}

/// The SHA-256 of `bytes` as 64 lower-case hex digits (the name of sealed attachment bytes).
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::hex::encode(&Sha256::digest(bytes))
}

/// The `Upload-Checksum` header value for one piece of an upload: `sha256 <base64 of its
/// SHA-256>` (the tus checksum extension's syntax), which the server checks before appending.
pub fn upload_checksum(piece: &[u8]) -> String {
    use base64::Engine as _;
    format!(
        "sha256 {}",
        base64::engine::general_purpose::STANDARD.encode(Sha256::digest(piece))
    )
}

/// Whether `text` looks like a SHA-256 in lower-case hex (64 digits).
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn info(blob: BlobId) -> Vec<u8> {
    Encoder::new(INFO_DOMAIN).fixed(blob.as_bytes()).finish()
}

fn frame_aad(blob: BlobId, index: u32, last: bool) -> Vec<u8> {
    Encoder::new(FRAME_DOMAIN)
        .fixed(blob.as_bytes())
        .u32(index)
        .u8(u8::from(last))
        .finish()
}

/// Seals an attachment's plaintext `chunks` (in order) to the study key. The same `seed` and
/// chunks give the same bytes; see the [module documentation](self) for the format and for
/// what the seed must be.
///
/// # Errors
/// [`EnvelopeError::Seal`] if a chunk is too large for a frame (4 GiB) or HPKE fails.
pub fn seal_attachment(
    blob: BlobId,
    chunks: &[Vec<u8>],
    study: &StudyPublicKey,
    seed: &[u8; 32],
) -> Result<Vec<u8>, EnvelopeError> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    let (encapped, mut context) = hpke::setup_sender_with_rng::<
        ChaCha20Poly1305,
        HkdfSha256,
        StudyKem,
    >(&OpModeS::Base, &study.0, &info(blob), &mut rng)
    .map_err(|error| EnvelopeError::Seal(error.to_string()))?;
    let empty = [Vec::new()];
    let chunks = if chunks.is_empty() {
        &empty[..]
    } else {
        chunks
    };
    let total: usize = chunks.iter().map(|c| c.len() + TAG_LEN + 4).sum();
    let mut sealed = Encoder::new(DOMAIN)
        .fixed(blob.as_bytes())
        .fixed(&encapped.to_bytes())
        .finish();
    sealed.reserve(total);
    for (index, chunk) in chunks.iter().enumerate() {
        let index =
            u32::try_from(index).map_err(|_| EnvelopeError::Seal("too many chunks".into()))?;
        let last = index as usize + 1 == chunks.len();
        let ciphertext = context
            .seal(chunk, &frame_aad(blob, index, last))
            .map_err(|error| EnvelopeError::Seal(error.to_string()))?;
        let len = u32::try_from(ciphertext.len())
            .map_err(|_| EnvelopeError::Seal("a chunk is too large".into()))?;
        sealed.extend_from_slice(&len.to_be_bytes());
        sealed.extend_from_slice(&ciphertext);
    }
    Ok(sealed)
}

/// Opens bytes made by [`seal_attachment`]: the blob id and the whole plaintext.
///
/// # Errors
/// [`EnvelopeError::Malformed`] if the bytes are not a sealed attachment (too short, bad
/// header or frame lengths); [`EnvelopeError::CannotOpen`] if they were sealed to another
/// study key, or were altered, reordered or truncated.
pub fn open_attachment(
    bytes: &[u8],
    key: &StudyPrivateKey,
) -> Result<(BlobId, Vec<u8>), EnvelopeError> {
    let malformed = |why: &str| EnvelopeError::Malformed(format!("sealed attachment: {why}"));
    if bytes.len() < HEADER_LEN {
        return Err(malformed("too short"));
    }
    let (header, mut frames) = bytes.split_at(HEADER_LEN);
    let mut decoder = Decoder::new(header, DOMAIN).map_err(|_| malformed("not an attachment"))?;
    let blob = BlobId::from_bytes(decoder.array().map_err(|_| malformed("bad header"))?);
    let encapped: [u8; ENCAPPED_KEY_LEN] = decoder.array().map_err(|_| malformed("bad header"))?;
    let encapped = <StudyKem as hpke::Kem>::EncappedKey::from_bytes(&encapped)
        .map_err(|_| malformed("bad encapsulated key"))?;
    let mut context = hpke::setup_receiver::<ChaCha20Poly1305, HkdfSha256, StudyKem>(
        &OpModeR::Base,
        &key.secret,
        &encapped,
        &info(blob),
    )
    .map_err(|_| EnvelopeError::CannotOpen)?;
    if frames.is_empty() {
        // Every sealed attachment has at least one frame: all of them were cut off.
        return Err(EnvelopeError::CannotOpen);
    }
    let mut plaintext = Vec::with_capacity(frames.len());
    let mut index: u32 = 0;
    while !frames.is_empty() {
        let (len, rest) = frames
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("truncated frame length"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if len < TAG_LEN || len > rest.len() {
            return Err(malformed("truncated frame"));
        }
        let (ciphertext, rest) = rest.split_at(len);
        let chunk = Zeroizing::new(
            context
                .open(ciphertext, &frame_aad(blob, index, rest.is_empty()))
                .map_err(|_| EnvelopeError::CannotOpen)?,
        );
        plaintext.extend_from_slice(&chunk);
        frames = rest;
        index = index
            .checked_add(1)
            .ok_or_else(|| malformed("too many frames"))?;
    }
    Ok((blob, plaintext))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::StudyKeyPair;
    use crate::time::Timestamp;

    fn blob() -> BlobId {
        BlobId::from_bytes([0x42; 16])
    }

    fn chunks() -> Vec<Vec<u8>> {
        vec![
            b"the first second of a recording".to_vec(),
            vec![7; 5000],
            b"and the end".to_vec(),
        ]
    }

    /// Splits sealed bytes into the header and each frame (length prefix included).
    fn split_frames(sealed: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
        let (header, mut rest) = sealed.split_at(HEADER_LEN);
        let mut frames = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let (frame, tail) = rest.split_at(4 + len);
            frames.push(frame.to_vec());
            rest = tail;
        }
        (header.to_vec(), frames)
    }

    #[test]
    fn a_sealed_attachment_opens_to_its_blob_and_plaintext() {
        let study = StudyKeyPair::generate();
        let blob = blob();
        let sealed = seal_attachment(blob, &chunks(), &study.public_key(), &[1; 32]).unwrap();
        assert!(
            !sealed.windows(11).any(|window| window == b"and the end"),
            "no plaintext in the sealed bytes"
        );
        let (opened_blob, plaintext) = open_attachment(&sealed, study.private_key()).unwrap();
        assert_eq!(opened_blob, blob);
        assert_eq!(plaintext, chunks().concat());
    }

    #[test]
    fn the_same_seed_and_chunks_give_the_same_bytes() {
        let study = StudyKeyPair::generate();
        let blob = blob();
        let first = seal_attachment(blob, &chunks(), &study.public_key(), &[9; 32]).unwrap();
        let again = seal_attachment(blob, &chunks(), &study.public_key(), &[9; 32]).unwrap();
        assert_eq!(first, again);
        assert_eq!(sha256_hex(&first), sha256_hex(&again));
    }

    #[test]
    fn another_seed_gives_other_bytes() {
        let study = StudyKeyPair::generate();
        let blob = blob();
        let first = seal_attachment(blob, &chunks(), &study.public_key(), &[9; 32]).unwrap();
        let other = seal_attachment(blob, &chunks(), &study.public_key(), &[8; 32]).unwrap();
        assert_ne!(first, other);
        assert_eq!(
            open_attachment(&other, study.private_key()).unwrap().1,
            chunks().concat()
        );
    }

    #[test]
    fn an_empty_attachment_roundtrips() {
        let study = StudyKeyPair::generate();
        let sealed = seal_attachment(blob(), &[], &study.public_key(), &[3; 32]).unwrap();
        assert_eq!(
            open_attachment(&sealed, study.private_key()).unwrap(),
            (blob(), Vec::new())
        );
        // Cutting its one frame off is noticed.
        assert_eq!(
            open_attachment(&sealed[..HEADER_LEN], study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
    }

    #[test]
    fn dropping_the_last_frames_fails_to_open() {
        let study = StudyKeyPair::generate();
        let sealed = seal_attachment(blob(), &chunks(), &study.public_key(), &[1; 32]).unwrap();
        let (header, frames) = split_frames(&sealed);
        assert_eq!(frames.len(), 3);
        let truncated = [header.clone(), frames[0].clone(), frames[1].clone()].concat();
        assert_eq!(
            open_attachment(&truncated, study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
        // Cut in the middle of a frame: malformed, not a panic.
        assert!(matches!(
            open_attachment(&sealed[..sealed.len() - 3], study.private_key()),
            Err(EnvelopeError::Malformed(_))
        ));
        assert!(matches!(
            open_attachment(&sealed[..10], study.private_key()),
            Err(EnvelopeError::Malformed(_))
        ));
    }

    #[test]
    fn reordered_frames_fail_to_open() {
        let study = StudyKeyPair::generate();
        let sealed = seal_attachment(blob(), &chunks(), &study.public_key(), &[1; 32]).unwrap();
        let (header, frames) = split_frames(&sealed);
        let swapped = [
            header,
            frames[1].clone(),
            frames[0].clone(),
            frames[2].clone(),
        ]
        .concat();
        assert_eq!(
            open_attachment(&swapped, study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
    }

    #[test]
    fn an_altered_byte_fails_to_open() {
        let study = StudyKeyPair::generate();
        let sealed = seal_attachment(blob(), &chunks(), &study.public_key(), &[1; 32]).unwrap();
        for position in [HEADER_LEN - 1, HEADER_LEN + 10, sealed.len() - 1] {
            let mut altered = sealed.clone();
            altered[position] ^= 1;
            assert_eq!(
                open_attachment(&altered, study.private_key()),
                Err(EnvelopeError::CannotOpen),
                "byte {position}"
            );
        }
        // The blob id in the header is bound too: the bytes cannot be passed off as another blob.
        let mut moved = sealed.clone();
        moved[8 + DOMAIN.len()] ^= 1;
        assert_eq!(
            open_attachment(&moved, study.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
    }

    #[test]
    fn another_study_key_cannot_open() {
        let study = StudyKeyPair::generate();
        let other = StudyKeyPair::generate();
        let sealed = seal_attachment(blob(), &chunks(), &study.public_key(), &[1; 32]).unwrap();
        assert_eq!(
            open_attachment(&sealed, other.private_key()),
            Err(EnvelopeError::CannotOpen)
        );
    }

    #[test]
    fn the_vault_seed_is_deterministic_per_vault_blob_and_content() {
        use crate::vault::{KdfParams, Vault};
        let cheap = KdfParams {
            m_kib: 64,
            t: 1,
            p: 1,
        };
        let (vault, wrapped) = Vault::create("correct horse battery", cheap).unwrap();
        let (other_vault, _) = Vault::create("correct horse battery", cheap).unwrap();
        let reopened = Vault::unlock("correct horse battery", &wrapped).unwrap();
        let content = sha256_hex(b"content");
        let seed = vault.attachment_seed(blob(), &content);
        assert_eq!(*seed, *reopened.attachment_seed(blob(), &content));
        assert_ne!(*seed, *other_vault.attachment_seed(blob(), &content));
        assert_ne!(*seed, *vault.attachment_seed(blob(), &sha256_hex(b"other")));
        let other_blob = BlobId::new(Timestamp(1_800_000_000_000));
        assert_ne!(other_blob, blob());
        assert_ne!(*seed, *vault.attachment_seed(other_blob, &content));
    }

    #[test]
    fn upload_shapes_are_plain_json() {
        let create = UploadCreate {
            blob_id: blob(),
            length: 42,
            sha256: sha256_hex(b"x"),
        };
        let json = serde_json::to_value(&create).unwrap();
        assert_eq!(json["length"], 42);
        assert_eq!(json["blob_id"], blob().to_string());
        assert!(is_sha256_hex(&create.sha256));
        assert!(!is_sha256_hex("ABC"));
        let state: UploadState =
            serde_json::from_str(r#"{"offset":1,"length":2,"complete":false}"#).unwrap();
        assert_eq!(state.offset, 1);
    }
}
