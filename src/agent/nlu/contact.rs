//! Names and email addresses as callers say them: "my name is Jane Doe", "it's John", "j o h n at example
//! dot com", "jane dot doe at gmail dot com", "john underscore smith at example dot co dot uk", or an
//! address a transcript already wrote as `jane@example.com`.

use super::{spelling, Spelling, Utterance};
use crate::calendar::attendee::is_email;

/// Words that introduce or surround an email and are never part of it.
const EMAIL_FILLER: &[&str] = &[
    "my", "email", "e-mail", "address", "is", "it's", "its", "it", "that's", "use", "send", "to", "you", "can",
    "reach", "me", "the", "sure", "yes", "yeah", "ok", "okay", "please", "thanks", "thank", "and", "um", "uh", "so",
    "well", "oh", "email's", "i", "think", "would", "be", "like",
];

/// An email address in `u`, when one is there and valid.
pub fn email(u: &Utterance) -> Option<String> {
    if let Some(written) = u.words.iter().find(|w| w.contains('@') && is_email(w)) {
        return Some(written.clone());
    }
    let words: Vec<String> = u.words.iter().flat_map(|w| spoken_email_parts(w)).collect();
    let words = &words;
    // The separator: the last "at" followed by a domain with a dot ("example dot com", "example.com").
    let at = (0..words.len()).rev().find(|&i| {
        (words[i] == "at" || words[i] == "@")
            && words[i + 1..].iter().any(|w| matches!(w.as_str(), "dot" | "period" | "point") || w.contains('.'))
    })?;
    let mut local = Vec::new();
    for word in words[..at].iter().rev() {
        // Spelled letters ("m a r i a") are never filler, even "i" and "a".
        if word == "at" || word.chars().count() > 1 && EMAIL_FILLER.contains(&word.as_str()) {
            break;
        }
        local.push(word.as_str());
    }
    local.reverse();
    let mut domain = Vec::new();
    for word in &words[at + 1..] {
        if EMAIL_FILLER.contains(&word.as_str()) {
            break;
        }
        domain.push(word.as_str());
    }
    let address = format!("{}@{}", spell(&local), spell(&domain));
    is_email(&address).then_some(address)
}

/// An address in `raw` (a transcript as written) whose spoken "dot" the recogniser wrote as a full stop
/// between two words ("John. Smith at example.com." for "john dot smith at example dot com"). `None`
/// unless such a stop is there and reading it as "dot" gives an address with a dot in its local part.
pub fn email_with_written_dots(raw: &str) -> Option<String> {
    let chars: Vec<char> = raw.chars().collect();
    let mut dotted = String::with_capacity(raw.len() + 8);
    let mut found = false;
    for (i, &c) in chars.iter().enumerate() {
        let after_word = i > 0 && chars[i - 1].is_alphabetic();
        let before_word =
            chars.get(i + 1).is_some_and(|c| c.is_whitespace()) && chars.get(i + 2).is_some_and(|c| c.is_alphabetic());
        if c == '.' && after_word && before_word {
            dotted.push_str(" dot");
            found = true;
        } else {
            dotted.push(c);
        }
    }
    if !found {
        return None;
    }
    let address = email(&Utterance::new(&dotted))?;
    let dot_inside =
        |local: &str| local.contains('.') && !local.starts_with('.') && !local.ends_with('.') && !local.contains("..");
    address.split_once('@').is_some_and(|(local, _)| dot_inside(local)).then_some(address)
}

/// An address whose "at" the recogniser swallowed into a `domain` the caller gave before ("a laandexample.com"
/// for "a l a n at example dot com", after an address at example.com was turned down): the spelled letters
/// before the word that ends with the domain, and that word's start without the "and" or "at" it ends
/// with, are the local part.
pub fn email_in_domain(u: &Utterance, domain: &str) -> Option<String> {
    let words: Vec<String> = u.words.iter().flat_map(|w| spoken_email_parts(w)).collect();
    let i = words.iter().position(|w| w.len() > domain.len() && w.ends_with(domain))?;
    let glued = &words[i][..words[i].len() - domain.len()];
    let glued = ["and", "at", "add"].iter().find_map(|s| glued.strip_suffix(s)).unwrap_or(glued);
    let letter = |w: &&String| w.chars().count() == 1 && w.chars().all(|c| c.is_ascii_alphabetic());
    let mut local: Vec<&str> = words[..i].iter().rev().take_while(letter).map(String::as_str).collect();
    local.reverse();
    let address = format!("{}{glued}@{domain}", local.concat());
    is_email(&address).then_some(address)
}

/// An address written as one word whose "at" the recogniser glued between a word of the caller's `name`
/// and the domain ("GraceItExample.com" for "grace at example dot com" from Grace Hopper).
pub fn email_glued_to_name(u: &Utterance, name: &str) -> Option<String> {
    let names: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
    u.words.iter().filter(|w| w.contains('.') && !w.contains('@')).find_map(|word| {
        let word = word.trim_end_matches('.');
        names.iter().find_map(|n| {
            let rest = word.strip_prefix(n.as_str())?;
            let domain = ["at", "it", "and", "ad"].iter().find_map(|s| rest.strip_prefix(s))?;
            let address = format!("{n}@{domain}");
            (domain.contains('.') && is_email(&address)).then_some(address)
        })
    })
}

/// `address` with its local part replaced by a word of the caller's `name` that it is a garbled spelling
/// of ("ad@example.com" or "adi@example.com" from Ada Lovelace) or another spelling of the same sound
/// ("allen@example.com" from Alan Turing): most addresses begin with the owner's name, the recogniser
/// drops and mixes up spelled letters, and a spoken name it writes in one of its spellings. `None` when
/// the local part is not letters only, is already a word of the name, or is near none; a common name of
/// its own is kept unless it sounds as the name's word does ("maria" stays, whatever the name was heard
/// as). The engine reads the address back, spelled, either way.
pub fn email_like_name(address: &str, name: &str) -> Option<String> {
    let (local, domain) = address.split_once('@')?;
    if local.chars().count() < 2 || !local.chars().all(|c| c.is_ascii_lowercase()) {
        return None;
    }
    let words: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
    if words.iter().any(|w| w == local) {
        return None;
    }
    let known = super::names::is_known(local);
    let word = words
        .iter()
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase()))
        .find(|w| super::sounds_alike(local, w) || (!known && spelling::near(local, w)))?;
    Some(format!("{word}@{domain}"))
}

/// A recogniser's way of writing spelled letters and separators, as the words a caller said: "a.d.a" and
/// "a-d-a" are the letters a d a, "dotcom" is "dot com", "example.com." keeps its dots.
fn spoken_email_parts(word: &str) -> Vec<String> {
    for separator in ['.', '-'] {
        let parts: Vec<&str> = word.split(separator).filter(|p| !p.is_empty()).collect();
        if parts.len() >= 2 && parts.iter().all(|p| p.chars().count() == 1 && p.chars().all(char::is_alphanumeric)) {
            return parts.iter().map(|p| (*p).to_string()).collect();
        }
    }
    match word {
        "dotcom" => vec!["dot".into(), "com".into()],
        "dotorg" => vec!["dot".into(), "org".into()],
        "dotnet" => vec!["dot".into(), "net".into()],
        _ => vec![word.to_string()],
    }
}

/// Joins spoken email parts: "dot" → `.`, "underscore" → `_`, "dash" → `-`, "double u" → `w`,
/// "double o" → `oo`, letters and words run together.
fn spell(parts: &[&str]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < parts.len() {
        let part = parts[i];
        match part {
            "dot" | "period" | "point" => out.push('.'),
            "underscore" => out.push('_'),
            "dash" | "hyphen" | "minus" => out.push('-'),
            "plus" => out.push('+'),
            "double" if parts.get(i + 1).is_some_and(|p| p.chars().count() == 1) => {
                i += 1;
                out.push_str(&parts[i].repeat(2));
            }
            "double" if parts.get(i + 1) == Some(&"u") => {}
            _ => {
                if let Some(digit) = super::number(part).filter(|n| *n < 10 && part.parse::<u32>().is_err()) {
                    out.push_str(&digit.to_string());
                } else {
                    out.push_str(part);
                }
            }
        }
        i += 1;
    }
    out
}

/// Words that end a name ("my name is Jane and my email is …").
const NAME_END: &[&str] = &[
    "and", "my", "email", "please", "thanks", "thank", "at", "from", "calling", "here", "speaking", "i", "i'm", "i'd",
    "i'll", "i've", "the", "but", "so", "with", "for", "on", "is",
];

/// Words a bare answer made of them cannot be a name.
const NOT_A_NAME: &[&str] = &[
    "yes",
    "no",
    "yeah",
    "nope",
    "ok",
    "okay",
    "sure",
    "hello",
    "hi",
    "hey",
    "what",
    "sorry",
    "um",
    "uh",
    "book",
    "cancel",
    "appointment",
    "tomorrow",
    "today",
    "please",
    "thanks",
    "bye",
    "goodbye",
    "repeat",
    "it",
    "is",
    "that",
    "the",
    "a",
    "not",
    "don't",
    "why",
    "who",
    "help",
    "time",
    "slot",
    "email",
    "number",
    "phone",
    "morning",
    "afternoon",
    "evening",
];

/// The caller's name: after "my name is", "this is", "I'm", "it's", "call me", "name's"; or a short answer
/// (up to four words) that can only be a name. Spelled letters are joined ("j o n" → "Jon").
pub fn name(u: &Utterance, how: Spelling) -> Option<String> {
    const INTROS: &[&str] =
        &["my name is", "name is", "my name's", "name's", "this is", "i'm", "i am", "it's", "call me", "it is"];
    let words = &u.words;
    for intro in INTROS {
        let intro_words: Vec<&str> = intro.split_whitespace().collect();
        let Some(start) =
            words.windows(intro_words.len()).position(|w| w.iter().zip(&intro_words).all(|(a, b)| a == b))
        else {
            continue;
        };
        let rest: Vec<&str> = words[start + intro_words.len()..]
            .iter()
            .map(String::as_str)
            .take_while(|w| !NAME_END.contains(w))
            .take(4)
            .collect();
        if let Some(name) = title(&rest, how) {
            return Some(name);
        }
    }
    let bare: Vec<&str> = words.iter().map(String::as_str).collect();
    // Spelled letters count as one word and are never filler ("a" in "g a r c i a").
    let spoken: Vec<String> = bare.iter().flat_map(|w| spelled_letters(w)).collect();
    let whole_words = spoken.iter().filter(|w| w.chars().count() > 1).count();
    let plausible = !bare.is_empty()
        && whole_words <= 6
        && whole_words + usize::from(spoken.len() > whole_words) <= 6
        && spoken.iter().all(|w| w.chars().all(|c| c.is_alphabetic() || c == '\'' || c == '-'))
        && !spoken
            .iter()
            .any(|w| w.chars().count() > 1 && (NOT_A_NAME.contains(&w.as_str()) || super::when::is_month(w)));
    if plausible {
        return title(&bare, how);
    }
    None
}

/// "g-a-r-c-i-a" or "g.a.r.c.i.a" as the letters it spells, and so a recogniser's letter groups
/// ("grc-e", "hopp-pdr": a part of one letter or without a vowel is no name's); a common name cut in two
/// ("love-lace") joined; any other word, a double name such as "jean-luc" among them, as it is.
fn spelled_letters(word: &str) -> Vec<String> {
    let letters = |parts: &[&str]| parts.iter().flat_map(|p| p.chars()).map(String::from).collect();
    for separator in ['-', '.'] {
        let parts: Vec<&str> = word.split(separator).filter(|p| !p.is_empty()).collect();
        if parts.len() < 2 || !parts.iter().all(|p| p.chars().all(char::is_alphabetic)) {
            continue;
        }
        if parts.iter().all(|p| p.chars().count() == 1) {
            return letters(&parts);
        }
        // A common name the recogniser cut in two ("Love-Lace") is that name.
        let joined: String = parts.concat();
        if separator == '-' && super::names::is_known(&joined) {
            return vec![joined];
        }
        let no_vowel = |p: &&str| !p.chars().any(|c| "aeiouy".contains(c));
        if separator == '-' && parts.iter().any(|p| p.chars().count() == 1 || no_vowel(p)) {
            return letters(&parts);
        }
    }
    vec![word.to_string()]
}

/// The words of a name answer with spelled letters as single letters; in an answer where the caller
/// spelled, a hyphenated word is the recogniser's grouping of what was said ("MIRIA-GARSH G-A-R-C-I-A" for
/// "Maria, M A R I A. Garcia, G A R C I A."), so its parts are words of their own.
fn in_spelled_answer(words: &[&str]) -> Vec<String> {
    let spoken: Vec<String> = words.iter().flat_map(|w| spelled_letters(w)).collect();
    if !spoken.iter().any(|w| w.chars().count() == 1) {
        return spoken;
    }
    spoken.iter().flat_map(|w| w.split('-').filter(|p| !p.is_empty()).map(str::to_string).collect::<Vec<_>>()).collect()
}

/// A name the caller introduced ("my name is Ada Lovelace", "this is Ada Lovelace", "under the name
/// Lovelace"), whatever the agent asked: slot filling takes it from any turn, where a bare answer
/// ([`name`]) only counts when the agent asked for the name.
pub fn introduced_name(u: &Utterance, how: Spelling) -> Option<String> {
    const INTROS: &[&str] = &["my name is", "my name's", "name is", "the name is", "under the name", "this is"];
    if !u.has_any(INTROS) {
        return None;
    }
    let name = name(u, how)?;
    // "this is fine", "this is for Thursday": a name is made of words that are not the conversation's.
    let words: Vec<String> = name.split_whitespace().map(str::to_lowercase).collect();
    let conversational = words.iter().any(|w| {
        NOT_A_NAME.contains(&w.as_str()) || super::when::is_month(w) || NOT_AFTER_THIS_IS.contains(&w.as_str())
    });
    (!conversational).then_some(name)
}

/// Words after "this is" that make it something other than an introduction.
const NOT_AFTER_THIS_IS: &[&str] = &[
    "fine",
    "good",
    "great",
    "for",
    "about",
    "regarding",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "correct",
    "right",
    "wrong",
    "urgent",
    "a",
    "an",
    "my",
    "taking",
    "ridiculous",
    "perfect",
];

/// Joins a name's words; spelled letters ("j o n", "G-A-R-C-I-A") make one word, and letters spelled right
/// after words confirm, replace or add to them ([`super::spelling`]: "Garsha, G A R C I A" is Garcia,
/// "Maria M.R.I.A. G.A.R. C.I.A." is Maria Garcia).
fn title(words: &[&str], how: Spelling) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut letters = String::new();
    // Parts from here on are words as heard, which letters right after them may spell.
    let mut heard = 0;
    // Every run of spelled letters, and every word written as the spelling of the word before.
    let mut runs: Vec<String> = Vec::new();
    for word in in_spelled_answer(words) {
        if word.chars().count() == 1 && word.chars().all(char::is_alphabetic) {
            letters.push_str(&word);
            continue;
        }
        if !letters.is_empty() {
            spelling::apply(&mut parts, heard, &letters, how);
            runs.push(std::mem::take(&mut letters));
            heard = parts.len();
        }
        // Letters the recogniser wrote as a word ("Grace GRCE", "Hopper, HOPPER"): the word before, spelled;
        // single letters right after it go on with that spelling ("Hopper HOPP E R").
        if parts.len() > heard && parts.last().is_some_and(|previous| spelling::spells(&word, previous)) {
            letters.push_str(&word);
            continue;
        }
        parts.push(word);
    }
    spelling::apply(&mut parts, heard, &letters, how);
    if !letters.is_empty() {
        runs.push(letters);
    }
    if !runs.is_empty() && how == Spelling::Mended {
        mend_run_together(&mut parts, &runs);
    }
    if !runs.is_empty() {
        // A spelling the recogniser garbled, mended to the word it spells, is that word once ("Hopper,
        // HOPPPR" is Hopper, not Hopper Hopper).
        parts.dedup();
    }
    let parts: Vec<String> = parts
        .into_iter()
        .filter(|p| p.chars().any(char::is_alphabetic))
        .map(|p| {
            let mut chars = p.chars();
            chars.next().map(|c| c.to_uppercase().collect::<String>() + chars.as_str()).unwrap_or_default()
        })
        .collect();
    (!parts.is_empty() && parts.len() <= 4).then(|| parts.join(" "))
}

/// In an answer where the caller spelled (the letter `runs`), a word that no run spells and that is one
/// letter off a frequent name is that name: the recogniser ran a word and its spelled letters together
/// ("Maria, M A R I A" → "MIRIA"). Letters the caller spelled as they are ("Jaxon, J A X O N") stay. The
/// name is read back, and taken as heard once the caller turned the mended one down.
fn mend_run_together(parts: &mut [String], runs: &[String]) {
    for part in parts.iter_mut().filter(|p| !runs.iter().any(|run| run.contains(p.as_str()))) {
        if let Some(name) = super::names::frequent_near(part) {
            *part = name.to_string();
        }
    }
}

/// `true` when the caller spelled letters in `u` ("G A R S H A", "g-a-r-s-h-a", "Garsha, G A R"): two
/// letters or more said one by one ("a" and "I", which are words, not counted), or, in `raw` as the
/// recogniser wrote it, a word of three capitals or more, its way of writing spelled letters ("JOH").
pub fn spelled(u: &Utterance, raw: &str) -> bool {
    let capitals =
        raw.split(|c: char| !c.is_alphabetic()).any(|w| w.chars().count() >= 3 && w.chars().all(char::is_uppercase));
    capitals || spelled_one_by_one(u)
}

fn spelled_one_by_one(u: &Utterance) -> bool {
    let letters = u
        .words
        .iter()
        .flat_map(|w| spelled_letters(w))
        .filter(|w| w.chars().count() == 1 && w.chars().all(char::is_alphabetic) && w != "a" && w != "i")
        .count();
    letters >= 2
}

/// `true` when `word` (any case) is a common given name or surname: among the thousand most frequent of
/// the census lexicon's lists.
pub fn is_common_name(word: &str) -> bool {
    super::names::is_frequent(&word.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dot_written_as_a_full_stop_is_read_as_a_dot() {
        assert_eq!(email_with_written_dots("John. Smith at example.com.").as_deref(), Some("john.smith@example.com"));
        assert_eq!(email_with_written_dots("Sure. Jane at example.com."), None, "a sentence before the address");
        assert_eq!(email_with_written_dots("jane at example.com."), None, "no stop between words");
        assert_eq!(email_with_written_dots("a D. at example.com."), None, "a stop before the at");
        assert_eq!(email_with_written_dots("John. Smith."), None, "no address");
    }

    #[test]
    fn spelled_letters_and_common_names_are_told() {
        let spelled = |text: &str| spelled(&Utterance::new(text), text);
        assert!(spelled("G A R S H A"));
        assert!(spelled("Garsha, g-a-r-s-h-a."));
        assert!(spelled("It's J.O.N."));
        assert!(spelled("Ada, ADA. Lovelace, LOVLACE."));
        assert!(!spelled("I'd like a Monday slot at 10 AM"));
        assert!(!spelled("My name is Jane Garsha"));
        assert!(is_common_name("Garcia") && is_common_name("smith") && is_common_name("Nguyen"));
        assert!(!is_common_name("Szczepanski") && !is_common_name("Kowalczyk") && !is_common_name("Cowelksyk"));
    }

    fn mail(text: &str) -> Option<String> {
        email(&Utterance::new(text))
    }

    fn who(text: &str) -> Option<String> {
        name(&Utterance::new(text), Spelling::Mended)
    }

    #[test]
    fn emails_written_and_spelled() {
        assert_eq!(mail("it's John@Example.com"), Some("john@example.com".into()));
        assert_eq!(mail("j o h n at example dot com"), Some("john@example.com".into()));
        assert_eq!(mail("my email is jane dot doe at gmail dot com"), Some("jane.doe@gmail.com".into()));
        assert_eq!(
            mail("you can reach me at bob underscore lee at mail dot co dot uk"),
            Some("bob_lee@mail.co.uk".into())
        );
        assert_eq!(mail("a n n a two at example dot org"), Some("anna2@example.org".into()));
        assert_eq!(mail("sam at example.com"), Some("sam@example.com".into()));
        assert_eq!(mail("m a r i a at example dot com"), Some("maria@example.com".into()));
        assert_eq!(mail("at two tomorrow"), None);
        assert_eq!(mail("my email is"), None);
        assert_eq!(mail("A.D.A. at example.com"), Some("ada@example.com".into()));
        assert_eq!(mail("email a d a at example dot com."), Some("ada@example.com".into()));
        assert_eq!(mail("k-j-m at example dotcom"), Some("kjm@example.com".into()));
    }

    #[test]
    fn an_address_near_the_callers_name_is_that_name() {
        let like = |a: &str| email_like_name(a, "Ada Lovelace");
        assert_eq!(like("ad@example.com").as_deref(), Some("ada@example.com"), "a letter dropped");
        assert_eq!(like("adi@example.com").as_deref(), Some("ada@example.com"), "a letter off");
        assert_eq!(like("lovlace@example.com").as_deref(), Some("lovelace@example.com"));
        assert_eq!(like("ada@example.com"), None, "already the name");
        assert_eq!(like("bob@example.com"), None, "near no word of the name");
        assert_eq!(like("ada.l@example.com"), None, "not letters only");
        let heard_as_mario = |a: &str| email_like_name(a, "Mario Garsha");
        assert_eq!(heard_as_mario("maria@example.com"), None, "a name of its own is kept");
        let alan = |a: &str| email_like_name(a, "Alan Turing");
        assert_eq!(alan("allen@example.com").as_deref(), Some("alan@example.com"), "the same sound");
        assert_eq!(alan("ellen@example.com"), None, "another first letter");
        assert_eq!(alan("alana@example.com"), None, "another ending");
    }

    #[test]
    fn an_at_swallowed_into_a_known_domain() {
        let within = |t: &str| email_in_domain(&Utterance::new(t), "example.com");
        assert_eq!(within("a laandexample.com.").as_deref(), Some("ala@example.com"));
        assert_eq!(within("alanexample.com").as_deref(), Some("alan@example.com"));
        assert_eq!(within("my email is example.com"), None, "no local part");
        assert_eq!(within("alan at example dot org"), None, "another domain");
    }

    #[test]
    fn an_at_glued_between_the_callers_name_and_the_domain() {
        let glued = |t: &str| email_glued_to_name(&Utterance::new(t), "Grace Hopper");
        assert_eq!(glued("GraceItExample.com").as_deref(), Some("grace@example.com"));
        assert_eq!(glued("hopperatmail.org.").as_deref(), Some("hopper@mail.org"));
        assert_eq!(glued("graceexample.com"), None, "no 'at' heard");
        assert_eq!(glued("bobatexample.com"), None, "not the caller's name");
    }

    #[test]
    fn garbled_spelled_names_are_mended_unless_asked_as_said() {
        let said = "Grace GRC-E, Harper, HOPP-PDR.";
        assert_eq!(who(said), Some("Grace Hopper".into()));
        assert_eq!(name(&Utterance::new(said), Spelling::AsSaid), Some("Grace Hopppdr".into()));
        assert_eq!(who("Alan Turing, T U R I N G."), Some("Alan Turing".into()));
    }

    #[test]
    fn a_spelled_answer_run_together_by_the_recogniser() {
        let said = "MIRIA GARSH G-A-R-C-I-A.";
        assert_eq!(who(said), Some("Maria Garcia".into()));
        assert_eq!(name(&Utterance::new(said), Spelling::AsSaid), Some("Miria Garcia".into()));
        assert_eq!(who("Miria Garcia"), Some("Miria Garcia".into()), "nothing spelled: as heard");
        assert_eq!(who("Jaxon Smith, J A X O N."), Some("Jaxon Smith".into()), "spelled as it is: kept");
        assert_eq!(who("MIRIA-GARSH G-A-R-C-I-A."), Some("Maria Garcia".into()), "the words grouped by a hyphen");
        assert_eq!(who("Grace Hopper HOPP E R"), Some("Grace Hopper".into()), "the letters go on after a group");
        assert_eq!(who("Jean-Luc Picard"), Some("Jean-luc Picard".into()), "a bare double name is a name");
        assert_eq!(who("Ada Love-Lace"), Some("Ada Lovelace".into()), "a common name cut in two");
        assert_eq!(who("Grace G R C E, Hopper, HOPPPR."), Some("Grace Hopper".into()), "a garbled spelling once");
    }

    #[test]
    fn names_introduced_bare_or_spelled() {
        assert_eq!(who("My name is John Smith"), Some("John Smith".into()));
        assert_eq!(who("it's jane doe and my email is jane at example dot com"), Some("Jane Doe".into()));
        assert_eq!(who("Maria Garcia"), Some("Maria Garcia".into()));
        assert_eq!(who("this is j o n snow"), Some("Jon Snow".into()));
        assert_eq!(who("Maria Garsha, G A R C I A."), Some("Maria Garcia".into()));
        assert_eq!(who("My name is Grace Hopper, G-R-A-C-E."), Some("Grace Hopper".into()), "the first word spelled");
        // As whisper writes a spelled name: letters dropped, a word dropped, letters written as a word.
        assert_eq!(who("Maria M.R.I.A. G.A.R. C.I.A."), Some("Maria Garcia".into()));
        assert_eq!(who("Maria, M-R-I-A, Garcia, G-A-R-C-I-A."), Some("Maria Garcia".into()));
        assert_eq!(who("Grace GRCE Hopper, HOPPER."), Some("Grace Hopper".into()));
        assert_eq!(who("Grace GRC-E, Hopper."), Some("Grace Hopper".into()));
        assert_eq!(who("my name is Jean-Luc Picard"), Some("Jean-luc Picard".into()), "a double name stays");
        assert_eq!(who("yes"), None);
        assert_eq!(who("tomorrow at 2"), None);
        let introduced = |t: &str| introduced_name(&Utterance::new(t), Spelling::Mended);
        assert_eq!(introduced("My name is Ada Lovelace, email a d a at example dot com."), Some("Ada Lovelace".into()));
        assert_eq!(introduced("this is fine"), None);
        assert_eq!(introduced("Ada Lovelace"), None, "a bare name counts only where it was asked");
    }
}
