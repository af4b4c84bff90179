//! Enrolment codes made in the researcher console: the body a study admin sends
//! ([`NewEnrolmentCode`], checked here by both the console and the server) and the answer
//! ([`EnrolmentCode`]). The console shows the code beside the study fingerprint it computes
//! from the study signing key in the page, as text and as a QR code of
//! [`enrolment_qr_text`].

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// `POST` a [`NewEnrolmentCode`]; the answer is an [`EnrolmentCode`].
pub const ENROLMENT_CODES_PATH: &str = "/api/console/enrolment-codes";

/// The longest a code may stay valid: a week.
pub const MAX_VALID_HOURS: u32 = 168;

/// The longest fieldworker name, in characters.
pub const MAX_FIELDWORKER_CHARS: usize = 100;

/// A study admin asks for a one-time enrolment code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewEnrolmentCode {
    /// The fieldworker whose tablet it enrols (its records carry this name).
    pub fieldworker: String,
    /// How many hours it stays valid: 1 to [`MAX_VALID_HOURS`].
    pub valid_hours: u32,
}

impl NewEnrolmentCode {
    /// The fieldworker's name, trimmed, if the request keeps the rules.
    ///
    /// # Errors
    /// What to change, in words.
    pub fn checked(&self) -> Result<String, String> {
        let name = self.fieldworker.trim();
        if name.is_empty() {
            return Err("Type the fieldworker's name: their tablet's records carry it.".into());
        }
        if name.chars().count() > MAX_FIELDWORKER_CHARS {
            return Err(format!(
                "The fieldworker's name is longer than {MAX_FIELDWORKER_CHARS} characters: \
                 shorten it."
            ));
        }
        if !(1..=MAX_VALID_HOURS).contains(&self.valid_hours) {
            return Err(format!(
                "A code stays valid between 1 and {MAX_VALID_HOURS} hours (a week): choose a \
                 number in that range."
            ));
        }
        Ok(name.to_owned())
    }
}

/// A one-time enrolment code, shown once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrolmentCode {
    /// The code (`7KQ2-M9XD-4HPT`); the server keeps only its hash.
    pub code: String,
    /// When it stops working, if unused.
    pub expires_at: Timestamp,
}

/// What the console's QR code holds: `attune-enrol:v1?code=CODE&fingerprint=FINGERPRINT`,
/// both as shown (`7KQ2-M9XD-4HPT`, `ABCD-EFGH-JKMN-PQRS-TVWX`: letters, digits and dashes,
/// nothing to escape). The tablet does not scan it yet: the fieldworker types both.
pub fn enrolment_qr_text(code: &str, fingerprint: &str) -> String {
    format!(
        "attune-enrol:v1?code={}&fingerprint={}",
        code.trim(),
        fingerprint.trim()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asking(name: &str, hours: u32) -> Result<String, String> {
        NewEnrolmentCode {
            fieldworker: name.into(),
            valid_hours: hours,
        }
        .checked()
    }

    #[test]
    fn names_are_trimmed_and_hours_bounded() {
        assert_eq!(asking("  Ana  ", 24), Ok("Ana".into()));
        assert!(asking("   ", 24).is_err());
        assert!(asking(&"a".repeat(101), 24).is_err());
        assert_eq!(asking(&"é".repeat(100), 1), Ok("é".repeat(100)));
        assert!(asking("Ana", 0).is_err());
        assert!(asking("Ana", 169).is_err());
        assert!(asking("Ana", 168).is_ok());
    }

    #[test]
    fn the_qr_text_names_its_version() {
        assert_eq!(
            enrolment_qr_text(" ABCD-EFGH-JKMN ", "12AB-34CD"),
            "attune-enrol:v1?code=ABCD-EFGH-JKMN&fingerprint=12AB-34CD"
        );
    }
}
