//! Everything one caller turn carries, read at once: intent, a day/time wish, the booking a cancel or
//! reschedule request means and where it should go, yes/no, a name, an email, a preference for the
//! phone, whether the caller corrects something, takes what was offered, or has plainly not finished.
//!
//! The engine fills every slot a turn carries, whatever it asked; what it asked (the [`Expect`]) only
//! breaks ties: a bare "Ada Lovelace" is a name only when the name was asked, "my name is Ada Lovelace"
//! is one anywhere.

use chrono::NaiveDate;

use super::intent::{self, Intent};
use super::when::{self, When};
use super::{contact, turn, Spelling, Utterance};
use crate::agent::dialog::Expect;

/// What a caller's turn says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// Book, cancel, reschedule, …
    pub intent: Option<Intent>,
    /// The day and time wished for: for a reschedule, where the appointment should go.
    pub when: When,
    /// For a cancel or reschedule: which appointment ("my Thursday appointment").
    pub criteria: When,
    /// A yes or a no.
    pub yes: Option<bool>,
    /// The caller's name: introduced anywhere, or bare where it was asked; garbled spelled letters are
    /// read as the closest common name.
    pub name: Option<String>,
    /// The name with its spelled letters as the recogniser wrote them, where that differs from `name`.
    pub name_as_said: Option<String>,
    /// An email address.
    pub email: Option<String>,
    /// The caller would rather be reached on the phone they call from.
    pub phone: bool,
    /// "no, X", "actually X", "X instead": X replaces what was chosen.
    pub correcting: bool,
    /// "I'll take that one": the caller takes what was offered.
    pub accepts: bool,
    /// Words that only open a sentence ("um", "hi", "I would like"): the caller is still talking.
    pub unfinished: bool,
    /// A correction whose new value could not be read ("no, sorry, frosty instead").
    pub unreadable_correction: bool,
}

/// Words that carry no value of their own in a correction.
const FILLER: &[&str] = &[
    "no", "nope", "sorry", "actually", "instead", "rather", "um", "uh", "er", "please", "i", "mean", "make", "it",
    "that", "the", "a", "an", "not", "one", "wait", "oh", "well", "so", "let's", "lets", "do", "how", "about", "can",
    "we", "could", "you", "would", "like", "prefer", "i'd", "let", "me", "change", "to", "maybe", "thanks", "thank",
    "okay", "ok", "on", "at", "in", "for", "is", "be", "better", "that's", "wrong", "right", "correct", "but", "and",
    "time", "day", "there", "here", "just", "really", "said", "meant", "what",
];

impl Reading {
    /// Reads `u` (the caller's words; `raw` as transcribed, for its punctuation), relative to `today`
    /// in the agent's time zone, after the agent asked for `asked`.
    pub fn new(u: &Utterance, raw: &str, today: NaiveDate, asked: Expect) -> Self {
        let intent = intent::intent(u);
        let (criteria, when) = match intent {
            Some(Intent::Cancel) => (when::parse(u, today), When::default()),
            Some(Intent::Reschedule) => target(u, today),
            _ => (When::default(), when::parse(u, today)),
        };
        let name_as =
            |how| if asked == Expect::Name { contact::name(u, how) } else { contact::introduced_name(u, how) };
        let name = name_as(Spelling::Mended);
        let name_as_said = name.as_ref().and_then(|_| name_as(Spelling::AsSaid)).filter(|s| Some(s) != name.as_ref());
        // Asked for an address, a full stop between two words is the "dot" the caller said.
        let written_dots = (asked == Expect::Contact).then(|| contact::email_with_written_dots(raw)).flatten();
        let email = written_dots.or_else(|| contact::email(u));
        let yes = intent::yes_no(u);
        let correcting = (yes == Some(false) && u.words.first().is_some_and(|w| matches!(w.as_str(), "no" | "nope")))
            || u.has_any(&["actually", "instead", "rather", "make it", "i mean", "change it to", "change that to"]);
        let phone = intent::prefers_phone(u) && (asked == Expect::Contact || u.has_any(&["email", "number", "phone"]));
        let mut reading = Self {
            intent,
            when,
            criteria,
            yes,
            name,
            name_as_said,
            email,
            phone,
            correcting,
            accepts: intent::accepts(u),
            unfinished: false,
            unreadable_correction: false,
        };
        let carries = reading.carries_something();
        reading.unfinished = !carries && !answers_yes_no(u, asked) && turn::unfinished(u, raw);
        reading.unreadable_correction =
            correcting && !carries && u.words.iter().any(|w| !FILLER.contains(&w.as_str()) && w.len() > 1);
        reading
    }

    /// Whether the turn carries any value at all.
    fn carries_something(&self) -> bool {
        self.intent.is_some()
            || !self.when.is_empty()
            || !self.criteria.is_empty()
            || self.name.is_some()
            || self.email.is_some()
            || self.phone
            || self.accepts
            || (self.yes.is_some() && !self.correcting)
    }

    /// Whether the turn gave a detail of the caller (name, email, phone).
    pub fn has_details(&self) -> bool {
        self.name.is_some() || self.email.is_some() || self.phone
    }
}

/// Whether `u` answers a yes/no question with its first word ("No, that's all", heard "No, not how"):
/// an answer, however the words after it trail off, never a sentence to wait for the rest of.
fn answers_yes_no(u: &Utterance, asked: Expect) -> bool {
    asked == Expect::YesNo
        && u.words.first().is_some_and(|w| matches!(w.as_str(), "no" | "nope" | "yes" | "yeah" | "yep"))
        && intent::yes_no(u).is_some()
}

/// A reschedule request's two wishes: which appointment (criteria) and where to (target). "Move my
/// Thursday appointment to Friday at 10": Thursday, then Friday at 10. Without "to"/"for"/"instead",
/// a day right before "appointment" or after "from" names the appointment, any other the target.
fn target(u: &Utterance, today: NaiveDate) -> (When, When) {
    let words = &u.words;
    let verb = words
        .iter()
        .position(|w| matches!(w.as_str(), "move" | "reschedule" | "change" | "push" | "shift" | "switch"))
        .unwrap_or(0);
    let marker = (verb + 1..words.len())
        .find(|&i| matches!(words[i].as_str(), "to" | "for" | "until" | "till" | "instead" | "into"));
    if let Some(m) = marker {
        let criteria = when::parse(&Utterance::from_words(&words[..m]), today);
        let target = when::parse(&Utterance::from_words(&words[m + 1..]), today);
        if !target.is_empty() {
            return (criteria, target);
        }
    }
    let wish = when::parse(u, today);
    let names_the_booking = u.has("from")
        || words.windows(2).any(|w| {
            matches!(w[1].as_str(), "appointment" | "booking")
                && !when::parse(&Utterance::from_words(&w[..1]), today).is_empty()
        })
        || u.has_any(&["appointment on", "appointment at", "booking on", "booking at"]);
    if names_the_booking {
        (wish, When::default())
    } else {
        (When::default(), wish)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Datelike as _;

    use super::*;

    // Tuesday, December 1st 2026.
    fn read(text: &str, asked: Expect) -> Reading {
        Reading::new(&Utterance::new(text), text, NaiveDate::from_ymd_opt(2026, 12, 1).expect("date"), asked)
    }

    fn day(w: When) -> Option<u32> {
        w.days.map(|d| d.first().day())
    }

    #[test]
    fn a_reschedule_request_carries_its_target() {
        let r = read("Can I move my appointment to next Monday?", Expect::Request);
        assert_eq!(r.intent, Some(Intent::Reschedule));
        assert_eq!((day(r.criteria), day(r.when)), (None, Some(7)));
        let r = read("I'd like to move my Thursday appointment to Friday at 10", Expect::Request);
        assert_eq!((day(r.criteria), day(r.when)), (Some(3), Some(4)));
        let r = read("I need to reschedule my Thursday appointment", Expect::Request);
        assert_eq!((day(r.criteria), day(r.when)), (Some(3), None));
        let r = read("Cancel my appointment on Friday", Expect::Request);
        assert_eq!((day(r.criteria), r.when.is_empty()), (Some(4), true));
    }

    #[test]
    fn every_slot_a_turn_carries() {
        let r = read("My name is Ada Lovelace, email a d a at example dot com.", Expect::Choice);
        assert_eq!(r.name.as_deref(), Some("Ada Lovelace"));
        assert_eq!(r.email.as_deref(), Some("ada@example.com"));
        assert!(!r.unfinished && !r.correcting);
        let r = read("Ada Lovelace", Expect::Choice);
        assert_eq!(r.name, None, "a bare name only where it was asked");
        assert_eq!(read("Ada Lovelace", Expect::Name).name.as_deref(), Some("Ada Lovelace"));
        let r = read("It's John Smith, and just use my phone number", Expect::Name);
        assert!(r.phone && r.name.is_some());
    }

    #[test]
    fn corrections_readable_or_not() {
        let r = read("No, sorry, thirsty instead", Expect::Choice);
        assert!(r.correcting && r.when.loose && !r.unreadable_correction);
        let r = read("No, sorry, frosty instead", Expect::Choice);
        assert!(r.correcting && r.unreadable_correction);
        assert!(!read("No", Expect::Choice).unreadable_correction, "a plain no");
        assert!(read("no, Thursday", Expect::YesNo).correcting);
    }

    #[test]
    fn hesitations_are_unfinished() {
        for text in ["Hi.", "Um", "I would like.", "Hello, um...", "My name is", "So I was wondering if"] {
            assert!(read(text, Expect::Request).unfinished, "{text}");
        }
        for text in ["Yes.", "I would like to book an appointment.", "Monday", "purple monkey dishwasher"] {
            assert!(!read(text, Expect::Request).unfinished, "{text}");
        }
        assert!(!read("No, not how.", Expect::YesNo).unfinished, "a no that trails off answers a yes/no question");
        assert!(read("No, not how.", Expect::Request).unfinished, "elsewhere it waits for the rest");
    }
}
