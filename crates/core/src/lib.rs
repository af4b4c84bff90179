//! attune-core: the sans-I/O heart of Attune.
//!
//! Everything that is logic lives here so it can be tested natively in seconds: the domain
//! model, the study protocol, crypto and the sync state machines. No browser, no database,
//! no clock: times come in as [`Timestamp`] values because `std::time` panics on
//! `wasm32-unknown-unknown`.
//!
//! - [`ids`]: UUIDv7 identifiers created on the device ([`RecordId`], [`ParticipantId`], ...).
//! - [`record`]: records as chains of immutable, hashed [`Revision`]s.
//! - [`store`]: the storage traits ([`RecordStore`], [`BlobStore`]) that the IndexedDB adapter
//!   and the in-memory [`MemoryStore`] implement, and (feature `conformance`) the test suite
//!   every implementation must pass.
//! - [`profile`], [`lock`], [`autosave`]: fieldworker profiles, auto-lock and the autosave
//!   policy (decisions only; the app does the I/O).
//! - [`protocol`]: the study protocol as data (groups, consent forms, guides, activities, the
//!   video coding framework) and the embedded default VIG protocol; [`consent`]: what consent answers allow;
//!   [`fieldwork`]: the bodies of fieldwork records and dashboard progress.
//! - [`recording`]: audio recording decisions (format, chunk write order, elapsed time,
//!   level meter); the app's recorder does the browser I/O.
//! - [`vault`]: the passphrase-protected vault key that encrypts record bodies and blob chunks
//!   at rest.
//! - [`envelope`]: revisions sealed to the study key (HPKE) and signed by the device (Ed25519)
//!   for sync, and the passphrase-protected study key file.
//! - [`signing`]: the study signing key that signs the study key and every control message,
//!   its fingerprint (pinned by devices at enrolment) and the enrolment proof of possession.
//! - [`attachment`]: attachments sealed to the study key for upload, and the upload
//!   protocol's shapes ([`UploadCreate`], [`UploadState`]).
//! - [`codes`]: participant codes unique across the study, reserved by the server in blocks,
//!   with provisional labels for participants created when none is left.
//! - [`export`]: the analysis-ready exports (tidy CSVs with codebook, R and SPSS scripts,
//!   REFI-QDA project, Word documents, ELAN files) made from decrypted records.
//! - [`sync`]: the sync engine ([`sync::Syncer`]) and the sync API's bodies, shared with the
//!   server.
//! - [`agreement`]: how far coders agree (Krippendorff's alpha, Cohen's kappa and weighted
//!   kappa, kappa on time slices of coded events), each with a plain-English reading.
//! - [`team`]: study team members of the researcher console (roles) and `/api/team`'s bodies.

#![warn(missing_docs)]

pub mod agreement;
pub mod attachment;
pub mod autosave;
pub mod codes;
pub mod consent;
pub mod encoding;
pub mod envelope;
pub mod export;
pub mod fieldwork;
pub mod hex;
pub mod ids;
pub mod lock;
pub mod notes;
pub mod passphrase;
pub mod pictures;
pub mod pin;
pub mod profile;
pub mod protocol;
pub mod record;
pub mod recording;
pub mod review;
pub mod signing;
pub mod store;
pub mod sync;
pub mod team;
pub mod time;
pub mod vault;

pub use attachment::{UploadCreate, UploadState, open_attachment, seal_attachment};
pub use autosave::{Autosave, SaveAction, SaveStatus};
pub use consent::{ConsentAnswers, ConsentOutcome};
pub use encoding::DecodeError;
pub use envelope::{
    DeviceKey, DevicePublicKey, Envelope, EnvelopeError, StudyKeyFile, StudyKeyPair,
    StudyPrivateKey, StudyPrivateKeys, StudyPublicKey, seal_envelope,
};
pub use fieldwork::{
    ActivityResponseBody, AssentAnswer, AssentBody, AttachmentBody, ConsentBody, ConsentSignature,
    GroupProgress, InterviewNoteBody, NoteFlag, ParticipantBody, ParticipantStatus, PurgeBody,
    ReflectionBody, ResponseStatus, VisitBody, WithdrawalBody,
};
pub use ids::{
    BlobId, DeviceId, MemberId, ParseIdError, ParticipantId, ProfileId, RecordId, TeamRecordId,
    VisitId,
};
pub use lock::{AutoLock, AutoLockMinutes};
pub use passphrase::{PassphraseCheck, Strength, passphrase_strength};
pub use profile::{NameError, Profile, human_bytes, validate_name};
pub use protocol::{
    Activity, ActivityKind, AssentScript, Card, Code, CodeClass, CodingFramework, ConsentForm,
    ConsentItem, ConsentRole, DEFAULT_PROTOCOL_JSON, EventKind, Group, GuideSection,
    InterviewGuide, PlaceType, Prompt, Protocol, ProtocolError, Question, RatingItem, RatingScale,
    RecordingType, Safeguarding, UpdateRefused, default_protocol,
};
pub use record::{
    Authorship, ChainError, ContentHash, Kind, Links, ProtocolRef, Revision, latest, verify_chain,
};
pub use signing::{
    FingerprintError, SigningError, StudyFingerprint, StudySigningKey, StudyVerifyingKey,
    VerifiedStudyKeys, verify_study_keys,
};
pub use store::{
    BlobStore, MemoryStore, PutOutcome, RecordStore, StoreError, StoredRevision, SyncAck,
};
pub use time::Timestamp;
pub use vault::{KdfParams, Vault, VaultError, WrappedVaultKey};

/// The version of Attune's data formats and code, shared by the app and the server.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
