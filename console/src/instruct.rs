//! Study instructions signed in this page: the next number from the server, the signature
//! with the study signing key (which never leaves the page), and the instruction sent. If
//! another instruction took the number meanwhile, it is signed again with the next one.

use attune_core::StudySigningKey;
use attune_core::review::instructions::{
    INSTRUCTIONS_PATH, InstructionRecorded, NEXT_SEQ_PATH, NextSeq, SEQ_ATTEMPTS, SignedInstruction,
};
use attune_core::sync::ControlKind;
use attune_core::sync::api::ErrorCode;
use attune_core::time::Timestamp;

use crate::api;
use crate::error::Error;

/// The study signing key, or why this key file cannot sign.
pub fn signing_key(signing: Option<&StudySigningKey>) -> Result<&StudySigningKey, Error> {
    signing.ok_or_else(|| {
        Error::Key(
            "This study key file is version 1, made before study instructions were signed: it \
             opens for review but cannot sign. Make a new one with `attune-server study \
             upgrade-key`, then open that one here."
                .into(),
        )
    })
}

/// Signs `kind` as the next study instruction and sends it; the server's sentence on success.
pub async fn send(key: &StudySigningKey, kind: ControlKind) -> Result<InstructionRecorded, Error> {
    let mut last = None;
    for _ in 0..SEQ_ATTEMPTS {
        let NextSeq { seq } = api::get(NEXT_SEQ_PATH).await?;
        let now = Timestamp(js_sys::Date::now() as i64);
        let signed = SignedInstruction::sign(key, seq, kind.clone(), now)
            .map_err(|e| Error::Key(format!("The instruction could not be signed: {e}")))?;
        match api::post::<_, InstructionRecorded>(INSTRUCTIONS_PATH, &signed).await {
            Err(Error::Refused {
                code: ErrorCode::InstructionSeqTaken,
                message,
            }) => {
                last = Some(message);
            }
            other => return other,
        }
    }
    Err(Error::Refused {
        code: ErrorCode::InstructionSeqTaken,
        message: last.unwrap_or_else(|| {
            "Other study instructions were being recorded at the same time: nothing was \
             recorded. Try again."
                .into()
        }),
    })
}
