//! Study instructions signed in this page: the next number from the server, the signature
//! with the study signing key (which never leaves the page), and the server's record of it.
//! If another instruction took the number meanwhile, it signs again with the next one, up to
//! [`SEQ_ATTEMPTS`] times.

use attune_core::Timestamp;
use attune_core::review::instructions::{
    INSTRUCTIONS_PATH, InstructionRecorded, NEXT_SEQ_PATH, NextSeq, SEQ_ATTEMPTS, SignedInstruction,
};
use attune_core::sync::ControlKind;
use attune_core::sync::api::ErrorCode;

use crate::api;
use crate::app::Unlocked;
use crate::error::Error;

/// This computer's clock.
pub fn now() -> Timestamp {
    // Milliseconds since 1970 fit an i64 for millions of years; the fraction is dropped.
    #[allow(clippy::cast_possible_truncation)]
    Timestamp(js_sys::Date::now() as i64)
}

/// Signs `kind` with the open study's signing key and records it on the server.
///
/// # Errors
/// [`Error::Key`] for a version 1 key file (no signing key), the server's refusal otherwise.
pub async fn send(unlocked: &Unlocked, kind: ControlKind) -> Result<InstructionRecorded, Error> {
    let Some(signing) = unlocked.signing.clone() else {
        return Err(Error::Key(
            "This study key file is version 1 and has no signing key, so it cannot sign \
             instructions to the tablets. A study admin must make a new file with \
             `attune-server study upgrade-key`, then open that one here."
                .into(),
        ));
    };
    let mut last = None;
    for _ in 0..SEQ_ATTEMPTS {
        let NextSeq { seq } = api::get(NEXT_SEQ_PATH).await?;
        let signed = SignedInstruction::sign(&signing, seq, kind.clone(), now())
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
        message: format!(
            "Other study instructions were being recorded at the same time, {SEQ_ATTEMPTS} times \
             in a row: nothing was recorded. Try again. ({})",
            last.unwrap_or_default()
        ),
    })
}

thread_local! {
    /// What the last instruction did, kept across the reload that follows it (the screen is
    /// drawn again with the refreshed study).
    static FLASH: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Keeps `sentence` for the screen drawn next ([`take_flash`]).
pub fn flash(sentence: String) {
    FLASH.with(|f| *f.borrow_mut() = Some(sentence));
}

/// What the last instruction did, once.
pub fn take_flash() -> Option<String> {
    FLASH.with(|f| f.borrow_mut().take())
}
