//! Spelled letters beside the words a recogniser heard. A caller who spells a name says each word, then
//! its letters ("Maria, M A R I A. Garcia, G A R C I A."); a recogniser writes that in its own ways and
//! loses some of it: "Maria M.R.I.A. G.A.R. C.I.A." (a letter dropped from the first spelling, the second
//! word dropped and its spelling cut in two), "Maria, M-R-I-A, Garcia, G-A-R-C-I-A.", "Grace GRCE Hopper,
//! HOPPER." (the letters written as a word).
//!
//! Letters are matched against the words heard right before them, in order:
//! - letters that are the word, or the word with one or two letters missing, **confirm** it (a recogniser
//!   drops spelled letters far more often than it invents them);
//! - letters close to the word **replace** it: the caller's spelling wins over what was heard ("Garsha,
//!   G A R C I A" is Garcia);
//! - letters left over after the heard words are a word the recogniser did not write ("G.A.R. C.I.A."
//!   after "Maria M.R.I.A." is Garcia);
//! - but a run that is a common name as a whole is one word: it replaces the heard word that begins like
//!   it ("Garsh, G-A-R-C-I-A" is Garcia, not Garsh and "cia").
//!
//! With [`Spelling::Mended`], letters that could not be a name as written are read as the closest common
//! name ([`super::names`]: "HOPP-PDR" is Hopper); [`Spelling::AsSaid`] keeps them, for a caller who
//! already turned the mended name down.

use std::collections::HashMap;

use super::{edit_distance, names};

/// How letters that spell no heard word become a word of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// Garbled letters are the closest common name.
    Mended,
    /// The letters as the recogniser wrote them.
    AsSaid,
}

impl Spelling {
    fn word(self, letters: String) -> String {
        match self {
            Self::Mended => names::mend(&letters).map_or(letters, str::to_string),
            Self::AsSaid => letters,
        }
    }
}

/// How spelled letters relate to a word heard before them, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fit {
    /// The letters are the word.
    Same,
    /// The word with one or two letters the recogniser dropped.
    Dropped,
    /// Close to the word: the spelling replaces it.
    Close,
}

/// How `letters` spell `word`, if they do.
fn fit(letters: &str, word: &str) -> Option<Fit> {
    let (spelled, heard) = (letters.chars().count(), word.chars().count());
    if letters == word {
        Some(Fit::Same)
    } else if spelled >= 2 && spelled < heard && heard - spelled <= 2 && is_subsequence(letters, word) {
        Some(Fit::Dropped)
    } else if spelled >= 3 && edit_distance(letters, word) <= (heard / 3).max(1) {
        Some(Fit::Close)
    } else {
        None
    }
}

/// `true` when `short`'s letters appear in `long` in the same order.
fn is_subsequence(short: &str, long: &str) -> bool {
    let mut rest = long.chars();
    short.chars().all(|c| rest.any(|l| l == c))
}

/// `true` when `letters` are `word` with a letter or two dropped, or one or two letters off it: how a
/// recogniser garbles a spelled word ("a d" or "a d i" for Ada).
pub(super) fn near(letters: &str, word: &str) -> bool {
    matches!(fit(letters, word), Some(Fit::Dropped | Fit::Close))
}

/// `true` when a word the recogniser wrote is the spelling of the heard word before it ("grce" after
/// "grace", "hopper" after "hopper"), rather than another word of the name.
pub(super) fn spells(word: &str, previous: &str) -> bool {
    word.chars().count() >= 3 && matches!(fit(word, previous), Some(Fit::Same | Fit::Dropped))
}

/// One way of laying a run of letters over the heard words from `start`: how many letters each word
/// took and how.
struct Alignment {
    start: usize,
    taken: Vec<(usize, Fit)>,
}

impl Alignment {
    fn letters(&self) -> usize {
        self.taken.iter().map(|(n, _)| n).sum()
    }
}

/// Letters taken by consecutive words, each with how it fits.
type Taken = Vec<(usize, Fit)>;

/// Better is more letters accounted for, then closer fits, then fewer words.
fn rank(taken: &Taken) -> (usize, std::cmp::Reverse<usize>, std::cmp::Reverse<usize>) {
    let letters = taken.iter().map(|(n, _)| n).sum();
    let looseness = taken.iter().map(|(_, fit)| *fit as usize).sum();
    (letters, std::cmp::Reverse(looseness), std::cmp::Reverse(taken.len()))
}

/// Lays `letters` over `words[start..]` in order, each word taking a prefix of what is left that spells
/// it, and keeps the way that accounts for the most letters ([`rank`]). Every split is tried: a word
/// that takes the prefix it fits best can leave letters no later word takes ("HOPP-P-E-R" after
/// "Hopper": "hopp" is Hopper with letters dropped, but "per" would then be a word of its own; all seven
/// letters are Hopper with one too many).
fn align(letters: &[char], words: &[String], start: usize) -> Alignment {
    Alignment { start, taken: best_from(letters, words, (start, 0), &mut HashMap::new()) }
}

/// The best way to lay `letters[at..]` over `words[word..]`, remembered by `(word, at)`: a name has a few
/// words, but a recogniser's text is not bounded, and without it the splits multiply word by word.
fn best_from(
    letters: &[char],
    words: &[String],
    (word, at): (usize, usize),
    known: &mut HashMap<(usize, usize), Taken>,
) -> Taken {
    if let Some(taken) = known.get(&(word, at)) {
        return taken.clone();
    }
    let mut best = Taken::new();
    if let Some(heard) = words.get(word) {
        let longest = (letters.len() - at).min(heard.chars().count() + 1);
        for n in 2..=longest {
            let prefix: String = letters[at..at + n].iter().collect();
            let Some(how) = fit(&prefix, heard) else { continue };
            let mut taken = vec![(n, how)];
            taken.extend(best_from(letters, words, (word + 1, at + n), known));
            if rank(&taken) > rank(&best) {
                best = taken;
            }
        }
    }
    known.insert((word, at), best.clone());
    best
}

/// Applies a run of spelled `letters` to the name's `parts`, of which those from `heard` on are words as
/// heard right before the letters (earlier parts were already spelled).
pub(super) fn apply(parts: &mut Vec<String>, heard: usize, letters: &str, spelling: Spelling) {
    let chars: Vec<char> = letters.chars().collect();
    if chars.is_empty() {
        return;
    }
    // The alignment that accounts for the most letters; the later start (closer to the letters) on a tie.
    let best = (heard..parts.len()).map(|start| align(&chars, parts, start)).max_by_key(|a| (a.letters(), a.start));
    if best.as_ref().is_none_or(|a| chars.len() - a.letters() >= 2) && whole_name_for(parts, heard, letters) {
        return;
    }
    let Some(best) = best.filter(|a| a.letters() > 0) else {
        replace_closest(parts, heard, &spelling.word(letters.to_string()));
        return;
    };
    let mut at = 0;
    for (offset, (n, how)) in best.taken.iter().enumerate() {
        if *how == Fit::Close {
            parts[best.start + offset] = spelling.word(chars[at..at + n].iter().collect());
        }
        at += n;
    }
    // Letters beyond the heard words: a word the recogniser did not write (a stray letter is noise).
    if chars.len() - at >= 2 {
        parts.insert(best.start + best.taken.len(), spelling.word(chars[at..].iter().collect()));
    }
}

/// A run of letters that is a common name as a whole, where laying it over the heard words would leave
/// some over ("G A R C I A" after "Garsh": "gar" spells it, "cia" would be a word of its own): the run is
/// the spelling of the heard word nearest the letters that begins with the same two letters, and
/// replaces it. `true` when it did.
fn whole_name_for(parts: &mut [String], heard: usize, letters: &str) -> bool {
    if letters.chars().count() < 3 || !names::is_known(letters) {
        return false;
    }
    let opening: String = letters.chars().take(2).collect();
    let Some(i) = (heard..parts.len()).rev().find(|&i| parts[i].starts_with(&opening)) else {
        return false;
    };
    parts[i] = letters.to_string();
    true
}

/// Letters that spell none of the heard words as they are: they stand for the closest one (the later on
/// a tie), or are a word of their own when nothing was heard before them or they are a single letter.
fn replace_closest(parts: &mut Vec<String>, heard: usize, letters: &str) {
    let closest = (heard..parts.len())
        .rev()
        .min_by_key(|&i| edit_distance(&parts[i], letters))
        .filter(|_| letters.chars().count() >= 2);
    match closest {
        Some(i) => parts[i] = letters.to_string(),
        None => parts.push(letters.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spelled(heard: &[&str], letters: &str) -> Vec<String> {
        let mut parts: Vec<String> = heard.iter().map(|w| (*w).to_string()).collect();
        apply(&mut parts, 0, letters, Spelling::AsSaid);
        parts
    }

    #[test]
    fn letters_confirm_replace_or_add_words() {
        assert_eq!(spelled(&["maria"], "mriagarcia"), ["maria", "garcia"], "a dropped letter, a dropped word");
        assert_eq!(spelled(&["maria", "garsha"], "garcia"), ["maria", "garcia"], "the spelling wins");
        assert_eq!(spelled(&["grace", "hopper"], "grace"), ["grace", "hopper"], "the first word spelled");
        assert_eq!(spelled(&[], "jon"), ["jon"]);
        assert_eq!(spelled(&["harper"], "hopppdr"), ["hopppdr"], "far off: still the caller's letters");
        assert_eq!(spelled(&["grace", "hopper"], "hoppper"), ["grace", "hoppper"], "a letter too many, no extra word");
        let many = vec!["aaaa"; 40];
        assert_eq!(spelled(&many, &"a".repeat(160)).len(), 40, "forty like words and their letters, at once");
    }

    #[test]
    fn a_spelled_common_name_is_one_word() {
        assert_eq!(spelled(&["miria", "garsh"], "garcia"), ["miria", "garcia"], "not garsh and cia");
        assert_eq!(spelled(&["maria"], "mriagarcia"), ["maria", "garcia"], "not a name as a whole");
        assert_eq!(spelled(&["grace", "hopper"], "grace"), ["grace", "hopper"], "all letters spell a word");
    }

    #[test]
    fn garbled_letters_are_mended_only_when_asked() {
        let mut parts = vec!["grace".to_string(), "harper".to_string()];
        apply(&mut parts, 1, "hopppdr", Spelling::Mended);
        assert_eq!(parts, ["grace", "hopper"]);
        let mut parts = vec!["alan".to_string(), "turing".to_string()];
        apply(&mut parts, 1, "turing", Spelling::Mended);
        assert_eq!(parts, ["alan", "turing"], "letters that spell the heard word confirm it");
    }

    #[test]
    fn a_written_spelling_of_the_word_before() {
        assert!(spells("grce", "grace"));
        assert!(spells("hopper", "hopper"));
        assert!(!spells("hopper", "grace"));
        assert!(!spells("ann", "ann".repeat(2).as_str()), "three letters missing is another word");
    }
}
