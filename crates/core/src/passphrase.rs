//! A simple, honest passphrase strength guide for the "choose a passphrase" screen.
//!
//! It looks only at length, how many different characters there are, and which kinds
//! (lower case, upper case, digits, spaces and symbols). It does not know common words or
//! leaked passwords, so "Strong" means "long and varied", not "unguessable". Length matters
//! most: the vault's Argon2id makes every guess slow, and a few unrelated words are both long
//! and easy to type on a tablet.

/// The fewest characters a vault passphrase may have ([`crate::Vault::create`] refuses
/// shorter ones).
pub const MIN_PASSPHRASE_LEN: usize = 10;

/// How strong a passphrase looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Strength {
    /// Too short or too repetitive: the vault will not accept it, or should not.
    Weak,
    /// Acceptable, but longer would be better.
    Fair,
    /// Long and varied.
    Strong,
}

/// The verdict on a passphrase, with a hint to show the fieldworker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassphraseCheck {
    /// How strong it looks.
    pub strength: Strength,
    /// One sentence saying why, or how to improve it.
    pub hint: String,
}

/// Rates a passphrase by length, variety of characters, and kinds of characters.
///
/// - fewer than [`MIN_PASSPHRASE_LEN`] characters: [`Strength::Weak`];
/// - fewer than 4 different characters (`aaaaaaaaaaaa`, `abababababab`): [`Strength::Weak`];
/// - at least 16 characters with at least 8 different ones, or at least 12 characters using
///   3 or more kinds of character: [`Strength::Strong`];
/// - anything else: [`Strength::Fair`].
pub fn passphrase_strength(passphrase: &str) -> PassphraseCheck {
    let length = passphrase.chars().count();
    let mut seen: Vec<char> = passphrase.chars().collect();
    seen.sort_unstable();
    seen.dedup();
    let distinct = seen.len();
    let kinds = [
        passphrase.chars().any(char::is_lowercase),
        passphrase.chars().any(char::is_uppercase),
        passphrase.chars().any(|c| c.is_ascii_digit()),
        passphrase.chars().any(|c| !c.is_alphanumeric()),
    ]
    .into_iter()
    .filter(|&present| present)
    .count();

    let (strength, hint) = if length < MIN_PASSPHRASE_LEN {
        (
            Strength::Weak,
            format!(
                "Use at least {MIN_PASSPHRASE_LEN} characters; a few unrelated words are easy \
                 to remember and hard to guess."
            ),
        )
    } else if distinct < 4 {
        (
            Strength::Weak,
            "Use more different characters: this repeats the same few.".to_owned(),
        )
    } else if (length >= 16 && distinct >= 8) || (length >= 12 && kinds >= 3) {
        (
            Strength::Strong,
            "Good: long and varied enough to be hard to guess.".to_owned(),
        )
    } else {
        (
            Strength::Fair,
            "Acceptable. Longer is stronger: add another word or two.".to_owned(),
        )
    };
    PassphraseCheck { strength, hint }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strength(passphrase: &str) -> Strength {
        passphrase_strength(passphrase).strength
    }

    #[test]
    fn short_passphrases_are_weak_whatever_they_contain() {
        assert_eq!(strength(""), Strength::Weak);
        assert_eq!(strength("Ab1!Ab1!x"), Strength::Weak);
        assert!(passphrase_strength("short").hint.contains("10"));
    }

    #[test]
    fn repeating_one_or_a_few_characters_is_weak() {
        assert_eq!(strength("aaaaaaaaaaaaaaaaaaaa"), Strength::Weak);
        assert_eq!(strength("abababababababababab"), Strength::Weak);
    }

    #[test]
    fn length_and_variety_make_a_passphrase_stronger() {
        assert_eq!(strength("kettleriver"), Strength::Fair);
        assert_eq!(strength("kettle river lamp"), Strength::Strong);
        assert_eq!(strength("Kettle-Rive7"), Strength::Strong);
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        // 9 characters but 18 bytes in UTF-8.
        assert_eq!(strength("ééééàààüü"), Strength::Weak);
    }
}
