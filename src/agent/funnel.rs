//! The booking funnel of one conversation: which steps it reached (answered → booking intent → slots
//! offered → slot chosen → details complete → booked) and, when it ends, its one outcome.
//!
//! Each step is counted at most once per conversation (`slotline_booking_funnel_total{step}`), however
//! often a turn repeats it, and reaching a step also reaches every step before it, so the funnel never
//! widens. The outcome (`slotline_conversations_total{outcome}`) is `booked`, `cancelled` or
//! `rescheduled` for a conversation that achieved one of those, else the reason it ended without a
//! booking: what went wrong on the calendar (`slot_taken`, `calendar_error`, `no_slots`), else how the
//! call ended (`caller_hung_up`, `not_understood`, `no_input`, `transferred_or_other`).
//!
//! Labels are the agent's name, its calendar kind and the way in: nothing about the caller.

use super::tools::Outcome;
use crate::call::WayIn;
use crate::metrics;

/// A step of the booking funnel, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    /// The conversation started (a call was answered, a chat opened).
    Answered,
    /// The caller asked for an appointment.
    Intent,
    /// Free slots were offered.
    Offered,
    /// The caller picked one.
    Chosen,
    /// Name and contact are known: the booking can be made.
    Details,
    /// The booking was made.
    Booked,
}

impl Step {
    /// Every step, in funnel order.
    pub const ALL: [Step; 6] = [Step::Answered, Step::Intent, Step::Offered, Step::Chosen, Step::Details, Step::Booked];

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Answered => "answered",
            Self::Intent => "intent",
            Self::Offered => "offered",
            Self::Chosen => "chosen",
            Self::Details => "details",
            Self::Booked => "booked",
        }
    }
}

/// Why the agent ended the conversation, when a dialog engine knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The caller's words could not be understood, several times in a row.
    NotUnderstood,
    /// The caller stayed silent, several times in a row.
    NoInput,
}

/// Every value of the `outcome` label of `slotline_conversations_total`.
pub const OUTCOMES: [&str; 10] = [
    "booked",
    "cancelled",
    "rescheduled",
    "slot_taken",
    "calendar_error",
    "no_slots",
    "caller_hung_up",
    "not_understood",
    "no_input",
    "transferred_or_other",
];

/// Every way in, as labels.
pub const WAYS_IN: [WayIn; 3] = [WayIn::Sip, WayIn::Livekit, WayIn::Chat];

/// Who the conversation is counted for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunnelLabels {
    /// The agent's name.
    pub agent: String,
    /// The agent's calendar kind (`calcom`, `builtin`, `demo`).
    pub calendar: &'static str,
    /// How the conversation reached slotline.
    pub way_in: WayIn,
}

impl FunnelLabels {
    /// The labels as the metrics catalogue takes them.
    pub fn series(&self) -> metrics::ConversationLabels<'_> {
        metrics::ConversationLabels { agent: &self.agent, calendar: self.calendar, way_in: self.way_in.as_str() }
    }
}

/// Exports the funnel and outcome series of an agent at zero, every way in, so that rates and ratios
/// over them count the agent's first conversations too (a series that first appears at 1 hides that 1
/// from `rate()`). Runs at start for every agent, when an agent is created or changed, and when a
/// conversation starts.
pub fn agent_series(agent: &str, calendar: &'static str) {
    let steps = Step::ALL.map(Step::as_str);
    for way_in in WAYS_IN {
        let labels = metrics::ConversationLabels { agent, calendar, way_in: way_in.as_str() };
        metrics::conversation_series(labels, &steps, &OUTCOMES);
    }
}

/// One conversation's progress through the funnel.
#[derive(Debug)]
pub struct Funnel {
    labels: FunnelLabels,
    reached: Option<Step>,
    slot_taken: bool,
    cause: Option<EndCause>,
}

impl Funnel {
    /// A conversation that reached no step yet.
    pub fn new(labels: FunnelLabels) -> Self {
        Self { labels, reached: None, slot_taken: false, cause: None }
    }

    /// The labels.
    pub fn labels(&self) -> &FunnelLabels {
        &self.labels
    }

    /// The furthest step reached.
    pub fn reached(&self) -> Option<Step> {
        self.reached
    }

    /// Reaches `step` and every step before it; counts only the steps not reached before.
    pub fn reach(&mut self, step: Step) {
        for s in Step::ALL.into_iter().filter(|s| *s <= step && self.reached.is_none_or(|r| *s > r)) {
            metrics::funnel_step(self.labels.series(), s.as_str());
        }
        self.reached = Some(self.reached.map_or(step, |r| r.max(step)));
    }

    /// A booking attempt found its slot taken.
    pub fn slot_taken(&mut self) {
        self.slot_taken = true;
    }

    /// The dialog engine is ending the conversation for `cause`.
    pub fn ending(&mut self, cause: EndCause) {
        self.cause = Some(cause);
    }

    /// The outcome label of a conversation that achieved `achieved`, ended by the agent (`true`) or by
    /// the caller hanging up (`false`).
    pub fn outcome(&self, achieved: Outcome, agent_ended: bool) -> &'static str {
        match achieved {
            Outcome::Booked => "booked",
            Outcome::Rescheduled => "rescheduled",
            Outcome::Cancelled => "cancelled",
            _ if self.slot_taken => "slot_taken",
            Outcome::CalendarError => "calendar_error",
            Outcome::NoSlots => "no_slots",
            Outcome::Abandoned if !agent_ended => "caller_hung_up",
            Outcome::Abandoned => match self.cause {
                Some(EndCause::NotUnderstood) => "not_understood",
                Some(EndCause::NoInput) => "no_input",
                None => "transferred_or_other",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn funnel() -> Funnel {
        Funnel::new(FunnelLabels { agent: "Unit".into(), calendar: "demo", way_in: WayIn::Chat })
    }

    #[test]
    fn a_step_reaches_the_steps_before_it_and_never_goes_back() {
        let mut f = funnel();
        f.reach(Step::Answered);
        f.reach(Step::Chosen);
        assert_eq!(f.reached(), Some(Step::Chosen));
        f.reach(Step::Intent);
        assert_eq!(f.reached(), Some(Step::Chosen), "a later turn back at an earlier step keeps the furthest");
    }

    #[test]
    fn every_conversation_has_exactly_one_outcome() {
        let mut f = funnel();
        assert_eq!(f.outcome(Outcome::Abandoned, false), "caller_hung_up");
        assert_eq!(f.outcome(Outcome::Abandoned, true), "transferred_or_other");
        assert_eq!(f.outcome(Outcome::NoSlots, true), "no_slots");
        assert_eq!(f.outcome(Outcome::CalendarError, false), "calendar_error");
        f.ending(EndCause::NoInput);
        assert_eq!(f.outcome(Outcome::Abandoned, true), "no_input");
        f.ending(EndCause::NotUnderstood);
        assert_eq!(f.outcome(Outcome::Abandoned, true), "not_understood");
        f.slot_taken();
        assert_eq!(f.outcome(Outcome::CalendarError, false), "slot_taken", "the taken slot is why it failed");
        assert_eq!(f.outcome(Outcome::Booked, true), "booked", "an alternative slot was booked after all");
        assert_eq!(f.outcome(Outcome::Cancelled, false), "cancelled");
        assert_eq!(f.outcome(Outcome::Rescheduled, false), "rescheduled");
        for achieved in [Outcome::Booked, Outcome::NoSlots, Outcome::Abandoned] {
            assert!(OUTCOMES.contains(&f.outcome(achieved, true)));
        }
    }
}
