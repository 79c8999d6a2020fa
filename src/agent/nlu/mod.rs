//! What the rules engine understands of a caller's words. Transcripts arrive lower- or mixed-case, with
//! or without punctuation, numbers as digits or words; [`Utterance`] normalises them once.
//!
//! - [`intent`]: book, cancel, reschedule, availability, yes/no, repeat, goodbye, a human;
//! - [`when`]: day and time expressions relative to today in the agent's time zone;
//! - [`choice`]: "the second one", "option 3", a DTMF digit;
//! - [`turn`]: whether words heard up to a pause already answer the question (early end of turn), and
//!   whether a turn is plainly unfinished ("um", "I would like");
//! - [`contact`]: names ("my name is …") and emails, also spelled out ("j o h n at example dot com"), with
//!   [`spelling`]: how spelled letters confirm, replace or add to the words a recogniser heard;
//! - [`reading`]: everything one caller turn carries at once (intent, when, pick, name, email, phone,
//!   yes/no, correction), whatever the agent asked.
//!
//! Closed vocabularies (weekday names) also match near-misses of a speech recogniser ("thirsty" for
//! Thursday) through [`sounds_like`], conservatively; a value read that way is marked loose and the
//! engine reads it back before it books.

pub mod choice;
pub mod contact;
pub mod intent;
mod names;
pub mod reading;
mod spelling;
pub mod turn;
pub mod when;

pub use spelling::Spelling;

/// A caller's words, normalised: lower case, punctuation except `@ . : ' + -` turned into spaces, and
/// split into words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Utterance {
    /// The normalised text (words joined by single spaces).
    pub text: String,
    /// The words.
    pub words: Vec<String>,
}

impl Utterance {
    /// Normalises `raw`, without the recogniser's notes on what it heard ([`without_annotations`]).
    pub fn new(raw: &str) -> Self {
        let raw = without_annotations(raw);
        let mut cleaned = String::with_capacity(raw.len());
        for c in raw.chars() {
            let c = c.to_lowercase().next().unwrap_or(c);
            if c.is_alphanumeric() || matches!(c, '@' | ':' | '\'' | '+' | '-' | '_') {
                cleaned.push(c);
            } else if c == '.' || c == '’' {
                cleaned.push(if c == '’' { '\'' } else { '.' });
            } else {
                cleaned.push(' ');
            }
        }
        let words: Vec<String> = cleaned
            .split_whitespace()
            .map(|w| w.trim_matches(|c| c == '.' || c == '\'' || c == '-').to_string())
            .filter(|w| !w.is_empty())
            .collect();
        Self { text: words.join(" "), words }
    }

    /// An utterance of some of another's words (already normalised).
    pub fn from_words(words: &[String]) -> Self {
        Self { text: words.join(" "), words: words.to_vec() }
    }

    /// Where `phrase` starts (as whole words), the last occurrence.
    pub fn rfind(&self, phrase: &str) -> Option<usize> {
        let phrase_words: Vec<&str> = phrase.split_whitespace().collect();
        if phrase_words.is_empty() || phrase_words.len() > self.words.len() {
            return None;
        }
        self.words.windows(phrase_words.len()).rposition(|w| w.iter().zip(&phrase_words).all(|(a, b)| a == b))
    }

    /// `true` when the utterance holds `phrase` as whole words.
    pub fn has(&self, phrase: &str) -> bool {
        let phrase_words: Vec<&str> = phrase.split_whitespace().collect();
        if phrase_words.is_empty() || phrase_words.len() > self.words.len() {
            return false;
        }
        self.words.windows(phrase_words.len()).any(|w| w.iter().zip(&phrase_words).all(|(a, b)| a == b))
    }

    /// `true` when any of `phrases` is present.
    pub fn has_any(&self, phrases: &[&str]) -> bool {
        phrases.iter().any(|p| self.has(p))
    }

    /// `true` when the utterance is nothing but words from `allowed`.
    pub fn only(&self, allowed: &[&str]) -> bool {
        !self.words.is_empty() && self.words.iter().all(|w| allowed.contains(&w.as_str()))
    }
}

/// `raw` without the spans in brackets or parentheses: whisper's notes on sounds that were not words
/// ("[Music]", "(speaking in foreign language)", "[unintelligible]"), never what the caller said, and so
/// never a name or an answer. A bracket that is not closed is left to normalisation.
fn without_annotations(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(open) = rest.find(['[', '(']) {
        let close = if rest[open..].starts_with('[') { ']' } else { ')' };
        let Some(length) = rest[open..].find(close) else { break };
        out.push_str(&rest[..open]);
        out.push(' ');
        rest = &rest[open + length + 1..];
    }
    out.push_str(rest);
    out
}

/// The value of a number word or digits: "two" → 2, "14" → 14, "twenty" → 20 (0–59).
pub fn number(word: &str) -> Option<u32> {
    if let Ok(n) = word.parse::<u32>() {
        return Some(n);
    }
    const SMALL: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    if let Some(n) = SMALL.iter().position(|w| *w == word) {
        return Some(n as u32);
    }
    match word {
        "twenty" => Some(20),
        "thirty" => Some(30),
        "forty" => Some(40),
        "fifty" => Some(50),
        "oh" => Some(0),
        _ => None,
    }
}

/// The value of an ordinal: "third" / "3rd" → 3, "twenty first" handled by the caller (1–31).
pub fn ordinal(word: &str) -> Option<u32> {
    const WORDS: [&str; 20] = [
        "first",
        "second",
        "third",
        "fourth",
        "fifth",
        "sixth",
        "seventh",
        "eighth",
        "ninth",
        "tenth",
        "eleventh",
        "twelfth",
        "thirteenth",
        "fourteenth",
        "fifteenth",
        "sixteenth",
        "seventeenth",
        "eighteenth",
        "nineteenth",
        "twentieth",
    ];
    if let Some(n) = WORDS.iter().position(|w| *w == word) {
        return Some(n as u32 + 1);
    }
    if word == "thirtieth" {
        return Some(30);
    }
    let digits = word.strip_suffix("st").or_else(|| word.strip_suffix("nd"));
    let digits = digits.or_else(|| word.strip_suffix("rd")).or_else(|| word.strip_suffix("th"))?;
    digits.parse().ok().filter(|n| (1..=31).contains(n))
}

/// A word's consonant skeleton, the way a recogniser's near-misses keep it: vowels (and `y`, `h` after a
/// consonant other than `t`) dropped, `d` heard as `t`, `z` as `s`, doubled consonants once.
fn skeleton(word: &str) -> String {
    let mut out = String::new();
    for c in word.chars().filter(char::is_ascii_alphabetic) {
        let c = match c {
            'd' => 't',
            'z' => 's',
            'a' | 'e' | 'i' | 'o' | 'u' | 'y' => continue,
            other => other,
        };
        if c == 'h' && !out.is_empty() && !out.ends_with('t') {
            continue;
        }
        if !out.ends_with(c) {
            out.push(c);
        }
    }
    out
}

/// `true` when `a` and `b` are two spellings of one sound, as a recogniser picks among them ("allen" and
/// "alan", "jon" and "john"): different words with the same consonant skeleton, first letter and last
/// letter. "maria" and "mario" end differently, and are two names.
pub(crate) fn sounds_alike(a: &str, b: &str) -> bool {
    let ends = |w: &str| (w.chars().next(), w.chars().last());
    a != b
        && a.len() >= 3
        && b.len() >= 3
        && ends(a) == ends(b)
        && !skeleton(a).is_empty()
        && skeleton(a) == skeleton(b)
}

/// Common words whose skeleton is that of a weekday: never read as one.
const REAL_WORDS: &[&str] = &[
    "start",
    "started",
    "starting",
    "street",
    "streets",
    "store",
    "stored",
    "stirred",
    "straight",
    "strait",
    "strut",
    "starter",
    "stride",
    "strode",
    "thirst",
    "sturdy",
    "strata",
    "stardust",
    "strategy",
    "straighter",
];

/// The entry of `vocabulary` (full words, at least four skeleton consonants long) that `word` is a near-miss
/// of: the same first letter, a length within two letters, and a consonant skeleton equal or one
/// consonant off. `None` for exact words (match those directly), numbers and common words.
pub fn sounds_like<'a>(word: &str, vocabulary: &[&'a str]) -> Option<&'a str> {
    if word.len() < 5 || number(word).is_some() || REAL_WORDS.contains(&word) || vocabulary.contains(&word) {
        return None;
    }
    let heard = skeleton(word);
    let mut found = vocabulary.iter().filter(|entry| {
        let target = skeleton(entry);
        target.len() >= 4
            && entry.chars().next() == word.chars().next()
            && entry.len().abs_diff(word.len()) <= 2
            && (target == heard || (edit_distance(&target, &heard) == 1 && heard.len() >= 4))
    });
    let first = found.next()?;
    found.next().is_none().then_some(*first)
}

/// Levenshtein distance of two short ASCII strings.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let next = (row[j + 1] + 1).min(row[j] + 1).min(diagonal + usize::from(ca != *cb));
            diagonal = row[j + 1];
            row[j + 1] = next;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_transcripts() {
        let u = Utterance::new("Yes, please! I'd like the 2 P.M. slot, on Tuesday.");
        assert_eq!(u.text, "yes please i'd like the 2 p.m slot on tuesday");
        assert!(u.has("please i'd"));
        assert!(!u.has("tues"));
        assert_eq!(Utterance::new("John@Example.com.").text, "john@example.com");
        assert_eq!(number("twelve"), Some(12));
        assert_eq!(ordinal("23rd"), Some(23));
        assert_eq!(ordinal("third"), Some(3));
        assert_eq!(ordinal("rd"), None);
    }

    #[test]
    fn the_recognisers_notes_are_not_words() {
        assert!(Utterance::new("(speaking in foreign language)").words.is_empty());
        assert!(Utterance::new("[Music]").words.is_empty());
        assert_eq!(Utterance::new("Yes [BLANK_AUDIO] please").text, "yes please");
        assert_eq!(Utterance::new("Friday (at 10").text, "friday at 10", "not closed: kept");
    }

    #[test]
    fn near_misses_of_long_weekday_names_and_nothing_else() {
        let days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"];
        assert_eq!(sounds_like("thirsty", &days), Some("thursday"));
        assert_eq!(sounds_like("thirstday", &days), Some("thursday"));
        assert_eq!(sounds_like("wensday", &days), Some("wednesday"));
        assert_eq!(sounds_like("thursday", &days), None, "exact words are not near-misses");
        for word in ["forty", "minute", "street", "start", "thirty", "thanks", "friend", "mentioned", "sunny"] {
            assert_eq!(sounds_like(word, &days), None, "{word}");
        }
        assert!(sounds_alike("allen", "alan") && sounds_alike("jon", "john"));
        assert!(!sounds_alike("maria", "mario") && !sounds_alike("alan", "alan") && !sounds_alike("ada", "adi"));
        let u = Utterance::new("at ten, actually no, make it eleven");
        assert_eq!(u.rfind("no"), Some(3));
    }
}
