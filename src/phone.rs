//! Phone numbers (ITU-T E.164): the one normaliser, a shared value type used by every part that reads a
//! number (the API, dialplan files, SIP and LiveKit routing, attendees' phones). It imports nothing of the crate.
//!
//! Accepted input: a leading `+` (or the international prefix `00`) followed by 8 to 15 digits, with the
//! visual separators people type (spaces, `(`, `)`, `-`, `.`, `/`) anywhere after the first character.
//! A bare string of 11 to 15 digits (how many trunks send the dialed number) is read as international.
//! Everything else is rejected with a reason.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Fewest digits accepted (country code + shortest national numbers in use).
const MIN_DIGITS: usize = 8;
/// ITU-T E.164 §6: at most 15 digits.
const MAX_DIGITS: usize = 15;
/// A bare digit string shorter than this is a national number whose country we cannot know.
const MIN_BARE_DIGITS: usize = 11;

/// A normalised phone number: `+` and 8–15 digits, the first not `0`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct E164(String);

/// Why a string is not a phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum E164Error {
    /// Nothing but whitespace.
    #[error("phone number is empty")]
    Empty,
    /// A character that is neither a digit nor a separator.
    #[error("phone number contains `{0}`; use digits with an optional leading +")]
    InvalidCharacter(char),
    /// No `+`/`00` and too short to be international.
    #[error("phone number must be in international format, starting with + and the country code")]
    NotInternational,
    /// Country codes never start with 0.
    #[error("country code cannot start with 0")]
    LeadingZero,
    /// Fewer than 8 or more than 15 digits.
    #[error("phone number must have 8 to 15 digits, found {0}")]
    Length(usize),
}

impl E164 {
    /// The number as `+<digits>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl fmt::Display for E164 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for E164 {
    type Err = E164Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        normalize(s)
    }
}

impl TryFrom<String> for E164 {
    type Error = E164Error;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        normalize(&value)
    }
}

impl From<E164> for String {
    fn from(value: E164) -> Self {
        value.0
    }
}

/// Normalises a human- or trunk-written phone number to E.164.
pub fn normalize(input: &str) -> Result<E164, E164Error> {
    let digits = digits_of(input)?;
    let (international, digits) = match digits {
        Digits::Plus(d) => (true, d),
        Digits::Bare(d) => match d.strip_prefix("00") {
            Some(rest) => (true, rest.to_string()),
            None => (false, d),
        },
    };
    if !international && digits.len() < MIN_BARE_DIGITS {
        return Err(if digits.is_empty() { E164Error::Empty } else { E164Error::NotInternational });
    }
    if digits.starts_with('0') {
        return Err(E164Error::LeadingZero);
    }
    if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
        return Err(E164Error::Length(digits.len()));
    }
    Ok(E164(format!("+{digits}")))
}

/// Normalises a dialplan prefix (`+1555` or `+1555*`): the same rules, but 1 to 15 digits.
pub fn normalize_prefix(input: &str) -> Result<String, E164Error> {
    let trimmed = input.trim().trim_end_matches('*');
    match digits_of(trimmed)? {
        Digits::Plus(d) if d.starts_with('0') => Err(E164Error::LeadingZero),
        Digits::Plus(d) if d.is_empty() || d.len() > MAX_DIGITS => Err(E164Error::Length(d.len())),
        Digits::Plus(d) => Ok(format!("+{d}")),
        Digits::Bare(_) => Err(E164Error::NotInternational),
    }
}

enum Digits {
    Plus(String),
    Bare(String),
}

fn digits_of(input: &str) -> Result<Digits, E164Error> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err(E164Error::Empty);
    }
    let (plus, rest) = match trimmed.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, trimmed),
    };
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '(' | ')' | '-' | '.' | '/' | '\u{a0}' => {}
            other => return Err(E164Error::InvalidCharacter(other)),
        }
    }
    Ok(if plus { Digits::Plus(digits) } else { Digits::Bare(digits) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_people_type() {
        for input in ["+1 (555) 010-0100", "+15550100100", "0015550100100", "15550100100", " +1.555.010.0100 "] {
            assert_eq!(normalize(input).map(String::from), Ok("+15550100100".to_string()), "{input}");
        }
        assert_eq!(normalize("+49 30 1234567").map(String::from), Ok("+49301234567".into()));
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        assert_eq!(normalize(""), Err(E164Error::Empty));
        assert_eq!(normalize("call me"), Err(E164Error::InvalidCharacter('c')));
        assert_eq!(normalize("5550100"), Err(E164Error::NotInternational));
        assert_eq!(normalize("+0123456789"), Err(E164Error::LeadingZero));
        assert_eq!(normalize("+1234567"), Err(E164Error::Length(7)));
        assert_eq!(normalize("+1234567890123456"), Err(E164Error::Length(16)));
        assert_eq!(normalize("+1555x0100"), Err(E164Error::InvalidCharacter('x')));
    }

    #[test]
    fn prefixes() {
        assert_eq!(normalize_prefix("+1 555*"), Ok("+1555".into()));
        assert_eq!(normalize_prefix("+44"), Ok("+44".into()));
        assert!(normalize_prefix("1555*").is_err());
        assert!(normalize_prefix("+*").is_err());
    }
}
