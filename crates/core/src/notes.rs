//! The fieldworker's notebook: free notes not tied to a visit (kind [`Kind::FieldNote`]).
//!
//! [`Kind::FieldNote`]: crate::Kind::FieldNote

use serde::{Deserialize, Serialize};

/// The body of a field note revision (serialised as JSON, then sealed by the vault).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldNote {
    /// What the fieldworker typed.
    pub text: String,
}

/// The longest summary shown in the notebook list.
pub const SUMMARY_CHARS: usize = 80;

impl FieldNote {
    /// The first non-empty line, shortened for a list; "Empty note" when there is none.
    pub fn summary(&self) -> String {
        let line = self
            .text
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("");
        if line.is_empty() {
            return "Empty note".into();
        }
        if line.chars().count() <= SUMMARY_CHARS {
            return line.into();
        }
        let cut: String = line.chars().take(SUMMARY_CHARS - 1).collect();
        format!("{}\u{2026}", cut.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::FieldNote;

    #[test]
    fn the_summary_is_the_first_line_with_words() {
        let note = FieldNote {
            text: "\n   \n  Visit went well  \nsecond line".into(),
        };
        assert_eq!(note.summary(), "Visit went well");
        assert_eq!(FieldNote::default().summary(), "Empty note");
        let long = FieldNote {
            text: "word ".repeat(40),
        };
        assert_eq!(long.summary().chars().count(), 80);
        assert!(long.summary().ends_with('\u{2026}'));
    }
}
