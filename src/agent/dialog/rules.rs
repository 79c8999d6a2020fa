//! The rules engine: offline, deterministic slot filling for booking, cancelling and rescheduling.
//!
//! The conversation is a small state machine ([`Stage`]). Each caller turn is read once by
//! [`crate::agent::nlu::reading`] for everything it carries (intent, day/time wish, the booking a cancel
//! or reschedule names and where it should go, pick, name, email, phone, yes/no, correction) and moves
//! the stage on; details given before they were asked are kept ("my name is Ada Lovelace" while slots are
//! offered). The engine offers two or three slots at a time, reads the booking back (the email's local
//! part letter by letter) and books only after a yes, apologises and offers the nearest free slots when a
//! slot was taken, re-prompts on silence or nonsense and gives up politely after three misses in a row.
//! A correction ("no, X", "actually X", "X instead") replaces what it names, at the read-back only that
//! ("no, Thursday" keeps the time); one whose value cannot be read is a question, never the old value.
//! A plainly unfinished turn ("Um", "I would like.") gets no answer: its words are kept for the next.
//! DTMF works wherever a choice or a yes/no is asked (1/2/3 pick, 1 yes, 2 no), and 1 takes the caller's
//! number when the email could not be understood.
//!
//! A surname (or a name of one word) the recogniser was unsure of ([`UserTurn::unsure`]), that the
//! caller did not spell and that is no common name, is asked to be spelled once, before the contact or
//! the read-back; the read-back then spells it letter by letter ("for Jane Garsha, spelled G A R S H
//! A"). A caller who declines or answers something else keeps the name as heard, read back spelled.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone as _, Utc};

use super::{AgentTurn, CallContext, DialogEngine, Expect, UserTurn};
use crate::agent::funnel::{EndCause, Step};
use crate::agent::nlu::intent::{self, Intent};
use crate::agent::nlu::reading::Reading;
use crate::agent::nlu::when::{self, Days, Times, When};
use crate::agent::nlu::{choice, contact, Spelling, Utterance};
use crate::agent::speak;
use crate::agent::tools::{ToolCall, ToolCallRecord, ToolData, ToolResult, Toolbox, MAX_RANGE_DAYS};
use crate::calendar::{Booking, Slot};

/// Slots offered at a time.
const OFFER: usize = 3;
/// Misses in a row before the engine gives up.
const MAX_MISSES: u32 = 3;
/// Unfinished fragments ("um", "I would like") held in a row before the engine answers them anyway.
const MAX_HELD: u32 = 3;
/// Days listed when the caller names no day.
const DEFAULT_RANGE_DAYS: u32 = 14;

const GOODBYE: &str = "Thank you for calling. Goodbye!";
const ANYTHING_ELSE: &str = "Is there anything else I can help you with?";
const MENU: &str = "I can book, cancel or reschedule an appointment. What would you like to do?";
const NO_HUMAN: &str = "I'm sorry, I can't transfer you to a person from this line, but I can book, cancel or \
                        reschedule an appointment for you.";

/// Sentences the engine says often, worth synthesising before the first call.
pub const FIXED_PROMPTS: &[&str] = &[
    GOODBYE,
    ANYTHING_ELSE,
    MENU,
    NO_HUMAN,
    "May I have your full name, please?",
    "What email address should I send the confirmation to? Or I can use the number you're calling from.",
    "Are you still there?",
    "Sorry, I didn't catch that.",
    "Would one of those work for you?",
    "Shall I book it?",
    "Say yes, or press 1 to confirm.",
    crate::agent::tools::CHECKING_SLOTS,
];

/// What a booking in progress is for (one per conversation: its size does not matter).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
enum Purpose {
    /// A new booking.
    Book,
    /// Moving an existing booking.
    Move(Booking),
}

/// What a booking lookup is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Cancel,
    Move,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Self::Cancel => "cancel",
            Self::Move => "move",
        }
    }
}

/// Where the conversation is.
#[derive(Debug, Clone)]
enum Stage {
    /// Waiting for what the caller wants; with a purpose, for a day and time.
    Listening(Option<Purpose>),
    /// Slots offered, waiting for a pick.
    Offering {
        purpose: Purpose,
        offered: Vec<Slot>,
        rest: Vec<Slot>,
    },
    AskName(Slot),
    /// The caller's surname was asked to be spelled.
    SpellName(Slot),
    AskContact(Slot),
    Confirm(Slot),
    AskWhatToChange(Slot),
    AskLookupEmail(Action),
    PickBooking(Action, Vec<Booking>),
    ConfirmCancel(Booking),
    ConfirmMove(Booking, Slot),
    AnythingElse,
    Ended,
}

/// The offline rules engine for one conversation.
pub struct RulesEngine {
    context: CallContext,
    tools: Arc<Toolbox>,
    stage: Stage,
    name: Option<String>,
    email: Option<String>,
    use_phone: bool,
    wish: When,
    last_say: String,
    misses: u32,
    missed: bool,
    calls: Vec<ToolCallRecord>,
    /// Words of a turn the caller had plainly not finished ("I would like."), said again before the next.
    held: Option<String>,
    held_turns: u32,
    /// Which appointment a cancel or reschedule request named, and where a move should go.
    criteria: When,
    move_to: When,
    /// The conversation before the last turn while that turn can still be taken back: when the caller
    /// goes on speaking right after it, the whole turn is answered instead.
    before_last: Option<Snapshot>,
    /// Names and addresses the caller said were wrong at a read-back: never mended into again.
    turned_down: Vec<String>,
    /// The words of the turn being answered that the recogniser was unsure of, and whether the caller
    /// spelled letters in it.
    unsure: Vec<String>,
    spelled: bool,
    /// The word of the name whose letters matter: the recogniser was unsure of it, or the caller spelled
    /// it when asked. The read-back spells it.
    doubtful: Option<String>,
    /// Words the caller was asked to spell (once each).
    spell_asked: Vec<String>,
}

/// The conversation's state between turns.
#[derive(Debug, Clone)]
struct Snapshot {
    stage: Stage,
    name: Option<String>,
    email: Option<String>,
    use_phone: bool,
    wish: When,
    last_say: String,
    misses: u32,
    held: Option<String>,
    held_turns: u32,
    criteria: When,
    move_to: When,
    doubtful: Option<String>,
    spell_asked: Vec<String>,
}

/// One reply: what to say, and whether the call ends after it.
struct Reply {
    say: String,
    end: bool,
}

impl Reply {
    fn say(text: impl Into<String>) -> Self {
        Self { say: text.into(), end: false }
    }

    /// Nothing to say yet: the caller is still talking.
    fn wait() -> Self {
        Self { say: String::new(), end: false }
    }

    fn end(text: impl Into<String>) -> Self {
        Self { say: text.into(), end: true }
    }
}

impl RulesEngine {
    /// A new conversation.
    pub fn new(context: CallContext, tools: Arc<Toolbox>) -> Self {
        Self {
            context,
            tools,
            stage: Stage::Listening(None),
            name: None,
            email: None,
            use_phone: false,
            wish: When::default(),
            last_say: String::new(),
            misses: 0,
            missed: false,
            calls: Vec::new(),
            held: None,
            held_turns: 0,
            criteria: When::default(),
            move_to: When::default(),
            before_last: None,
            turned_down: Vec::new(),
            unsure: Vec::new(),
            spelled: false,
            doubtful: None,
            spell_asked: Vec::new(),
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            stage: self.stage.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            use_phone: self.use_phone,
            wish: self.wish,
            last_say: self.last_say.clone(),
            misses: self.misses,
            held: self.held.clone(),
            held_turns: self.held_turns,
            criteria: self.criteria,
            move_to: self.move_to,
            doubtful: self.doubtful.clone(),
            spell_asked: self.spell_asked.clone(),
        }
    }

    fn restore(&mut self, s: Snapshot) {
        self.stage = s.stage;
        self.name = s.name;
        self.email = s.email;
        self.use_phone = s.use_phone;
        self.wish = s.wish;
        self.last_say = s.last_say;
        self.misses = s.misses;
        self.held = s.held;
        self.held_turns = s.held_turns;
        self.criteria = s.criteria;
        self.move_to = s.move_to;
        self.doubtful = s.doubtful;
        self.spell_asked = s.spell_asked;
    }

    fn now(&self) -> DateTime<Utc> {
        self.context.clock.now()
    }

    fn today(&self) -> NaiveDate {
        self.now().with_timezone(&self.context.timezone).date_naive()
    }

    async fn call(&mut self, call: ToolCall) -> ToolResult {
        let result = self.tools.run(&call).await;
        self.calls.push(ToolCallRecord { call, outcome: result.outcome, result: result.text.clone() });
        result
    }

    /// What the current stage asks, for re-prompts.
    fn prompt(&self) -> String {
        let now = self.now();
        match &self.stage {
            Stage::Listening(None) => MENU.to_string(),
            Stage::Listening(Some(_)) => "What day and time would suit you?".to_string(),
            Stage::Offering { offered, .. } => {
                format!("I have {}. Which would you like? You can also press 1, 2 or 3.", speak::slots(offered, now))
            }
            Stage::AskName(_) => "May I have your full name, please?".to_string(),
            Stage::SpellName(_) => self.ask_spelling(),
            Stage::AskContact(_) => self.ask_contact(),
            Stage::Confirm(slot) => self.confirmation(slot),
            Stage::AskWhatToChange(_) => "What would you like to change: the time, the name or the email?".to_string(),
            Stage::AskLookupEmail(_) => "What email address was the appointment booked under?".to_string(),
            Stage::PickBooking(action, bookings) => {
                format!("Which appointment would you like to {}: {}?", action.verb(), self.list_bookings(bookings))
            }
            Stage::ConfirmCancel(booking) => format!(
                "Would you like me to cancel your appointment on {}? Say yes, or press 1 to confirm.",
                self.when_of(booking)
            ),
            Stage::ConfirmMove(booking, slot) => self.move_confirmation(booking, slot),
            Stage::AnythingElse => ANYTHING_ELSE.to_string(),
            Stage::Ended => GOODBYE.to_string(),
        }
    }

    fn ask_contact(&self) -> String {
        if self.context.caller.is_some() {
            "What email address should I send the confirmation to? Or I can use the number you're calling from."
                .to_string()
        } else {
            "What email address should I send the confirmation to?".to_string()
        }
    }

    /// Asks for the doubtful word of the name, spelled.
    fn ask_spelling(&self) -> String {
        let one_word = self.name.as_deref().is_some_and(|n| n.split_whitespace().count() < 2);
        if one_word {
            "Could you spell your name for me, letter by letter?".to_string()
        } else {
            "Could you spell your last name for me, letter by letter?".to_string()
        }
    }

    fn confirmation(&self, slot: &Slot) -> String {
        let mut name = self.name.clone().unwrap_or_default();
        // The word whose letters matter is read back letter by letter, as it will be booked.
        let doubtful = self.doubtful.as_deref().filter(|d| name.split_whitespace().any(|w| w == *d));
        if let Some(word) = doubtful {
            name = format!("{name}, spelled {},", spell_word(word));
        }
        let contact = match (&self.email, &self.context.caller) {
            (Some(email), _) if !self.use_phone => {
                format!("with the confirmation sent to {}, spelled {}", say_email(email), spell_local(email))
            }
            (_, Some(phone)) => format!("with your phone number {}", say_phone(phone)),
            _ => String::new(),
        };
        format!(
            "Just to confirm: an appointment for {name} on {}, {contact}. Shall I book it? Say yes, or press 1 to confirm.",
            speak::slot(slot, self.now())
        )
    }

    fn move_confirmation(&self, booking: &Booking, slot: &Slot) -> String {
        format!(
            "Just to confirm: I'll move your appointment from {} to {}. Shall I go ahead? Say yes, or press 1 to confirm.",
            self.when_of(booking),
            speak::slot(slot, self.now())
        )
    }

    fn when_of(&self, booking: &Booking) -> String {
        speak::instant(booking.start_at, self.context.timezone, self.now())
    }

    fn list_bookings(&self, bookings: &[Booking]) -> String {
        let items: Vec<String> = bookings.iter().map(|b| self.when_of(b)).collect();
        speak::or_list(&items)
    }

    fn say_day(&self, date: NaiveDate) -> String {
        let noon = date.and_time(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or_default());
        match self.context.timezone.from_local_datetime(&noon).earliest() {
            Some(local) => speak::day(local, self.now()),
            None => date.to_string(),
        }
    }

    fn miss(&mut self, silent: bool) -> Reply {
        self.missed = true;
        self.misses += 1;
        if self.misses >= MAX_MISSES {
            self.stage = Stage::Ended;
            self.tools.ending(if silent { EndCause::NoInput } else { EndCause::NotUnderstood });
            return Reply::end(if silent {
                "I'm sorry, I can't hear you. Please call back any time. Goodbye!"
            } else {
                "I'm sorry, I'm having trouble understanding. Please call back any time. Goodbye!"
            });
        }
        let lead = if silent { "Are you still there?" } else { "Sorry, I didn't catch that." };
        Reply::say(format!("{lead} {}", self.prompt()))
    }

    /// Whether `u` names a part of the booking where the agent asked which to change ("My name.", "name"):
    /// the answer, however short, never a sentence to wait for the rest of.
    fn answers_what_to_change(&self, u: &Utterance) -> bool {
        matches!(self.stage, Stage::AskWhatToChange(_))
            && u.has_any(&["time", "day", "date", "name", "email", "e-mail", "address", "phone", "number"])
    }

    /// The caller paused after a fragment and said nothing more: ask, without counting a miss.
    fn nudge(&mut self, held: &str) -> Reply {
        let greeted = Utterance::new(held).has_any(&["hi", "hello", "hey", "good morning", "good afternoon"]);
        let lead = if greeted { "Hello!" } else { "Take your time." };
        Reply::say(format!("{lead} {}", self.prompt()))
    }

    async fn respond(&mut self, turn: UserTurn) -> Reply {
        if turn.is_silent() {
            if let Some(held) = self.held.take() {
                self.held_turns = 0;
                return self.nudge(&held);
            }
            return self.miss(true);
        }
        let text = match self.held.take() {
            Some(held) if !turn.text.trim().is_empty() => format!("{held} {}", turn.text),
            _ => turn.text.clone(),
        };
        let u = Utterance::new(&text);
        (self.unsure, self.spelled) = (turn.unsure.clone(), contact::spelled(&u, &text));
        let reading = Reading::new(&u, &text, self.today(), self.expecting());
        if reading.unfinished && !self.answers_what_to_change(&u) && turn.dtmf.is_empty() && self.held_turns < MAX_HELD
        {
            self.held = Some(text);
            self.held_turns += 1;
            return Reply::wait();
        }
        self.held_turns = 0;
        let answering = matches!(
            self.stage,
            Stage::ConfirmCancel(_) | Stage::ConfirmMove(..) | Stage::PickBooking(..) | Stage::AskLookupEmail(_)
        );
        match reading.intent {
            Some(Intent::Goodbye) => {
                self.stage = Stage::Ended;
                return Reply::end(GOODBYE);
            }
            Some(Intent::Human) => return Reply::say(format!("{NO_HUMAN} {}", self.prompt())),
            Some(Intent::Repeat) if !self.last_say.is_empty() => return Reply::say(self.last_say.clone()),
            Some(Intent::Cancel) if !answering => return self.lookup(Action::Cancel, &reading).await,
            Some(Intent::Reschedule) if !answering => return self.lookup(Action::Move, &reading).await,
            _ => {}
        }
        let wish = reading.when;
        let yes = reading.yes;
        if self.collecting() {
            self.absorb(&reading);
        }
        let key_yes = key_answer(&turn.dtmf);
        match self.stage.clone() {
            Stage::Listening(purpose) => self.listening(&u, purpose, &reading).await,
            Stage::Offering { purpose, offered, rest } => {
                self.offering(&u, &turn.dtmf, purpose, offered, rest, &reading).await
            }
            Stage::AskName(slot) => self.on_ask_name(slot, &reading).await,
            Stage::SpellName(slot) => self.on_spell_name(slot, &u, &reading).await,
            Stage::AskContact(slot) => self.on_ask_contact(slot, &u, &reading, &turn.dtmf).await,
            Stage::Confirm(slot) => self.on_confirm(slot, &u, &reading, key_yes).await,
            Stage::AskWhatToChange(slot) => self.on_what_to_change(slot, &u, &reading).await,
            Stage::AskLookupEmail(action) => match contact::email(&u) {
                Some(email) => self.find(action, Some(email)).await,
                None if yes == Some(false) || intent::prefers_phone(&u) => {
                    self.stage = Stage::AnythingElse;
                    Reply::say(format!("I'm sorry, I can't find the appointment without it. {ANYTHING_ELSE}"))
                }
                None => self.miss(false),
            },
            Stage::PickBooking(action, bookings) => self.on_pick_booking(action, bookings, &u, wish, &turn.dtmf).await,
            Stage::ConfirmCancel(booking) => {
                let answer = key_yes.or(yes).or_else(|| u.has("cancel").then_some(true));
                self.on_confirm_cancel(booking, answer, &turn.text).await
            }
            Stage::ConfirmMove(booking, slot) => match key_yes.or(yes) {
                Some(true) => self.reschedule(booking, slot).await,
                Some(false) if !wish.is_empty() => self.offer(Purpose::Move(booking), wish.refine(self.wish)).await,
                Some(false) => {
                    self.stage = Stage::Listening(Some(Purpose::Move(booking)));
                    Reply::say("No problem. What day and time would you prefer instead?")
                }
                None if !wish.is_empty() => self.offer(Purpose::Move(booking), wish.refine(self.wish)).await,
                None => self.miss(false),
            },
            Stage::AnythingElse => self.on_anything_else(&u, reading).await,
            Stage::Ended => Reply::end(GOODBYE),
        }
    }

    /// Waiting for the caller's name; a new time is a correction.
    async fn on_ask_name(&mut self, slot: Slot, reading: &Reading) -> Reply {
        if let Some(reply) = self.correction(reading, Purpose::Book, None).await {
            return reply;
        }
        if reading.name.is_some() {
            return self.next_detail(slot);
        }
        if reading.has_details() {
            return Reply::say("Thank you. May I have your full name, please?");
        }
        self.miss(false)
    }

    /// The caller was asked to spell the doubtful word of their name: spelled letters replace it (or the
    /// whole name, said again with its spelling), a name introduced again replaces the name; anything else
    /// keeps the name as heard. Never asked again.
    async fn on_spell_name(&mut self, slot: Slot, u: &Utterance, reading: &Reading) -> Reply {
        if let Some(reply) = self.correction(reading, Purpose::Book, None).await {
            return reply;
        }
        let spelled = self.spelled.then(|| contact::name(u, Spelling::Mended)).flatten();
        if let (Some(spelled), Some(name)) = (spelled, self.name.clone()) {
            let spelled = self.unless_turned_down(spelled, contact::name(u, Spelling::AsSaid));
            let words: Vec<&str> = spelled.split_whitespace().collect();
            let name = match words.as_slice() {
                [one] => {
                    let mut parts: Vec<&str> = name.split_whitespace().collect();
                    parts.pop();
                    parts.push(one);
                    parts.join(" ")
                }
                _ => spelled.clone(),
            };
            // Spelled: read back letter by letter, never asked for again.
            self.doubtful = name.split_whitespace().last().map(str::to_string);
            self.spell_asked.extend(self.doubtful.clone());
            self.name = Some(name);
        } else if let Some(name) = contact::introduced_name(u, Spelling::Mended) {
            // The name said again ("My name is Ada Lovelace"): taken, and not asked for again.
            self.take_name(name, contact::introduced_name(u, Spelling::AsSaid));
            self.spell_asked.extend(self.doubtful.clone());
        }
        // An address or the phone said in the same breath is kept.
        self.absorb_contact(reading);
        self.next_detail(slot)
    }

    /// Asks to spell the name's doubtful word where it was not asked yet: the reply, with the stage set.
    fn spelling_request(&mut self, slot: &Slot) -> Option<Reply> {
        let word = self.doubtful.clone()?;
        if self.spell_asked.contains(&word) {
            return None;
        }
        self.spell_asked.push(word);
        self.stage = Stage::SpellName(slot.clone());
        let first = self.first_name().map(|f| format!("Thank you, {f}. ")).unwrap_or_default();
        Some(Reply::say(format!("{first}{}", self.ask_spelling())))
    }

    /// The read-back, unless the name's doubtful word is to be spelled first.
    fn read_back(&mut self, slot: Slot) -> Reply {
        if let Some(reply) = self.spelling_request(&slot) {
            return reply;
        }
        let say = self.confirmation(&slot);
        self.stage = Stage::Confirm(slot);
        Reply::say(say)
    }

    /// Waiting for an email address, or the caller's own number (said or key 1).
    async fn on_ask_contact(&mut self, slot: Slot, u: &Utterance, reading: &Reading, dtmf: &str) -> Reply {
        let again = self.turned_down.iter().rev().find_map(|address| address.split_once('@')).map(|(_, domain)| domain);
        let email = reading.email.clone().or_else(|| again.and_then(|domain| contact::email_in_domain(u, domain)));
        let email = email.or_else(|| self.name.as_deref().and_then(|name| contact::email_glued_to_name(u, name)));
        if let Some(email) = email {
            self.take_email(email);
            self.use_phone = false;
            return self.read_back(slot);
        }
        if intent::prefers_phone(u) || dtmf.starts_with('1') {
            if self.context.caller.is_none() {
                return Reply::say(
                    "I'm sorry, I can't see the number you're calling from. What email address should I use?",
                );
            }
            self.use_phone = true;
            return self.read_back(slot);
        }
        if let Some(reply) = self.correction(reading, Purpose::Book, None).await {
            return reply;
        }
        self.missed = true;
        self.misses += 1;
        if self.misses >= MAX_MISSES {
            return self.miss(false);
        }
        let phone =
            if self.context.caller.is_some() { " Or press 1 to use the number you're calling from." } else { "" };
        Reply::say(format!("Sorry, I didn't get that email address. Could you spell it for me? For example: j o h n at example dot com.{phone}"))
    }

    /// The booking was read back: a yes (said or key 1) books it, anything else corrects it.
    async fn on_confirm(&mut self, slot: Slot, u: &Utterance, reading: &Reading, key_yes: Option<bool>) -> Reply {
        let (wish, yes) = (reading.when, reading.yes);
        // "Yes, Thursday" when Wednesday was read back is a correction, not a yes.
        let contradicts = !wish.is_empty() && !fits(&slot, wish);
        match key_yes.or(yes) {
            Some(true) if !contradicts && !reading.correcting => self.book(slot).await,
            Some(false) | Some(true) => {
                if let Some(reply) = self.correction(reading, Purpose::Book, Some(&slot)).await {
                    return reply;
                }
                if self.amend_details(u, reading) {
                    return self.read_back(slot);
                }
                self.stage = Stage::AskWhatToChange(slot);
                Reply::say("No problem. What would you like to change: the time, the name or the email?")
            }
            None => {
                if let Some(reply) = self.correction(reading, Purpose::Book, Some(&slot)).await {
                    return reply;
                }
                if self.amend_details(u, reading) {
                    return self.read_back(slot);
                }
                if reading.accepts {
                    return self.book(slot).await;
                }
                self.miss(false)
            }
        }
    }

    /// The caller wants to change something: the time, the name or the contact.
    async fn on_what_to_change(&mut self, slot: Slot, u: &Utterance, reading: &Reading) -> Reply {
        let wish = reading.when;
        if !wish.is_empty() {
            return self.offer(Purpose::Book, wish.refine(self.wish)).await;
        }
        if u.has_any(&["time", "day", "date", "slot", "appointment"]) {
            self.stage = Stage::Listening(Some(Purpose::Book));
            return Reply::say("Sure. What day and time would you prefer?");
        }
        if u.has("name") {
            self.turned_down.extend(self.name.take());
            self.stage = Stage::AskName(slot);
            return Reply::say("Sure. What name should I put the appointment under?");
        }
        if u.has_any(&["email", "e-mail", "address", "contact", "phone", "number"]) {
            self.turned_down.extend(self.email.take());
            self.use_phone = false;
            self.stage = Stage::AskContact(slot);
            return Reply::say(self.ask_contact());
        }
        if self.amend_details(u, reading) {
            return self.read_back(slot);
        }
        self.miss(false)
    }

    /// Several bookings were listed: pick one by key, by position or by its time.
    async fn on_pick_booking(
        &mut self,
        action: Action,
        bookings: Vec<Booking>,
        u: &Utterance,
        wish: When,
        dtmf: &str,
    ) -> Reply {
        let picked = choice::pick_key(dtmf, bookings.len())
            .or_else(|| choice::pick(u, bookings.len()))
            .or_else(|| self.booking_matching(&bookings, wish));
        match picked.and_then(|i| bookings.get(i).cloned()) {
            Some(booking) => self.picked_booking(action, booking).await,
            None => self.miss(false),
        }
    }

    /// Asked whether to cancel `booking`: `answer` is the caller's yes or no, `said` their words (the reason).
    async fn on_confirm_cancel(&mut self, booking: Booking, answer: Option<bool>, said: &str) -> Reply {
        match answer {
            Some(true) => {
                let result = self
                    .call(ToolCall::CancelAppointment {
                        booking_id: booking.id.to_string(),
                        reason: cancel_reason(said),
                    })
                    .await;
                self.stage = Stage::AnythingElse;
                if result.is_ok() {
                    Reply::say(format!(
                        "Your appointment on {} has been cancelled. {ANYTHING_ELSE}",
                        self.when_of(&booking)
                    ))
                } else {
                    Reply::say(format!("I'm sorry. {} {ANYTHING_ELSE}", sentence(&result.text)))
                }
            }
            Some(false) => {
                self.stage = Stage::AnythingElse;
                Reply::say(format!("Okay, I'll keep your appointment as it is. {ANYTHING_ELSE}"))
            }
            None => self.miss(false),
        }
    }

    /// Asked whether there is anything else: a new request starts over, a no ends the call.
    async fn on_anything_else(&mut self, u: &Utterance, reading: Reading) -> Reply {
        let (wish, yes) = (reading.when, reading.yes);
        if reading.intent.is_some() || !wish.is_empty() {
            let reading = Reading { yes: None, ..reading };
            return self.listening(u, None, &reading).await;
        }
        match yes {
            Some(false) => {
                self.stage = Stage::Ended;
                Reply::end(GOODBYE)
            }
            Some(true) => {
                self.stage = Stage::Listening(None);
                Reply::say("Sure. What can I help you with?")
            }
            None => self.miss(false),
        }
    }

    async fn listening(&mut self, u: &Utterance, purpose: Option<Purpose>, reading: &Reading) -> Reply {
        let (wish, yes) = (reading.when, reading.yes);
        if let Some(purpose) = purpose {
            let whenever = u.has_any(&["any", "anytime", "whenever", "don't mind", "doesn't matter", "either"]);
            if !wish.is_empty() || yes == Some(true) || whenever || intent::wants_other_options(u) {
                return self.offer(purpose, wish).await;
            }
            if reading.unreadable_correction {
                return self.ask_instead(purpose);
            }
            if reading.has_details() {
                let first = self.first_name().map(|f| format!("Thank you, {f}. ")).unwrap_or_default();
                return Reply::say(format!("{first}{}", self.prompt()));
            }
            return self.miss(false);
        }
        match reading.intent {
            Some(Intent::Book | Intent::Availability) => self.offer(Purpose::Book, wish).await,
            _ if !wish.is_empty() => self.offer(Purpose::Book, wish).await,
            _ if yes == Some(true) || reading.has_details() => {
                self.stage = Stage::Listening(Some(Purpose::Book));
                Reply::say("Great. What day would suit you?")
            }
            _ => self.miss(false),
        }
    }

    /// A "no, Thursday" or "actually at 3": a new day or time wish while details are being collected. At
    /// the read-back (`anchor`, the slot read back) the new value replaces only what it names: "no,
    /// Thursday" keeps the time. A correction whose value cannot be read is a question.
    async fn correction(&mut self, reading: &Reading, purpose: Purpose, anchor: Option<&Slot>) -> Option<Reply> {
        if reading.unreadable_correction {
            return Some(self.ask_instead(purpose));
        }
        let wish = reading.when;
        let correcting = reading.correcting || reading.yes == Some(false) || reading.yes == Some(true);
        if wish.is_empty() || (!correcting && reading.has_details()) {
            return None;
        }
        let wish = match anchor {
            Some(slot) => {
                let local = slot.local_start();
                When {
                    days: wish.days.or(Some(Days::On(local.date_naive()))),
                    times: wish.times.or(Some(Times::At(local.time()))),
                    ..wish
                }
            }
            None => wish.refine(self.wish),
        };
        Some(self.offer(purpose, wish).await)
    }

    /// Takes a new email or an introduced name from a correction; `true` when something changed.
    fn amend_details(&mut self, u: &Utterance, reading: &Reading) -> bool {
        if let Some(email) = reading.email.clone() {
            self.take_email(email);
            self.use_phone = false;
            return true;
        }
        if u.has_any(&["my name is", "name is", "my name's", "it's", "spelled"]) {
            if let Some(name) = contact::name(u, Spelling::Mended) {
                let as_said = contact::name(u, Spelling::AsSaid);
                self.take_name(name, as_said);
                return true;
            }
        }
        if intent::prefers_phone(u) && self.context.caller.is_some() {
            self.use_phone = true;
            return true;
        }
        false
    }

    /// Lists slots and offers those fitting `wish` (or, when none fits, the nearest ones).
    async fn offer(&mut self, purpose: Purpose, wish: When) -> Reply {
        let today = self.today();
        if let Some(days) = wish.days {
            if days.first() > today + Duration::days(i64::from(MAX_RANGE_DAYS)) {
                self.stage = Stage::Listening(Some(purpose));
                return Reply::say(format!(
                    "I'm sorry, I can only book up to {MAX_RANGE_DAYS} days ahead. What other day would suit you?"
                ));
            }
        }
        let range_days = match wish.days {
            Some(days) => u32::try_from((days.last() - today).num_days() + 8)
                .unwrap_or(DEFAULT_RANGE_DAYS)
                .clamp(DEFAULT_RANGE_DAYS, MAX_RANGE_DAYS),
            None => DEFAULT_RANGE_DAYS,
        };
        if matches!(purpose, Purpose::Book) {
            self.tools.reached(Step::Intent);
        }
        let result = self.call(ToolCall::ListAvailableSlots { range_days }).await;
        let slots = match result.data {
            ToolData::Slots(slots) => slots,
            _ => {
                self.stage = Stage::AnythingElse;
                return Reply::say(match result.outcome {
                    "no_slots" => format!("I'm sorry. {} in the next {range_days} days. {ANYTHING_ELSE}", result.text),
                    "not_configured" => {
                        format!(
                            "I'm sorry. {}, so I can't book appointments right now. {ANYTHING_ELSE}",
                            sentence_body(&result.text)
                        )
                    }
                    _ => format!(
                        "I'm sorry. {} Please try again in a few minutes. {ANYTHING_ELSE}",
                        sentence(&result.text)
                    ),
                });
            }
        };
        self.wish = wish;
        let now = self.now();
        let fits = |s: &Slot| {
            let local = s.local_start();
            wish.days.is_none_or(|d| d.contains(local.date_naive()))
                && wish.times.is_none_or(|t| t.contains(local.time()))
        };
        let matching: Vec<Slot> = slots.iter().filter(|s| fits(s)).cloned().collect();
        if let (Some(Days::On(_)), Some(Times::At(_))) = (wish.days, wish.times) {
            if let Some(slot) = matching.first().cloned() {
                return self.choose(purpose, slot);
            }
        }
        if matching.is_empty() {
            let nearest = nearest(&slots, self.target_instant(wish));
            let missing = self.describe_wish(wish);
            let offered = nearest.clone();
            self.stage = Stage::Offering { purpose, offered: offered.clone(), rest: Vec::new() };
            return Reply::say(format!(
                "I'm sorry, I don't have anything {missing}. The closest times I have are {}. Would one of those work?",
                speak::slots(&offered, now)
            ));
        }
        let (offered, rest) = split_offer(matching);
        let lead = if wish.is_empty() || wish.earliest && wish.days.is_none() {
            "The earliest times I have are"
        } else {
            "I have"
        };
        let say = format!("{lead} {}. Would one of those work for you?", speak::slots(&offered, now));
        self.stage = Stage::Offering { purpose, offered, rest };
        say.into_reply()
    }

    /// The instant a wish aims at, for "nearest" alternatives.
    fn target_instant(&self, wish: When) -> DateTime<Utc> {
        let date = wish.days.map_or(self.today(), Days::first);
        let time = match wish.times {
            Some(Times::At(t) | Times::After(t) | Times::Before(t)) => t,
            Some(Times::Part(part)) => NaiveTime::from_hms_opt(part.hours().0.max(9), 0, 0).unwrap_or_default(),
            None => NaiveTime::from_hms_opt(9, 0, 0).unwrap_or_default(),
        };
        self.context
            .timezone
            .from_local_datetime(&date.and_time(time))
            .earliest()
            .map_or_else(|| self.now(), |t| t.with_timezone(&Utc))
    }

    /// "on Saturday, December 5th", "at 2 PM on Thursday, December 3rd", "in the morning".
    fn describe_wish(&self, wish: When) -> String {
        let day = match wish.days {
            Some(Days::On(d)) => format!("on {}", self.say_day(d)),
            Some(Days::Between(a, b)) => format!("between {} and {}", self.say_day(a), self.say_day(b)),
            None => String::new(),
        };
        let time = match wish.times {
            Some(Times::At(t)) => format!("at {}", speak::time(t)),
            Some(Times::After(t)) => format!("after {}", speak::time(t)),
            Some(Times::Before(t)) => format!("before {}", speak::time(t)),
            Some(Times::Part(part)) => match part {
                when::DayPart::Morning => "in the morning".to_string(),
                when::DayPart::Afternoon => "in the afternoon".to_string(),
                when::DayPart::Evening => "in the evening".to_string(),
            },
            None => String::new(),
        };
        [time, day].into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>().join(" ")
    }

    async fn offering(
        &mut self,
        u: &Utterance,
        dtmf: &str,
        purpose: Purpose,
        offered: Vec<Slot>,
        rest: Vec<Slot>,
        reading: &Reading,
    ) -> Reply {
        let (wish, yes) = (reading.when, reading.yes);
        if let Some(i) = choice::pick_key(dtmf, offered.len()).or_else(|| choice::pick(u, offered.len())) {
            return self.choose(purpose, offered[i].clone());
        }
        if let Some(slot) = offered_at(&offered, u, wish) {
            return self.choose(purpose, slot);
        }
        if reading.unreadable_correction {
            return self.ask_instead(purpose);
        }
        // "Yes, the earliest" takes the earliest offered; any other wish lists again.
        let yes_earliest = wish.earliest && wish.days.is_none() && wish.times.is_none() && yes == Some(true);
        if !wish.is_empty() && !yes_earliest {
            return self.offer(purpose, wish.refine(self.wish)).await;
        }
        if (yes == Some(true) || reading.accepts) && !intent::wants_other_options(u) {
            if let [slot] = offered.as_slice() {
                return self.choose(purpose, slot.clone());
            }
            return Reply::say(format!("Which one would you like: {}?", speak::slots(&offered, self.now())));
        }
        // "No, my email is …" while times are offered corrects a detail; the times stand.
        let corrects_detail = reading.has_details() && yes == Some(false) && !intent::wants_other_options(u);
        if (yes == Some(false) || intent::wants_other_options(u)) && !corrects_detail {
            if rest.is_empty() {
                self.stage = Stage::Listening(Some(purpose));
                return Reply::say("Those are all the times I have for that. Would you like to try another day?");
            }
            let (next, rest) = split_offer(rest);
            let say = format!("I also have {}. Would one of those work?", speak::slots(&next, self.now()));
            self.stage = Stage::Offering { purpose, offered: next, rest };
            return say.into_reply();
        }
        if reading.has_details() {
            // Name or email before the pick: kept, and the pick asked again.
            let first = self.first_name().map(|f| format!("Thank you, {f}. ")).unwrap_or_default();
            return Reply::say(format!("{first}{}", self.prompt()));
        }
        if matches!(reading.intent, Some(Intent::Book | Intent::Availability)) {
            return Reply::say(self.prompt());
        }
        self.miss(false)
    }

    /// A correction whose new value could not be read: ask for it, never keep the old one.
    fn ask_instead(&mut self, purpose: Purpose) -> Reply {
        self.stage = Stage::Listening(Some(purpose));
        Reply::say("Sorry, I didn't catch what you'd like instead. Which day would you like instead?")
    }

    fn first_name(&self) -> Option<String> {
        self.name.as_deref().and_then(|n| n.split_whitespace().next()).map(str::to_string)
    }

    /// Takes a name the caller gave: as mended from garbled spelled letters, or as said where the caller
    /// already turned the mended one down.
    ///
    /// The surname (or the only word) is doubtful when the recogniser was unsure of it, the caller did
    /// not spell it and it is no common name.
    fn take_name(&mut self, name: String, as_said: Option<String>) {
        let name = self.unless_turned_down(name, as_said);
        let surname = name.split_whitespace().last().unwrap_or_default();
        let doubtful = super::unsure_of(&self.unsure, surname) && !self.spelled && !contact::is_common_name(surname);
        if doubtful {
            tracing::debug!("the recogniser was unsure of the caller's surname");
        }
        self.doubtful = doubtful.then(|| surname.to_string());
        self.name = Some(name);
    }

    /// The name as mended, or as said where the caller already turned the mended one down.
    fn unless_turned_down(&self, mended: String, as_said: Option<String>) -> String {
        match as_said {
            Some(said) if self.turned_down.contains(&mended) => said,
            _ => mended,
        }
    }

    /// Takes an address the caller gave; spelled letters near a word of the caller's name are that word
    /// ("a d at example dot com" from Ada), unless the caller turned that address down.
    fn take_email(&mut self, email: String) {
        let like_name = self.name.as_deref().and_then(|name| contact::email_like_name(&email, name));
        self.email = Some(match like_name {
            Some(address) if !self.turned_down.contains(&address) => address,
            _ => email,
        });
    }

    /// Takes the details a turn carries (name, email, phone), whatever was asked.
    fn absorb(&mut self, reading: &Reading) {
        if let Some(name) = &reading.name {
            self.take_name(name.clone(), reading.name_as_said.clone());
        }
        self.absorb_contact(reading);
    }

    /// Takes the email or the wish to be reached on the calling number that a turn carries.
    fn absorb_contact(&mut self, reading: &Reading) {
        if let Some(email) = &reading.email {
            self.take_email(email.clone());
            self.use_phone = false;
        } else if reading.phone && self.context.caller.is_some() {
            self.use_phone = true;
        }
    }

    /// The booking funnel step the conversation stands at, if it is making a booking.
    fn funnel_step(&self) -> Option<Step> {
        match &self.stage {
            Stage::Listening(Some(Purpose::Book)) => Some(Step::Intent),
            Stage::Offering { purpose: Purpose::Book, .. } => Some(Step::Offered),
            Stage::AskName(_) | Stage::SpellName(_) | Stage::AskContact(_) => Some(Step::Chosen),
            Stage::Confirm(_) | Stage::AskWhatToChange(_) => Some(Step::Details),
            _ => None,
        }
    }

    /// Whether the conversation is collecting a booking's details (where any turn may give them).
    fn collecting(&self) -> bool {
        matches!(self.stage, Stage::Listening(_) | Stage::Offering { .. } | Stage::AskName(_) | Stage::AskContact(_))
    }

    fn choose(&mut self, purpose: Purpose, slot: Slot) -> Reply {
        match purpose {
            Purpose::Move(booking) => {
                let say = self.move_confirmation(&booking, &slot);
                self.stage = Stage::ConfirmMove(booking, slot);
                Reply::say(say)
            }
            Purpose::Book => {
                let when = speak::slot(&slot, self.now());
                if self.name.is_none() {
                    self.stage = Stage::AskName(slot);
                    return Reply::say(format!("Great, {when}. May I have your full name, please?"));
                }
                let reply = self.next_detail(slot);
                Reply::say(format!("Great, {when}. {}", reply.say))
            }
        }
    }

    /// After a name: the contact if still missing, else the read-back.
    fn next_detail(&mut self, slot: Slot) -> Reply {
        if let Some(reply) = self.spelling_request(&slot) {
            return reply;
        }
        if self.email.is_none() && !self.use_phone {
            self.stage = Stage::AskContact(slot);
            let first = self.name.as_deref().and_then(|n| n.split_whitespace().next()).unwrap_or("").to_string();
            return Reply::say(format!("Thank you, {first}. {}", self.ask_contact()));
        }
        let say = self.confirmation(&slot);
        self.stage = Stage::Confirm(slot);
        Reply::say(say)
    }

    async fn book(&mut self, slot: Slot) -> Reply {
        let Some(name) = self.name.clone() else {
            self.stage = Stage::AskName(slot);
            return Reply::say("May I have your full name, please?");
        };
        let result = self
            .call(ToolCall::ScheduleAppointment {
                slot_id: slot.id.to_string(),
                attendee_name: name.clone(),
                attendee_email: if self.use_phone { None } else { self.email.clone() },
                attendee_phone: self.context.caller.clone(),
                notes: None,
            })
            .await;
        let now = self.now();
        match result.data {
            ToolData::Booking(booking) => {
                self.stage = Stage::AnythingElse;
                let first = name.split_whitespace().next().unwrap_or(&name).to_string();
                let contact = match (&booking.attendee_email, self.use_phone) {
                    (Some(email), false) => format!(" A confirmation is on its way to {}.", say_email(email)),
                    _ => String::new(),
                };
                Reply::say(format!(
                    "You're all set, {first}! Your appointment is booked for {}.{contact} {ANYTHING_ELSE}",
                    speak::instant(booking.start_at, self.context.timezone, now)
                ))
            }
            ToolData::Taken(alternatives) if !alternatives.is_empty() => {
                self.offer_instead(Purpose::Book, alternatives)
            }
            ToolData::Taken(_) => {
                self.stage = Stage::Listening(Some(Purpose::Book));
                Reply::say("I'm sorry, that time was just taken and nothing else is free soon. Would another day work?")
            }
            _ if result.outcome == "invalid_input" && result.text.to_lowercase().contains("email") => {
                self.email = None;
                self.stage = Stage::AskContact(slot);
                Reply::say(format!("I'm sorry, {} What email address should I use?", sentence(&result.text)))
            }
            _ if result.outcome == "invalid_input" && result.text.to_lowercase().contains("name") => {
                self.name = None;
                self.stage = Stage::AskName(slot);
                Reply::say(format!("I'm sorry, {} May I have your full name again?", sentence(&result.text)))
            }
            _ if result.outcome == "invalid_input" => self.offer(Purpose::Book, self.wish).await,
            _ => {
                self.stage = Stage::AnythingElse;
                Reply::say(format!(
                    "I'm sorry. {} Please try again in a few minutes. {ANYTHING_ELSE}",
                    sentence(&result.text)
                ))
            }
        }
    }

    async fn reschedule(&mut self, booking: Booking, slot: Slot) -> Reply {
        let result = self
            .call(ToolCall::RescheduleAppointment { booking_id: booking.id.to_string(), slot_id: slot.id.to_string() })
            .await;
        let now = self.now();
        match result.data {
            ToolData::Booking(moved) => {
                self.stage = Stage::AnythingElse;
                Reply::say(format!(
                    "Done! Your appointment is now on {}. {ANYTHING_ELSE}",
                    speak::instant(moved.start_at, self.context.timezone, now)
                ))
            }
            ToolData::Taken(alternatives) if !alternatives.is_empty() => {
                self.offer_instead(Purpose::Move(booking), alternatives)
            }
            _ => {
                self.stage = Stage::AnythingElse;
                Reply::say(format!("I'm sorry. {} {ANYTHING_ELSE}", sentence(&result.text)))
            }
        }
    }

    /// The slot was taken meanwhile: an apology and the nearest free ones.
    fn offer_instead(&mut self, purpose: Purpose, alternatives: Vec<Slot>) -> Reply {
        let (offered, rest) = split_offer(alternatives);
        let say = format!(
            "I'm sorry, that time was just taken. The nearest free times are {}. Would one of those work?",
            speak::slots(&offered, self.now())
        );
        self.stage = Stage::Offering { purpose, offered, rest };
        Reply::say(say)
    }

    /// Finds the caller's bookings (by caller id, or `email`) to cancel or move one.
    /// A cancel or reschedule request: which appointment it names and, for a move, where to.
    async fn lookup(&mut self, action: Action, reading: &Reading) -> Reply {
        self.criteria = reading.criteria;
        self.move_to = reading.when;
        self.find(action, reading.email.clone()).await
    }

    /// Finds the caller's bookings (by caller id, or `email`) to cancel or move one.
    async fn find(&mut self, action: Action, email: Option<String>) -> Reply {
        let email = email.or_else(|| self.email.clone());
        let result = self.call(ToolCall::FindAppointments { attendee_email: email.clone() }).await;
        let bookings = match result.data {
            ToolData::Bookings(bookings) => bookings,
            _ if result.outcome == "invalid_input" => {
                self.stage = Stage::AskLookupEmail(action);
                return Reply::say("Sure. What email address was the appointment booked under?");
            }
            _ => {
                self.stage = Stage::AnythingElse;
                return Reply::say(format!("I'm sorry. {} {ANYTHING_ELSE}", sentence(&result.text)));
            }
        };
        if let Some(e) = &email {
            self.email = Some(e.clone());
        }
        match bookings.as_slice() {
            [] if email.is_none() => {
                self.stage = Stage::AskLookupEmail(action);
                Reply::say(
                    "I couldn't find any upcoming appointments for the number you're calling from. What email address \
                     was the appointment booked under?",
                )
            }
            [] => {
                self.stage = Stage::AnythingElse;
                let email = email.as_deref().map(say_email).unwrap_or_default();
                Reply::say(format!("I couldn't find any upcoming appointments under {email}. {ANYTHING_ELSE}"))
            }
            [one] => self.picked_booking(action, one.clone()).await,
            many if self.booking_matching(many, self.criteria).is_some() => {
                let i = self.booking_matching(many, self.criteria).unwrap_or_default();
                self.picked_booking(action, many[i].clone()).await
            }
            many => {
                let say = format!(
                    "I found {} appointments: {}. Which one would you like to {}?",
                    many.len(),
                    self.list_bookings(many),
                    action.verb()
                );
                self.stage = Stage::PickBooking(action, many.to_vec());
                Reply::say(say)
            }
        }
    }

    async fn picked_booking(&mut self, action: Action, booking: Booking) -> Reply {
        let when = self.when_of(&booking);
        if self.name.is_none() {
            self.name = Some(booking.attendee_name.clone());
        }
        match action {
            Action::Cancel => {
                self.stage = Stage::ConfirmCancel(booking);
                Reply::say(format!(
                    "I found your appointment on {when}. Would you like me to cancel it? Say yes, or press 1 to confirm."
                ))
            }
            Action::Move if !self.move_to.is_empty() => {
                // "Move my appointment to next Monday": the day asked for comes with the request.
                let target = std::mem::take(&mut self.move_to);
                let reply = self.offer(Purpose::Move(booking), target).await;
                Reply { say: format!("I found your appointment on {when}. {}", reply.say), ..reply }
            }
            Action::Move => {
                self.stage = Stage::Listening(Some(Purpose::Move(booking)));
                Reply::say(format!("I found your appointment on {when}. What day and time would you like instead?"))
            }
        }
    }

    fn booking_matching(&self, bookings: &[Booking], wish: When) -> Option<usize> {
        if wish.is_empty() {
            return None;
        }
        let hits: Vec<usize> = bookings
            .iter()
            .enumerate()
            .filter(|(_, b)| {
                let local = b.start_at.with_timezone(&self.context.timezone);
                wish.days.is_none_or(|d| d.contains(local.date_naive()))
                    && wish.times.is_none_or(|t| t.contains(local.time()))
            })
            .map(|(i, _)| i)
            .collect();
        match hits.as_slice() {
            [one] => Some(*one),
            _ => None,
        }
    }
}

trait IntoReply {
    fn into_reply(self) -> Reply;
}

impl IntoReply for String {
    fn into_reply(self) -> Reply {
        Reply::say(self)
    }
}

/// The slots closest to `target` on both sides: the last one before it and the first ones after it
/// ([`OFFER`] in all, more from one side when the other has none), soonest first.
fn nearest(slots: &[Slot], target: DateTime<Utc>) -> Vec<Slot> {
    let split = slots.partition_point(|s| s.start < target);
    let (before, after) = slots.split_at(split);
    let from_before = before.len().min(if after.is_empty() { OFFER } else { 1 });
    let from_after = after.len().min(OFFER - from_before);
    let from_before = before.len().min(OFFER - from_after);
    let mut out: Vec<Slot> = before[before.len() - from_before..].to_vec();
    out.extend_from_slice(&after[..from_after]);
    out
}

/// A yes or no by key: 1 is yes, 2 is no (the first key pressed counts).
fn key_answer(dtmf: &str) -> Option<bool> {
    match dtmf.chars().next() {
        Some('1') => Some(true),
        Some('2') => Some(false),
        _ => None,
    }
}

/// Whether `slot` is one the wish describes.
fn fits(slot: &Slot, wish: When) -> bool {
    let local = slot.local_start();
    wish.days.is_none_or(|d| d.contains(local.date_naive())) && wish.times.is_none_or(|t| t.contains(local.time()))
}

/// The one offered slot a time picks: "930", "the 10 o'clock", "Thursday at 9:30", or a lone hour that
/// is not an option's number ("ten" among 9, 9:30 and 10).
fn offered_at(offered: &[Slot], u: &Utterance, wish: When) -> Option<Slot> {
    use chrono::Timelike as _;
    let hits: Vec<&Slot> = match wish.times {
        Some(Times::At(_)) => offered.iter().filter(|s| fits(s, wish)).collect(),
        None if wish.days.is_none() => {
            let content: Vec<&String> = u
                .words
                .iter()
                .filter(|w| !matches!(w.as_str(), "please" | "the" | "um" | "uh" | "at" | "one" | "how" | "about"))
                .collect();
            let [only] = content.as_slice() else { return None };
            let hour =
                crate::agent::nlu::number(only).filter(|h| (1..=12).contains(h) && *h as usize > offered.len())?;
            offered
                .iter()
                .filter(|s| s.local_start().hour() % 12 == hour % 12 && s.local_start().minute() == 0)
                .collect()
        }
        _ => return None,
    };
    match hits.as_slice() {
        [slot] => Some((*slot).clone()),
        _ => None,
    }
}

fn split_offer(mut slots: Vec<Slot>) -> (Vec<Slot>, Vec<Slot>) {
    let rest = slots.split_off(slots.len().min(OFFER));
    (slots, rest)
}

/// `text` as a sentence ending in a full stop.
fn sentence(text: &str) -> String {
    let text = text.trim();
    if text.ends_with(['.', '!', '?']) {
        text.to_string()
    } else {
        format!("{text}.")
    }
}

/// `text` without its final full stop.
fn sentence_body(text: &str) -> &str {
    text.trim().trim_end_matches('.')
}

/// An email as it is read aloud: "jane dot doe at example dot com".
fn say_email(email: &str) -> String {
    email.replace('.', " dot ").replace('@', " at ")
}

/// The part of an email before the `@`, letter by letter ("J A N E dot D O E"), so that the read-back is the
/// address that will be sent to, even where a recogniser wrote spelled letters as a word ("jon" as "john").
fn spell_local(email: &str) -> String {
    let local = email.split('@').next().unwrap_or(email);
    let spoken: Vec<String> = local
        .chars()
        .map(|c| match c {
            '.' => "dot".to_string(),
            '_' => "underscore".to_string(),
            '-' => "dash".to_string(),
            '+' => "plus".to_string(),
            c => c.to_uppercase().to_string(),
        })
        .collect();
    spoken.join(" ")
}

/// A word letter by letter ("Garsha" → "G A R S H A").
fn spell_word(word: &str) -> String {
    let letters: Vec<String> =
        word.chars().filter(|c| c.is_alphanumeric()).map(|c| c.to_uppercase().to_string()).collect();
    letters.join(" ")
}

/// A phone number read in groups of digits.
fn say_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let tail = digits.len().saturating_sub(4);
    format!("ending in {}", &digits[tail..])
}

fn cancel_reason(text: &str) -> Option<String> {
    let lower = text.to_lowercase();
    let (_, reason) = lower.split_once("because")?;
    let reason = reason.trim();
    (!reason.is_empty()).then(|| reason.to_string())
}

#[async_trait]
impl DialogEngine for RulesEngine {
    fn name(&self) -> &'static str {
        "rules"
    }

    fn expecting(&self) -> Expect {
        match &self.stage {
            Stage::Listening(None) => Expect::Request,
            Stage::Listening(Some(_)) => Expect::When,
            Stage::Offering { .. } | Stage::PickBooking(..) => Expect::Choice,
            Stage::AskName(_) => Expect::Name,
            // Letters come with pauses between them: the turn is not ended early.
            Stage::SpellName(_) => Expect::Anything,
            Stage::AskContact(_) | Stage::AskLookupEmail(_) => Expect::Contact,
            Stage::Confirm(_) | Stage::ConfirmCancel(_) | Stage::ConfirmMove(..) | Stage::AnythingElse => Expect::YesNo,
            Stage::AskWhatToChange(_) | Stage::Ended => Expect::Anything,
        }
    }

    async fn greet(&mut self) -> AgentTurn {
        let mut say = self.context.agent.greeting.trim().to_string();
        if let Some(reason) = self.tools.unavailable() {
            say = format!("{say} I'm sorry: {}, so I can't book appointments on this call.", sentence_body(reason));
        }
        self.last_say = say.clone();
        AgentTurn::say(say)
    }

    async fn on_user_turn(&mut self, turn: UserTurn) -> AgentTurn {
        self.calls.clear();
        self.missed = false;
        let before = self.snapshot();
        let reply = self.respond(turn).await;
        if !self.missed {
            self.misses = 0;
        }
        if reply.end {
            self.stage = Stage::Ended;
        }
        if let Some(step) = self.funnel_step() {
            self.tools.reached(step);
        }
        if !reply.say.is_empty() {
            self.last_say = reply.say.clone();
        }
        // A turn that changed the calendar cannot be taken back; one that only listed slots can.
        let changed = self.calls.iter().any(|c| c.call.changes_calendar());
        self.before_last = (!changed && !reply.end).then_some(before);
        AgentTurn { say: reply.say, tool_calls: std::mem::take(&mut self.calls), end_call: reply.end }
    }

    async fn continue_turn(&mut self, whole: UserTurn) -> AgentTurn {
        match self.before_last.take() {
            Some(snapshot) => {
                self.restore(snapshot);
                self.on_user_turn(whole).await
            }
            None => self.on_user_turn(whole).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_is_spelled_letter_by_letter() {
        assert_eq!(spell_word("Kowalczyk"), "K O W A L C Z Y K");
        assert_eq!(spell_word("O'Neil"), "O N E I L");
        assert_eq!(spell_word(""), "");
    }
}
