//! One-time enrolment codes for fieldworkers' tablets: made by `attune-server enrol create`
//! and by study admins in the console. Only the code's SHA-256 is stored; the code itself is
//! shown once, to whoever made it.

use std::sync::Arc;

use attune_core::Timestamp;

use crate::Store;
use crate::api::{normalise_code, sha256_hex};
use crate::store::StoreError;

/// 12 characters of Crockford's base32 (no I, L, O, U): 60 bits, read aloud easily, in three
/// groups of four (`7KQ2-M9XD-4HPT`).
pub fn new_enrolment_code() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let mut bytes = [0u8; 12];
    getrandom::fill(&mut bytes).expect("the OS random source failed");
    let chars: Vec<char> = bytes
        .iter()
        .map(|byte| char::from(ALPHABET[usize::from(byte % 32)]))
        .collect();
    chars
        .chunks(4)
        .map(|chunk| chunk.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// Makes a code for `fieldworker` (already checked), valid `hours` from `now`, and stores its
/// hash. Returns the code and when it expires.
///
/// # Errors
/// [`StoreError`] if the database fails.
pub async fn create(
    store: &Arc<dyn Store>,
    fieldworker: &str,
    hours: u32,
    now: Timestamp,
) -> Result<(String, Timestamp), StoreError> {
    let code = new_enrolment_code();
    let expires = Timestamp(now.as_millis() + i64::from(hours) * 3_600_000);
    store
        .create_enrolment_code(
            &sha256_hex(&normalise_code(&code)),
            fieldworker,
            expires,
            now,
        )
        .await?;
    Ok((code, expires))
}
