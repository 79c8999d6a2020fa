//! What the caller wants: book, cancel, reschedule, hear availability, a yes or a no, the last sentence
//! again, a human, or to end the call. Keyword rules, most specific first.

use super::Utterance;

/// A caller's intent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intent {
    /// Make an appointment.
    Book,
    /// Hear free times.
    Availability,
    /// Cancel an appointment.
    Cancel,
    /// Move an appointment.
    Reschedule,
    /// Say that again.
    Repeat,
    /// Talk to a person.
    Human,
    /// End the call.
    Goodbye,
}

const RESCHEDULE: &[&str] = &[
    "reschedule",
    "re schedule",
    "move my",
    "move the appointment",
    "move it",
    "change my appointment",
    "change the appointment",
    "change my booking",
    "push back",
    "push my",
    "different time for my",
    "another time for my",
    "move the",
    "move it to",
    "change the time",
    "change the day",
    "a different day for my",
];
const CANCEL: &[&str] = &[
    "cancel",
    "cancellation",
    "call off",
    "can't make it",
    "cannot make it",
    "won't make it",
    "can't come",
    "remove my appointment",
    "delete my appointment",
];
const HUMAN: &[&str] = &[
    "human",
    "real person",
    "a person",
    "someone real",
    "operator",
    "representative",
    "receptionist",
    "speak to someone",
    "talk to someone",
    "speak with someone",
    "talk to a",
    "speak to a",
];
const REPEAT: &[&str] =
    &["repeat", "say that again", "say it again", "come again", "pardon", "what did you say", "one more time"];
const GOODBYE: &[&str] = &[
    "bye",
    "goodbye",
    "good bye",
    "bye bye",
    "that's all",
    "that is all",
    "that's it",
    "nothing else",
    "i'm done",
    "i am done",
    "hang up",
    "no thanks",
    "no thank you",
    "have a good day",
    "have a nice day",
];
const AVAILABILITY: &[&str] = &[
    "available",
    "availability",
    "free",
    "openings",
    "opening",
    "open slots",
    "what times",
    "which times",
    "what slots",
    "any slots",
    "when can",
    "when are you",
];
const BOOK: &[&str] = &[
    "book",
    "booking",
    "schedule",
    "appointment",
    "make an",
    "set up",
    "come in",
    "reserve",
    "see the doctor",
    "see someone",
    "get in",
    "slot",
    "meeting",
    "visit",
];

/// The intent in `u`, if any.
pub fn intent(u: &Utterance) -> Option<Intent> {
    if u.has_any(RESCHEDULE) || (u.has("change") && u.has_any(&["appointment", "booking", "time"])) {
        Some(Intent::Reschedule)
    } else if u.has_any(CANCEL) {
        Some(Intent::Cancel)
    } else if u.has_any(HUMAN) {
        Some(Intent::Human)
    } else if u.has_any(REPEAT) || u.only(&["sorry", "what", "huh", "pardon"]) {
        Some(Intent::Repeat)
    } else if u.has_any(GOODBYE) {
        Some(Intent::Goodbye)
    } else if u.has_any(AVAILABILITY) && !u.has("book") {
        Some(Intent::Availability)
    } else if u.has_any(BOOK) {
        Some(Intent::Book)
    } else {
        None
    }
}

const YES: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "yup",
    "ya",
    "sure",
    "correct",
    "right",
    "ok",
    "okay",
    "perfect",
    "great",
    "absolutely",
    "definitely",
    "confirm",
    "confirmed",
    "please do",
    "go ahead",
    "do it",
    "book it",
    "sounds good",
    "that works",
    "works for me",
    "that's fine",
    "fine",
    "affirmative",
    "exactly",
    "alright",
    "all right",
];
const NO: &[&str] = &[
    "no",
    "nope",
    "nah",
    "not",
    "wrong",
    "incorrect",
    "don't",
    "do not",
    "neither",
    "none",
    "negative",
    "wait",
    "actually",
    "instead",
    "doesn't work",
    "does not work",
];

/// A yes (`Some(true)`) or a no (`Some(false)`); a no wins when both appear ("no, that's not right").
pub fn yes_no(u: &Utterance) -> Option<bool> {
    if u.has_any(NO) {
        Some(false)
    } else if u.has_any(YES) {
        Some(true)
    } else {
        None
    }
}

/// "I'll take that one", "that one works": the caller takes what was just offered, without saying which.
pub fn accepts(u: &Utterance) -> bool {
    u.has_any(&[
        "that one",
        "take it",
        "i'll take",
        "i will take",
        "take that",
        "that'll work",
        "that will work",
        "that works",
        "that's good",
        "that's perfect",
        "sounds good",
        "works for me",
        "let's do that",
        "let's do it",
    ])
}

/// "something else", "later", "other times": the caller wants different options.
pub fn wants_other_options(u: &Utterance) -> bool {
    u.has_any(&[
        "something else",
        "anything else",
        "other times",
        "other options",
        "another time",
        "another day",
        "other days",
        "different time",
        "different day",
        "more options",
        "any other",
        "later",
        "what else",
        "none of those",
        "none of them",
        "neither",
    ])
}

/// "use my number", "call me", "no email": the caller prefers the phone number to an email.
pub fn prefers_phone(u: &Utterance) -> bool {
    u.has_any(&[
        "my number",
        "my phone",
        "this number",
        "phone number",
        "the number i'm calling",
        "calling from",
        "text me",
        "call me",
        "don't have an email",
        "don't have email",
        "no email",
        "rather not",
        "use my",
        "phone",
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Option<Intent> {
        intent(&Utterance::new(text))
    }

    #[test]
    fn intents_most_specific_first() {
        assert_eq!(of("I'd like to schedule an appointment"), Some(Intent::Book));
        assert_eq!(of("I need to cancel my appointment"), Some(Intent::Cancel));
        assert_eq!(of("Can I reschedule my appointment?"), Some(Intent::Reschedule));
        assert_eq!(of("I want to change my appointment time"), Some(Intent::Reschedule));
        assert_eq!(of("What times are available next week?"), Some(Intent::Availability));
        assert_eq!(of("Can I talk to a real person"), Some(Intent::Human));
        assert_eq!(of("sorry?"), Some(Intent::Repeat));
        assert_eq!(of("no thanks, bye"), Some(Intent::Goodbye));
        assert_eq!(of("purple monkey dishwasher"), None);
    }

    #[test]
    fn yes_and_no() {
        let yn = |t: &str| yes_no(&Utterance::new(t));
        assert_eq!(yn("Yes please"), Some(true));
        assert_eq!(yn("yeah that's right"), Some(true));
        assert_eq!(yn("No, Thursday"), Some(false));
        assert_eq!(yn("that's not right"), Some(false));
        assert_eq!(yn("banana"), None);
        assert!(prefers_phone(&Utterance::new("just use my number")));
        assert!(wants_other_options(&Utterance::new("do you have anything later")));
        assert!(accepts(&Utterance::new("I'll take that one")));
    }
}
