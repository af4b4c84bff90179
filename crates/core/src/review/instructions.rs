//! Study instructions signed in the researcher console: the wire between the console and the
//! server. The console asks for the next instruction number ([`NEXT_SEQ_PATH`]), signs the
//! instruction with the study signing key in the page ([`SignedInstruction::sign`]) and sends
//! it ([`INSTRUCTIONS_PATH`]). The server checks the signature with the study's signing key
//! and records it as `attune-server withdraw`, `device revoke` and `protocol publish` do; if
//! another instruction took the number meanwhile it answers `instruction_seq_taken` and the
//! console signs again with the next number.

use serde::{Deserialize, Serialize};

use crate::signing::{SigningError, StudySigningKey};
use crate::sync::ControlKind;
use crate::time::Timestamp;

/// `GET`: the number the next study instruction takes ([`NextSeq`]).
pub const NEXT_SEQ_PATH: &str = "/api/console/instructions/next";

/// `POST` a [`SignedInstruction`]; the answer is [`InstructionRecorded`].
pub const INSTRUCTIONS_PATH: &str = "/api/console/instructions";

/// How many times the console signs again when another instruction took its number.
pub const SEQ_ATTEMPTS: usize = 5;

/// The number the next study instruction takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextSeq {
    /// Its `seq`.
    pub seq: u64,
}

/// A study instruction as the console signed it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedInstruction {
    /// Its number in the study's sequence of instructions ([`NextSeq`]).
    pub seq: u64,
    /// What it asks the tablets (or the server) to do.
    pub kind: ControlKind,
    /// When it was signed.
    pub created_at: Timestamp,
    /// The study signing key's signature over `seq`, `kind` and `created_at`, base64.
    pub signature: String,
}

impl SignedInstruction {
    /// Signs `kind` as instruction `seq`, made at `created_at`.
    ///
    /// # Errors
    /// [`SigningError::UnknownKind`] for [`ControlKind::Unknown`].
    pub fn sign(
        key: &StudySigningKey,
        seq: u64,
        kind: ControlKind,
        created_at: Timestamp,
    ) -> Result<Self, SigningError> {
        let signature = key.sign_control(seq, &kind, created_at)?;
        Ok(Self {
            seq,
            kind,
            created_at,
            signature,
        })
    }
}

/// The server's answer when it recorded an instruction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructionRecorded {
    /// The number it was recorded under.
    pub seq: u64,
    /// What happened, in words for the console to show ("Device … revoked: its next sync is
    /// refused").
    pub message: String,
}
