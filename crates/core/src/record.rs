//! Records as chains of immutable revisions.
//!
//! A record (a consent form, an interview note, an activity response...) is never edited in
//! place: each save appends a [`Revision`] that names its parent by content hash. Nothing is
//! overwritten, so sync is lossless (a revision is the same everywhere or it is a conflict)
//! and the history is auditable.
//!
//! # The content hash
//!
//! [`Revision::hash`] is SHA-256 over the canonical encoding (see [`crate::encoding`]) of
//! every other field, in this order:
//!
//! | field | encoding |
//! |---|---|
//! | domain tag | string `attune.revision.v1` |
//! | `record_id` | 16 bytes |
//! | `rev` | u32 |
//! | `parent_hash` | optional, 32 bytes |
//! | `kind` | string, e.g. `interview_note` ([`Kind::as_str`]) |
//! | `participant` | optional, 16 bytes |
//! | `visit` | optional, 16 bytes |
//! | `protocol` | optional: string id, then u32 version |
//! | `device` | 16 bytes |
//! | `author` | 16 bytes |
//! | `time` | i64 (milliseconds since the epoch) |
//! | `body` | byte string |
//!
//! [`Revision::to_bytes`] is the same encoding followed by the 32 hash bytes.
//!
//! The body is opaque bytes (usually JSON written once by the feature that owns the record)
//! so that the hash never depends on how a JSON library orders keys or formats numbers.

use std::fmt;
use std::str::FromStr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use thiserror::Error;

use crate::encoding::{DecodeError, Decoder, Encoder};
use crate::ids::{DeviceId, ParticipantId, ProfileId, RecordId, VisitId};
use crate::time::Timestamp;

/// The domain tag of the revision encoding (see the module documentation).
const REVISION_DOMAIN: &str = "attune.revision.v1";

/// A SHA-256 hash identifying content: a revision, or the plaintext of an attachment.
///
/// Serialised as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ContentHash([u8; 32]);

impl ContentHash {
    /// The SHA-256 hash of `data`.
    pub fn sha256(data: &[u8]) -> Self {
        Self(Sha256::digest(data).into())
    }

    /// Wraps 32 hash bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 hash bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as 64 lower-case hex digits.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
}

impl fmt::Display for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for ContentHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The first 8 bytes are plenty to tell hashes apart in logs and test output.
        write!(f, "ContentHash({}…)", &self.to_hex()[..16])
    }
}

/// A string that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a content hash is 64 hex digits")]
pub struct ParseHashError;

impl FromStr for ContentHash {
    type Err = ParseHashError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        crate::hex::decode_array(text)
            .map(Self)
            .ok_or(ParseHashError)
    }
}

impl Serialize for ContentHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for ContentHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// What a record is. Stored in clear (the store lists records by kind) and bound into the
/// encryption of the body, so a body cannot be passed off as another kind.
///
/// Serialised as its snake_case name ([`Kind::as_str`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Kind {
    /// A participant: pseudonymous code, group, links, status.
    Participant,
    /// A visit: date, place type, fieldworker, participants present.
    Visit,
    /// An adult's consent form answers.
    Consent,
    /// A child's assent.
    Assent,
    /// The fieldworker's notes for one interview question.
    InterviewNote,
    /// A child's response to one activity prompt.
    ActivityResponse,
    /// A fieldworker's reflection after a visit.
    Reflection,
    /// A fieldworker's own note in their notebook, not tied to a visit.
    FieldNote,
    /// An attachment (audio, drawing, photo): metadata pointing at a blob.
    Attachment,
    /// A participant's withdrawal of consent.
    Withdrawal,
    /// The record that a withdrawn participant's data was purged from this device.
    Purge,
}

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: &'static [Kind] = &[
        Kind::Participant,
        Kind::Visit,
        Kind::Consent,
        Kind::Assent,
        Kind::InterviewNote,
        Kind::ActivityResponse,
        Kind::Reflection,
        Kind::FieldNote,
        Kind::Attachment,
        Kind::Withdrawal,
        Kind::Purge,
    ];

    /// The snake_case name, as used in serialisation, hashes and associated data.
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Participant => "participant",
            Kind::Visit => "visit",
            Kind::Consent => "consent",
            Kind::Assent => "assent",
            Kind::InterviewNote => "interview_note",
            Kind::ActivityResponse => "activity_response",
            Kind::Reflection => "reflection",
            Kind::FieldNote => "field_note",
            Kind::Attachment => "attachment",
            Kind::Withdrawal => "withdrawal",
            Kind::Purge => "purge",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a known [`Kind`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown record kind {0:?}")]
pub struct UnknownKind(pub String);

impl FromStr for Kind {
    type Err = UnknownKind;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Kind::ALL
            .iter()
            .copied()
            .find(|kind| kind.as_str() == name)
            .ok_or_else(|| UnknownKind(name.to_owned()))
    }
}

/// The protocol (study description) and version a revision was captured under, so a new
/// protocol version never orphans old records.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ProtocolRef {
    /// The protocol's id, e.g. `vig-evaluation`.
    pub id: String,
    /// The protocol's version number.
    pub version: u32,
}

/// What a revision is about: the participant, visit and protocol it belongs to. These are
/// kept in clear by the store (except the protocol) so records can be listed by participant
/// and by visit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Links {
    /// The participant the record is about, if any.
    pub participant: Option<ParticipantId>,
    /// The visit the record was made in, if any.
    pub visit: Option<VisitId>,
    /// The protocol the record was captured under, if any.
    pub protocol: Option<ProtocolRef>,
}

/// Who made a revision, on which device, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Authorship {
    /// The device the revision was made on.
    pub device: DeviceId,
    /// The fieldworker profile that made it.
    pub author: ProfileId,
    /// When it was made.
    pub time: Timestamp,
}

/// Why a chain of revisions (or a single revision) is not valid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum ChainError {
    /// There are no revisions at all.
    #[error("the chain has no revisions")]
    Empty,
    /// Revisions are not numbered 1, 2, 3... in order.
    #[error("revision at position {position} is numbered {found}, expected {expected}")]
    OutOfOrder {
        /// Zero-based position in the slice.
        position: usize,
        /// The revision number that belongs at this position.
        expected: u32,
        /// The revision number found there.
        found: u32,
    },
    /// A revision belongs to a different record than the first one.
    #[error("revision {rev} belongs to another record")]
    OtherRecord {
        /// The revision number.
        rev: u32,
    },
    /// A revision changes the record's kind.
    #[error("revision {rev} changes the record's kind")]
    KindChanged {
        /// The revision number.
        rev: u32,
    },
    /// A revision's parent hash is not the hash of the revision before it (or revision 1
    /// has a parent).
    #[error("revision {rev} does not name the previous revision as its parent")]
    ParentMismatch {
        /// The revision number.
        rev: u32,
    },
    /// A revision's content does not match its hash: it was altered.
    #[error("revision {rev} does not match its content hash")]
    HashMismatch {
        /// The revision number.
        rev: u32,
    },
    /// The record already has `u32::MAX` revisions.
    #[error("the record cannot have more revisions")]
    RevisionLimit,
}

/// One immutable revision of a record.
///
/// Build revisions with [`Revision::first`] and [`Revision::next`], which compute the hash.
/// The fields are public for reading; a revision assembled or altered by hand is caught by
/// [`Revision::hash_is_valid`] and [`verify_chain`].
#[derive(Clone, PartialEq, Eq)]
pub struct Revision {
    /// The record this revision belongs to.
    pub record_id: RecordId,
    /// The revision number: 1 for the first, then 2, 3...
    pub rev: u32,
    /// The hash of the previous revision; `None` for revision 1.
    pub parent_hash: Option<ContentHash>,
    /// What the record is; the same in every revision.
    pub kind: Kind,
    /// The participant the record is about, if any.
    pub participant: Option<ParticipantId>,
    /// The visit the record was made in, if any.
    pub visit: Option<VisitId>,
    /// The protocol the record was captured under, if any.
    pub protocol: Option<ProtocolRef>,
    /// The content in plaintext (usually JSON), opaque to this module.
    pub body: Vec<u8>,
    /// The device the revision was made on.
    pub device: DeviceId,
    /// The fieldworker profile that made it.
    pub author: ProfileId,
    /// When it was made.
    pub time: Timestamp,
    /// SHA-256 over all the other fields (see the module documentation).
    pub hash: ContentHash,
}

impl fmt::Debug for Revision {
    // The body is personal data: never print it, so it cannot end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Revision")
            .field("record_id", &self.record_id)
            .field("rev", &self.rev)
            .field("parent_hash", &self.parent_hash)
            .field("kind", &self.kind)
            .field("participant", &self.participant)
            .field("visit", &self.visit)
            .field("protocol", &self.protocol)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("device", &self.device)
            .field("author", &self.author)
            .field("time", &self.time)
            .field("hash", &self.hash)
            .finish()
    }
}

impl Revision {
    /// The first revision (rev 1) of a new record.
    pub fn first(
        record_id: RecordId,
        kind: Kind,
        links: Links,
        body: Vec<u8>,
        by: Authorship,
    ) -> Revision {
        Self::build(record_id, 1, None, kind, links, body, by)
    }

    /// The revision after this one, with a new body and the same participant, visit and
    /// protocol.
    ///
    /// # Errors
    /// [`ChainError::RevisionLimit`] if this is revision `u32::MAX`.
    pub fn next(&self, body: Vec<u8>, by: Authorship) -> Result<Revision, ChainError> {
        self.next_relinked(self.links(), body, by)
    }

    /// The revision after this one, with a new body and new links (e.g. a note moved to the
    /// right participant).
    ///
    /// # Errors
    /// [`ChainError::RevisionLimit`] if this is revision `u32::MAX`.
    pub fn next_relinked(
        &self,
        links: Links,
        body: Vec<u8>,
        by: Authorship,
    ) -> Result<Revision, ChainError> {
        let rev = self.rev.checked_add(1).ok_or(ChainError::RevisionLimit)?;
        Ok(Self::build(
            self.record_id,
            rev,
            Some(self.hash),
            self.kind,
            links,
            body,
            by,
        ))
    }

    fn build(
        record_id: RecordId,
        rev: u32,
        parent_hash: Option<ContentHash>,
        kind: Kind,
        links: Links,
        body: Vec<u8>,
        by: Authorship,
    ) -> Revision {
        let mut revision = Revision {
            record_id,
            rev,
            parent_hash,
            kind,
            participant: links.participant,
            visit: links.visit,
            protocol: links.protocol,
            body,
            device: by.device,
            author: by.author,
            time: by.time,
            hash: ContentHash([0; 32]),
        };
        revision.hash = revision.compute_hash();
        revision
    }

    /// The participant, visit and protocol of this revision.
    pub fn links(&self) -> Links {
        Links {
            participant: self.participant,
            visit: self.visit,
            protocol: self.protocol.clone(),
        }
    }

    /// Who made this revision, where and when.
    pub fn authorship(&self) -> Authorship {
        Authorship {
            device: self.device,
            author: self.author,
            time: self.time,
        }
    }

    /// Parses the body as JSON into `T`.
    ///
    /// # Errors
    /// The JSON error if the body is not valid JSON for `T`.
    pub fn body_json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }

    /// The hash the fields of this revision should have (see the module documentation).
    pub fn compute_hash(&self) -> ContentHash {
        ContentHash::sha256(&self.encode_fields().finish())
    }

    /// Whether [`Revision::hash`] matches the other fields.
    pub fn hash_is_valid(&self) -> bool {
        self.compute_hash() == self.hash
    }

    fn encode_fields(&self) -> Encoder {
        let mut e = Encoder::new(REVISION_DOMAIN);
        e.fixed(self.record_id.as_bytes())
            .u32(self.rev)
            .option(self.parent_hash, |e, hash| {
                e.fixed(hash.as_bytes());
            })
            .str(self.kind.as_str())
            .option(self.participant, |e, id| {
                e.fixed(id.as_bytes());
            })
            .option(self.visit, |e, id| {
                e.fixed(id.as_bytes());
            })
            .option(self.protocol.as_ref(), |e, protocol| {
                e.str(&protocol.id).u32(protocol.version);
            })
            .fixed(self.device.as_bytes())
            .fixed(self.author.as_bytes())
            .i64(self.time.as_millis())
            .bytes(&self.body);
        e
    }

    /// The canonical encoding of the whole revision: the hashed fields followed by the hash.
    /// This is what the vault seals and what sync sends.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = self.encode_fields();
        e.fixed(self.hash.as_bytes());
        e.finish()
    }

    /// Decodes [`Revision::to_bytes`], checking that the hash matches the content.
    ///
    /// # Errors
    /// A [`DecodeError`] if the bytes are malformed, name an unknown kind, or the content
    /// does not match the hash ([`DecodeError::HashMismatch`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Revision, DecodeError> {
        let mut d = Decoder::new(bytes, REVISION_DOMAIN)?;
        let record_id = RecordId::from_bytes(d.array()?);
        let rev = d.u32()?;
        let parent_hash = d.option(|d| d.array().map(ContentHash))?;
        let kind_name = d.string()?;
        let kind = kind_name
            .parse()
            .map_err(|UnknownKind(name)| DecodeError::UnknownKind(name))?;
        let participant = d.option(|d| d.array().map(ParticipantId::from_bytes))?;
        let visit = d.option(|d| d.array().map(VisitId::from_bytes))?;
        let protocol = d.option(|d| {
            Ok(ProtocolRef {
                id: d.string()?,
                version: d.u32()?,
            })
        })?;
        let device = DeviceId::from_bytes(d.array()?);
        let author = ProfileId::from_bytes(d.array()?);
        let time = Timestamp(d.i64()?);
        let body = d.bytes()?.to_vec();
        let hash = ContentHash(d.array()?);
        d.finish()?;
        let revision = Revision {
            record_id,
            rev,
            parent_hash,
            kind,
            participant,
            visit,
            protocol,
            body,
            device,
            author,
            time,
            hash,
        };
        if revision.hash_is_valid() {
            Ok(revision)
        } else {
            Err(DecodeError::HashMismatch)
        }
    }
}

/// Checks a record's whole history: revisions numbered 1..=n in slice order, all of the same
/// record and kind, each naming the previous one's hash as its parent (revision 1 naming
/// none), and each matching its own hash.
///
/// # Errors
/// The first problem found, as a [`ChainError`].
pub fn verify_chain(revisions: &[Revision]) -> Result<(), ChainError> {
    let first = revisions.first().ok_or(ChainError::Empty)?;
    let mut parent = None;
    for (position, revision) in revisions.iter().enumerate() {
        let expected = u32::try_from(position)
            .ok()
            .and_then(|index| index.checked_add(1))
            .ok_or(ChainError::RevisionLimit)?;
        if revision.rev != expected {
            return Err(ChainError::OutOfOrder {
                position,
                expected,
                found: revision.rev,
            });
        }
        let rev = revision.rev;
        if revision.record_id != first.record_id {
            return Err(ChainError::OtherRecord { rev });
        }
        if revision.kind != first.kind {
            return Err(ChainError::KindChanged { rev });
        }
        if revision.parent_hash != parent {
            return Err(ChainError::ParentMismatch { rev });
        }
        if !revision.hash_is_valid() {
            return Err(ChainError::HashMismatch { rev });
        }
        parent = Some(revision.hash);
    }
    Ok(())
}

/// The revision with the highest number, if any. Does not verify the chain.
pub fn latest(revisions: &[Revision]) -> Option<&Revision> {
    revisions.iter().max_by_key(|revision| revision.rev)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_names_match_their_serde_names_and_parse_back() {
        for kind in Kind::ALL {
            let json = serde_json::to_string(kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
            assert_eq!(kind.as_str().parse::<Kind>().unwrap(), *kind);
        }
        assert!("gossip".parse::<Kind>().is_err());
    }

    #[test]
    fn content_hash_is_sha256_and_serialises_as_hex() {
        let hash = ContentHash::sha256(b"abc");
        assert_eq!(
            hash.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let json = serde_json::to_string(&hash).unwrap();
        assert_eq!(serde_json::from_str::<ContentHash>(&json).unwrap(), hash);
        assert!("abcd".parse::<ContentHash>().is_err());
    }
}
