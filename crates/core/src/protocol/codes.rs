//! Participant codes as the protocol's groups shape them: a prefix letter and a number.

/// How a tablet on its own counted codes before the server reserved them ([`crate::codes`],
/// which the app uses now): two tablets counting like this give the same codes.
///
/// The next participant code for a group: `prefix` followed by one more than the highest
/// number already used with that prefix, at least two digits (`C01`, `C02`, ... `C99`,
/// `C100`).
///
/// Pass every code ever given out, withdrawn participants included: numbers are never
/// reused, and gaps are never filled, so a code always means the same person. Codes with
/// another prefix, or that are not `prefix` followed by digits, are ignored.
pub fn next_code(prefix: &str, existing: &[&str]) -> String {
    let highest = existing
        .iter()
        .filter_map(|code| code.trim().strip_prefix(prefix))
        .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .filter_map(|digits| digits.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    format!("{prefix}{:02}", highest.saturating_add(1))
}

/// Splits a participant code such as `C07` into its prefix letter and number (`('C', 7)`).
/// `None` unless the code is one uppercase letter A-Z followed by at least one digit.
pub fn parse_code(code: &str) -> Option<(char, u32)> {
    let mut chars = code.chars();
    let prefix = chars.next().filter(char::is_ascii_uppercase)?;
    let digits = chars.as_str();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((prefix, digits.parse().ok()?))
}
