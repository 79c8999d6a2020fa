//! End of turn: whether a caller's words, heard up to a short pause, already answer what the agent asked.
//!
//! The voice loop transcribes an utterance speculatively at a short pause (`voice.speculate_ms`); when
//! the words so far are [`complete`] for the [`Expect`]ed answer, the turn ends at a `voice.pause_ms`
//! pause instead of after the full end-of-turn silence (`voice.end_silence_ms`), which saves most of
//! the turn gap. Words that leave a sentence open ("and", "at", "my", "um") never end a turn early,
//! nor does a lead-in alone ("sorry", "excuse me"), a lone first name or an email without its domain:
//! the caller is still talking.

use super::contact;
use super::intent::{self, prefers_phone, wants_other_options, yes_no};
use super::{choice, when, Utterance};
use crate::agent::dialog::Expect;

/// Last words after which a sentence goes on: conjunctions, articles, prepositions, fillers.
const OPEN_ENDINGS: &[&str] = &[
    "and",
    "or",
    "but",
    "so",
    "because",
    "then",
    "the",
    "a",
    "an",
    "at",
    "on",
    "in",
    "to",
    "for",
    "of",
    "from",
    "with",
    "by",
    "about",
    "around",
    "after",
    "before",
    "until",
    "my",
    "your",
    "our",
    "is",
    "it's",
    "its",
    "name's",
    "am",
    "i'm",
    "i",
    "was",
    "be",
    "like",
    "um",
    "uh",
    "er",
    "erm",
    "hmm",
    "mm",
    "dot",
    "underscore",
    "dash",
    "next",
    "this",
    "maybe",
    "just",
    "well",
    "can",
    "could",
    "would",
    "will",
    "want",
    "need",
    "have",
    "do",
    "how",
    "what",
    "which",
    "when",
    "where",
];

/// Words that open a turn ("Sorry, can you repeat that?", "Excuse me, is Friday free?"): alone and
/// without a question mark they are a lead-in, not yet the answer. whisper writes the words before the
/// comma's pause as a bare "Sorry", which would otherwise end the turn as a request to repeat, split it
/// in two, and make the rest barge in on the agent's reply.
const LEAD_INS: &[&str] = &["sorry", "excuse", "me", "pardon", "oh", "ah", "hey", "hi", "hello"];

/// Words a turn can open with that say nothing yet: greetings and fillers ("Hi.", "Um", "Well, hello").
const OPENERS: &[&str] = &[
    "hi",
    "hello",
    "hey",
    "there",
    "um",
    "uh",
    "er",
    "erm",
    "hmm",
    "mm",
    "oh",
    "ah",
    "so",
    "well",
    "good",
    "morning",
    "afternoon",
    "evening",
    "yeah",
    "hi there",
    "okay",
    "ok",
    "and",
    "i",
    "like",
    "would",
    "want",
    "need",
    "just",
    "to",
    "was",
    "wondering",
    "if",
    "like",
    "can",
    "could",
    "let",
    "me",
    "see",
    "my",
    "name",
    "is",
    "it's",
];

/// Whether a whole turn (ended by silence) is plainly unfinished: nothing but greetings and fillers ("Hi.",
/// "Um"), or a sentence left open ("I would like.", "My name is"). The engine waits for the rest rather
/// than calling it a miss. "Okay" or "yeah" alone are answers, not openers.
pub fn unfinished(u: &Utterance, raw: &str) -> bool {
    let Some(last) = u.words.last() else {
        return false;
    };
    if u.only(&["okay", "ok", "yeah", "so", "well"]) {
        return false;
    }
    let raw = raw.trim_end();
    let asked = raw.ends_with('?') && !raw.ends_with("...");
    u.only(OPENERS) || (!asked && OPEN_ENDINGS.contains(&last.as_str())) || raw.ends_with("...")
}

/// Whether `text` (a transcript up to a pause) answers `expect` so that the turn can end now.
pub fn complete(expect: Expect, text: &str) -> bool {
    let u = Utterance::new(text);
    let Some(last) = u.words.last() else {
        return false;
    };
    if OPEN_ENDINGS.contains(&last.as_str()) || text.trim_end().ends_with("...") {
        return false;
    }
    if u.only(LEAD_INS) && !text.trim_end().ends_with('?') {
        return false;
    }
    let has_when = || !when::parse(&u, chrono::Utc::now().date_naive()).is_empty();
    match expect {
        Expect::YesNo => yes_no(&u).is_some() || intent::intent(&u).is_some(),
        Expect::Choice => {
            choice::pick(&u, 3).is_some() || wants_other_options(&u) || has_when() || intent::intent(&u).is_some()
        }
        Expect::Name => {
            contact::name(&u, super::Spelling::Mended).is_some_and(|name| name.split_whitespace().count() >= 2)
        }
        Expect::Contact => contact::email(&u).is_some() || prefers_phone(&u),
        Expect::Request => intent::intent(&u).is_some() || has_when(),
        Expect::When => has_when() || yes_no(&u).is_some() || intent::intent(&u).is_some(),
        // An engine that does not say: a sentence whisper closed with a full stop or a question mark.
        Expect::Anything => text.trim_end().ends_with(['.', '?', '!']),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_to_the_question_end_the_turn() {
        assert!(complete(Expect::YesNo, "Yes."));
        assert!(complete(Expect::YesNo, "Yes, please."));
        assert!(complete(Expect::YesNo, "No, that's all, goodbye."));
        assert!(complete(Expect::Choice, "The first one."));
        assert!(complete(Expect::Choice, "Do you have anything later?"));
        assert!(complete(Expect::Choice, "Sorry, can you repeat that?"));
        assert!(complete(Expect::Name, "My name is Jane Doe."));
        assert!(complete(Expect::Contact, "jane at example dot com"));
        assert!(complete(Expect::Contact, "I don't have an email, just use my phone number."));
        assert!(complete(Expect::Request, "I'd like to schedule an appointment."));
        assert!(complete(Expect::When, "Tomorrow afternoon."));
        assert!(complete(Expect::Anything, "Can I come in on Friday?"));
    }

    #[test]
    fn words_that_leave_the_sentence_open_wait_for_the_rest() {
        assert!(!complete(Expect::Name, "My name is Jane."), "a first name alone: the surname may follow");
        assert!(!complete(Expect::Name, "My name is"));
        assert!(!complete(Expect::Contact, "jane at example"), "no domain yet");
        assert!(!complete(Expect::Contact, "jane dot"));
        assert!(!complete(Expect::Request, "I'd like to book an appointment for"));
        assert!(!complete(Expect::Request, "Um..."));
        assert!(!complete(Expect::YesNo, "Well, um"));
        assert!(!complete(Expect::Choice, "Hmm, let me think"));
        assert!(!complete(Expect::Anything, "I was wondering if"));
        assert!(!complete(Expect::YesNo, ""));
    }

    #[test]
    fn hesitations_are_unfinished_turns() {
        let open = |t: &str| unfinished(&Utterance::new(t), t);
        assert!(open("Hi."));
        assert!(open("Um"));
        assert!(open("I would like."));
        assert!(open("Good morning, um"));
        assert!(open("Well, I was wondering if..."));
        assert!(!open("Yeah."));
        assert!(!open("Blorp."));
        assert!(!open("What's the weather like?"), "a question is finished");
        assert!(!open(""));
    }

    #[test]
    fn a_lead_in_alone_waits_unless_it_is_asked() {
        // whisper's transcript of "Sorry, can you repeat that?" up to the comma's pause.
        assert!(!complete(Expect::Choice, "Sorry"));
        assert!(!complete(Expect::Choice, "Sorry,"));
        assert!(!complete(Expect::When, "Oh, excuse me"));
        assert!(!complete(Expect::YesNo, "Hello"));
        assert!(complete(Expect::Choice, "Sorry?"), "asked: the caller wants it again");
        assert!(complete(Expect::Choice, "Pardon?"));
        assert!(complete(Expect::YesNo, "Oh, yes."), "a lead-in with the answer");
    }
}
