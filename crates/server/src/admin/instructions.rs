//! The rules for each study instruction, and recording it: a revocation names a known device
//! and gives a reason; a withdrawal names a participant whose records reached this server; a
//! protocol update parses, is newer than the built-in version and the last one published,
//! and keeps each consent form's meaning. The caller signed the instruction (the CLI with the
//! key file, the console in the browser) and numbered it with [`Store::next_control_seq`].

use std::fmt;
use std::sync::Arc;

use attune_core::protocol::{Protocol, default_protocol};
use attune_core::sync::ControlKind;
use attune_core::{DeviceId, ParticipantId};

use crate::Store;
use crate::store::{AddOutcome, NewControlMessage, PublishOutcome, RevokeOutcome, StoreError};

/// Why an instruction was not recorded (nothing was).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// A revocation without a reason (the tablet shows it).
    NoReason,
    /// A revocation of a device this server never enrolled.
    UnknownDevice {
        /// The device named.
        device_id: DeviceId,
    },
    /// A withdrawal without the participant's code (the tablets show it).
    NoCode,
    /// A withdrawal of a participant whose code is on no record this server holds.
    UnknownParticipant {
        /// The participant named.
        participant_id: ParticipantId,
        /// Their code.
        code: String,
    },
    /// A protocol update that does not parse or break the protocol rules.
    InvalidProtocol {
        /// Each problem, in words.
        problems: Vec<String>,
    },
    /// A protocol update not newer than the version built into the app.
    NotNewerThanBuiltIn {
        /// The protocol's id.
        protocol_id: String,
        /// The version sent.
        version: u32,
        /// The version built in.
        built_in: u32,
    },
    /// A protocol update not newer than the last version published.
    NotNewerThanPublished {
        /// The protocol's id.
        protocol_id: String,
        /// The version sent.
        version: u32,
        /// The last version published.
        latest: u32,
    },
    /// A protocol update that changes a consent form's items under the same form version.
    ConsentFormChanged {
        /// The form's id.
        form_id: String,
        /// Its unchanged version.
        form_version: String,
    },
    /// An instruction of a kind this server does not know.
    UnknownKind,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NoReason => f.write_str(
                "a revocation needs its reason, which the revoked tablet shows: write one",
            ),
            Refusal::UnknownDevice { device_id } => {
                write!(f, "this server has enrolled no device {device_id}")
            }
            Refusal::NoCode => f.write_str("a withdrawal needs the participant's code"),
            Refusal::UnknownParticipant {
                participant_id,
                code,
            } => write!(
                f,
                "no record of participant {code} ({participant_id}) has reached this server: \
                 check the participant, or sync the tablet that made them first"
            ),
            Refusal::InvalidProtocol { problems } => {
                write!(f, "the protocol is not valid: {}", problems.join("; "))
            }
            Refusal::NotNewerThanBuiltIn {
                protocol_id,
                version,
                built_in,
            } => write!(
                f,
                "this is version {version} of {protocol_id:?}, but the app has version \
                 {built_in} built in: give the protocol a higher \"version\""
            ),
            Refusal::NotNewerThanPublished {
                protocol_id,
                version,
                latest,
            } => write!(
                f,
                "this is version {version} of {protocol_id:?}, but version {latest} was already \
                 published: give the protocol a higher \"version\""
            ),
            Refusal::ConsentFormChanged {
                form_id,
                form_version,
            } => write!(
                f,
                "consent form {form_id:?} changes its items but keeps version {form_version:?}: \
                 consents name the form by its version, so give the changed form a new \
                 \"version\""
            ),
            Refusal::UnknownKind => {
                f.write_str("this server does not know this kind of instruction")
            }
        }
    }
}

/// What recording an instruction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// Recorded as instruction `seq`; `sentence` says what happens next, in words.
    Done {
        /// Its instruction number.
        seq: u64,
        /// The control message's id.
        message_id: i64,
        /// What happens next, for people ("Device … revoked: …").
        sentence: String,
    },
    /// It was already so (the device revoked, the participant withdrawn): nothing changed.
    AlreadyDone(String),
    /// Another instruction took this `seq` meanwhile: sign again with the next number.
    SeqTaken,
}

/// An instruction not recorded.
#[derive(Debug, thiserror::Error)]
pub enum InstructionError {
    /// Refused by the rules.
    #[error("{0}")]
    Refused(Refusal),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Refusal> for InstructionError {
    fn from(refusal: Refusal) -> Self {
        InstructionError::Refused(refusal)
    }
}

/// Checks `kind` against the rules and what the server holds, before it is signed (the CLI
/// asks for the passphrase only then) and again when it is recorded ([`record`]). `Ok(Some)`
/// when it is already so: nothing to record.
///
/// # Errors
/// [`InstructionError::Refused`] with the rule broken; [`InstructionError::Store`].
pub async fn check(
    store: &Arc<dyn Store>,
    kind: &ControlKind,
) -> Result<Option<String>, InstructionError> {
    match kind {
        ControlKind::Revocation { device_id, reason } => {
            if reason.trim().is_empty() {
                return Err(Refusal::NoReason.into());
            }
            let id = device_id.to_string();
            let devices = store.list_devices().await?;
            let device = devices
                .iter()
                .find(|d| d.id == id)
                .ok_or(Refusal::UnknownDevice {
                    device_id: *device_id,
                })?;
            Ok((device.status == crate::store::DeviceStatus::Revoked)
                .then(|| format!("Device {id} is already revoked: nothing changed.")))
        }
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => check_withdrawal(store, *participant_id, participant_code).await,
        ControlKind::ProtocolUpdate { protocol } => {
            check_protocol(store, protocol).await?;
            Ok(None)
        }
        ControlKind::Unknown => Err(Refusal::UnknownKind.into()),
    }
}

async fn check_withdrawal(
    store: &Arc<dyn Store>,
    participant_id: ParticipantId,
    code: &str,
) -> Result<Option<String>, InstructionError> {
    if code.trim().is_empty() {
        return Err(Refusal::NoCode.into());
    }
    if let Some(earlier) = store
        .withdrawals()
        .await?
        .into_iter()
        .find(|w| w.participant_id == Some(participant_id))
    {
        return Ok(Some(format!(
            "{code} ({participant_id}) was already withdrawn (message {}): nothing changed.",
            earlier.message_id
        )));
    }
    let mut stored = store.envelopes().await?;
    stored.extend(store.conflicts().await?);
    // The id is inside the sealed revisions; the code is in their clear metadata.
    let known = stored.iter().any(|item| {
        item.envelope
            .participant_code
            .as_deref()
            .is_some_and(|c| c.trim().eq_ignore_ascii_case(code.trim()))
    });
    if !known {
        return Err(Refusal::UnknownParticipant {
            participant_id,
            code: code.trim().to_owned(),
        }
        .into());
    }
    Ok(None)
}

/// The protocol in an update, checked: it parses, is newer than the built-in version and the
/// last signed version published, and keeps each consent form's meaning.
///
/// # Errors
/// [`InstructionError::Refused`] with the rule broken; [`InstructionError::Store`].
pub async fn check_protocol(
    store: &Arc<dyn Store>,
    json: &str,
) -> Result<Protocol, InstructionError> {
    let protocol = Protocol::parse_all(json).map_err(|problems| Refusal::InvalidProtocol {
        problems: problems.iter().map(ToString::to_string).collect(),
    })?;
    let built_in = default_protocol();
    if protocol.id == built_in.id && protocol.version <= built_in.version {
        return Err(Refusal::NotNewerThanBuiltIn {
            protocol_id: protocol.id.clone(),
            version: protocol.version,
            built_in: built_in.version,
        }
        .into());
    }
    let published = store.published_protocols().await?;
    let mine = || {
        published
            .iter()
            .rev()
            .filter(|p| p.protocol_id == protocol.id)
    };
    if let Some(latest) = mine().filter(|p| p.seq.is_some()).map(|p| p.version).max()
        && protocol.version <= latest
    {
        return Err(Refusal::NotNewerThanPublished {
            protocol_id: protocol.id.clone(),
            version: protocol.version,
            latest,
        }
        .into());
    }
    let last = mine()
        .next()
        .and_then(|p| Protocol::parse(&p.protocol).ok());
    let base = match &last {
        Some(last) => last,
        None if built_in.id == protocol.id => built_in,
        None => return Ok(protocol),
    };
    if let Some(form) = protocol.consent_form_changed_from(base) {
        return Err(Refusal::ConsentFormChanged {
            form_id: form.id.clone(),
            form_version: form.version.clone(),
        }
        .into());
    }
    Ok(protocol)
}

/// Checks a signed instruction ([`check`]) and records it: the device revoked, the
/// withdrawal added, the protocol version published.
///
/// # Errors
/// [`InstructionError::Refused`] with the rule broken; [`InstructionError::Store`].
pub async fn record(
    store: &Arc<dyn Store>,
    message: &NewControlMessage,
) -> Result<Recorded, InstructionError> {
    if let Some(already) = check(store, &message.kind).await? {
        return Ok(Recorded::AlreadyDone(already));
    }
    match &message.kind {
        ControlKind::Revocation { device_id, reason } => {
            match store.revoke_device(&device_id.to_string(), message).await? {
                RevokeOutcome::Revoked(recorded) => Ok(Recorded::Done {
                    seq: recorded.seq,
                    message_id: recorded.id,
                    sentence: format!(
                        "Device {device_id} revoked (study instruction {}): its next sync is \
                         refused with: {}",
                        recorded.seq,
                        reason.trim()
                    ),
                }),
                RevokeOutcome::UnknownDevice => Err(Refusal::UnknownDevice {
                    device_id: *device_id,
                }
                .into()),
                RevokeOutcome::AlreadyRevoked => Ok(Recorded::AlreadyDone(format!(
                    "Device {device_id} is already revoked: nothing changed."
                ))),
                RevokeOutcome::SeqTaken => Ok(Recorded::SeqTaken),
            }
        }
        ControlKind::Withdrawal {
            participant_id,
            participant_code,
        } => match store.add_withdrawal(message).await? {
            AddOutcome::Added(recorded) => Ok(Recorded::Done {
                seq: recorded.seq,
                message_id: recorded.id,
                sentence: format!(
                    "Withdrawal of {participant_code} (participant {participant_id}) recorded \
                     (study instruction {}): every tablet deletes their data at its next sync, \
                     and exports leave them out",
                    recorded.seq
                ),
            }),
            AddOutcome::SeqTaken => Ok(Recorded::SeqTaken),
        },
        ControlKind::ProtocolUpdate { protocol } => {
            let parsed = check_protocol(store, protocol).await?;
            match store
                .publish_protocol(&parsed.id, parsed.version, message)
                .await?
            {
                PublishOutcome::Published(published) => Ok(Recorded::Done {
                    seq: message.seq,
                    message_id: published.message_id,
                    sentence: format!(
                        "Protocol {:?} version {} published (study instruction {}): devices use \
                         it for visits started after their next sync",
                        published.protocol_id, published.version, message.seq
                    ),
                }),
                PublishOutcome::NotNewer { latest } => Err(Refusal::NotNewerThanPublished {
                    protocol_id: parsed.id.clone(),
                    version: parsed.version,
                    latest,
                }
                .into()),
                PublishOutcome::SeqTaken => Ok(Recorded::SeqTaken),
            }
        }
        ControlKind::Unknown => Err(Refusal::UnknownKind.into()),
    }
}
