//! The tools every dialog engine uses, their JSON schemas (OpenAI function-calling format) and the
//! [`Toolbox`] that runs them against the agent's calendar for one conversation.
//!
//! Tool results are short texts an engine can speak or feed back to a model; calendar failures are the
//! calendar's own clear sentences ("No appointment slots available", "Calendar integration is not
//! available", a taken slot with its nearest alternatives). The toolbox also keeps what the conversation
//! achieved ([`Outcome`]) and its booking [`Funnel`] so every engine reports them the same way.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::funnel::{EndCause, Funnel, FunnelLabels, Step};
use super::speak;
use crate::calendar::{Attendee, AttendeeQuery, Booking, BookingRequest, Calendar, CalendarError, Clock, Slot, SlotId};
use crate::call::WayIn;
use crate::metrics;

/// `list_available_slots(range_days)`.
pub const LIST_AVAILABLE_SLOTS: &str = "list_available_slots";
/// `schedule_appointment(slot_id, attendee_name, attendee_email?, attendee_phone?, notes?)`.
pub const SCHEDULE_APPOINTMENT: &str = "schedule_appointment";
/// `find_appointments()`.
pub const FIND_APPOINTMENTS: &str = "find_appointments";
/// `cancel_appointment(booking_id, reason?)`.
pub const CANCEL_APPOINTMENT: &str = "cancel_appointment";
/// `reschedule_appointment(booking_id, slot_id)`.
pub const RESCHEDULE_APPOINTMENT: &str = "reschedule_appointment";
/// `get_current_time()`.
pub const GET_CURRENT_TIME: &str = "get_current_time";

/// Longest range `list_available_slots` accepts, in days.
pub const MAX_RANGE_DAYS: u32 = 90;
/// Slots a listing result names at most (the rest are counted).
const LISTED_SLOTS: usize = 12;
/// Said while a slow slot listing runs.
pub const CHECKING_SLOTS: &str = "Let me check available slots for you.";

/// One tool invocation with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCall {
    /// Free slots from now over the next `range_days` days.
    ListAvailableSlots {
        /// 1 to [`MAX_RANGE_DAYS`].
        range_days: u32,
    },
    /// Books a slot from a listing.
    ScheduleAppointment {
        /// Slot id from `list_available_slots`.
        slot_id: String,
        /// Attendee's full name.
        attendee_name: String,
        /// Attendee email.
        attendee_email: Option<String>,
        /// Attendee phone (E.164 or any common notation).
        attendee_phone: Option<String>,
        /// Free text for the calendar.
        notes: Option<String>,
    },
    /// The caller's upcoming bookings (by caller id, or an email).
    FindAppointments {
        /// An email the caller gave.
        attendee_email: Option<String>,
    },
    /// Cancels a booking.
    CancelAppointment {
        /// Booking id from `find_appointments`.
        booking_id: String,
        /// Why.
        reason: Option<String>,
    },
    /// Moves a booking to another slot.
    RescheduleAppointment {
        /// Booking id from `find_appointments`.
        booking_id: String,
        /// New slot id from `list_available_slots`.
        slot_id: String,
    },
    /// Now, in the agent's time zone.
    GetCurrentTime,
}

/// A tool call that cannot be run as given (unknown name, missing or mistyped argument).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// No tool has this name.
    #[error("unknown tool `{0}`")]
    UnknownTool(String),
    /// An argument is missing or has the wrong type.
    #[error("argument `{field}` of {tool}: {message}")]
    BadArgument {
        /// The tool.
        tool: &'static str,
        /// The argument.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
}

impl ToolCall {
    /// The tool's name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ListAvailableSlots { .. } => LIST_AVAILABLE_SLOTS,
            Self::ScheduleAppointment { .. } => SCHEDULE_APPOINTMENT,
            Self::FindAppointments { .. } => FIND_APPOINTMENTS,
            Self::CancelAppointment { .. } => CANCEL_APPOINTMENT,
            Self::RescheduleAppointment { .. } => RESCHEDULE_APPOINTMENT,
            Self::GetCurrentTime => GET_CURRENT_TIME,
        }
    }

    /// Whether the call books, cancels or moves (what a dialog engine cannot take back).
    pub fn changes_calendar(&self) -> bool {
        matches!(
            self,
            Self::ScheduleAppointment { .. } | Self::CancelAppointment { .. } | Self::RescheduleAppointment { .. }
        )
    }

    /// The arguments as a JSON object (what a model would send).
    pub fn arguments(&self) -> Value {
        let mut args = match self {
            Self::ListAvailableSlots { range_days } => json!({ "range_days": range_days }),
            Self::ScheduleAppointment { slot_id, attendee_name, attendee_email, attendee_phone, notes } => json!({
                "slot_id": slot_id, "attendee_name": attendee_name, "attendee_email": attendee_email,
                "attendee_phone": attendee_phone, "notes": notes,
            }),
            Self::FindAppointments { attendee_email } => json!({ "attendee_email": attendee_email }),
            Self::CancelAppointment { booking_id, reason } => json!({ "booking_id": booking_id, "reason": reason }),
            Self::RescheduleAppointment { booking_id, slot_id } => {
                json!({ "booking_id": booking_id, "slot_id": slot_id })
            }
            Self::GetCurrentTime => json!({}),
        };
        if let Some(map) = args.as_object_mut() {
            map.retain(|_, v| !v.is_null());
        }
        args
    }

    /// Reads a call from a tool name and its JSON arguments.
    pub fn parse(name: &str, arguments: &Value) -> Result<Self, ToolError> {
        let text = |tool, field, required: bool| -> Result<Option<String>, ToolError> {
            match arguments.get(field) {
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => Err(ToolError::BadArgument { tool, field, message: "is required" }),
                Some(Value::String(s)) if s.trim().is_empty() && required => {
                    Err(ToolError::BadArgument { tool, field, message: "must not be empty" })
                }
                Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
                Some(_) => Err(ToolError::BadArgument { tool, field, message: "must be a string" }),
            }
        };
        let required = |tool, field| text(tool, field, true).map(Option::unwrap_or_default);
        match name {
            LIST_AVAILABLE_SLOTS => {
                let tool = LIST_AVAILABLE_SLOTS;
                let range_days = match arguments.get("range_days") {
                    None | Some(Value::Null) => 14,
                    Some(v) => v
                        .as_u64()
                        .or_else(|| v.as_f64().filter(|f| f.fract() == 0.0 && *f >= 0.0).map(|f| f as u64))
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                        .filter(|d| (1..=u64::from(MAX_RANGE_DAYS)).contains(d))
                        .ok_or(ToolError::BadArgument {
                            tool,
                            field: "range_days",
                            message: "must be a whole number of days from 1 to 90",
                        })? as u32,
                };
                Ok(Self::ListAvailableSlots { range_days })
            }
            SCHEDULE_APPOINTMENT => {
                let tool = SCHEDULE_APPOINTMENT;
                Ok(Self::ScheduleAppointment {
                    slot_id: required(tool, "slot_id")?,
                    attendee_name: required(tool, "attendee_name")?,
                    attendee_email: text(tool, "attendee_email", false)?,
                    attendee_phone: text(tool, "attendee_phone", false)?,
                    notes: text(tool, "notes", false)?,
                })
            }
            FIND_APPOINTMENTS => {
                Ok(Self::FindAppointments { attendee_email: text(FIND_APPOINTMENTS, "attendee_email", false)? })
            }
            CANCEL_APPOINTMENT => Ok(Self::CancelAppointment {
                booking_id: required(CANCEL_APPOINTMENT, "booking_id")?,
                reason: text(CANCEL_APPOINTMENT, "reason", false)?,
            }),
            RESCHEDULE_APPOINTMENT => Ok(Self::RescheduleAppointment {
                booking_id: required(RESCHEDULE_APPOINTMENT, "booking_id")?,
                slot_id: required(RESCHEDULE_APPOINTMENT, "slot_id")?,
            }),
            GET_CURRENT_TIME => Ok(Self::GetCurrentTime),
            other => Err(ToolError::UnknownTool(other.to_string())),
        }
    }

    /// `name(arg=value, ...)` for logs and `# tool:` lines (attendee details included, never secrets).
    pub fn display(&self) -> String {
        let args = self.arguments();
        let parts: Vec<String> =
            args.as_object().map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect()).unwrap_or_default();
        format!("{}({})", self.name(), parts.join(", "))
    }
}

/// The tools in the OpenAI chat-completions `tools` format.
pub fn definitions() -> Value {
    let string = |description: &str| json!({"type": "string", "description": description});
    let function = |name: &str, description: &str, properties: Value, required: &[&str]| {
        json!({"type": "function", "function": {
            "name": name, "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required, "additionalProperties": false},
        }})
    };
    json!([
        function(
            LIST_AVAILABLE_SLOTS,
            "List free appointment slots from now over the next range_days days. Returns slot ids with their local times.",
            json!({"range_days": {"type": "integer", "minimum": 1, "maximum": MAX_RANGE_DAYS,
                                   "description": "How many days ahead to look (default 14)."}}),
            &[],
        ),
        function(
            SCHEDULE_APPOINTMENT,
            "Book a slot from list_available_slots for the caller. Read the details back and get a yes first.",
            json!({
                "slot_id": string("A slot id returned by list_available_slots."),
                "attendee_name": string("The caller's full name."),
                "attendee_email": string("Email for the confirmation, if the caller gave one."),
                "attendee_phone": string("Phone number, if the caller prefers it to email."),
                "notes": string("Anything the caller wants the host to know."),
            }),
            &["slot_id", "attendee_name"],
        ),
        function(
            FIND_APPOINTMENTS,
            "The caller's upcoming appointments, found by the number they call from or an email they give.",
            json!({"attendee_email": string("An email the caller gave (optional).")}),
            &[],
        ),
        function(
            CANCEL_APPOINTMENT,
            "Cancel one of the caller's appointments. Confirm with the caller first.",
            json!({"booking_id": string("A booking id from find_appointments."), "reason": string("Why, if given.")}),
            &["booking_id"],
        ),
        function(
            RESCHEDULE_APPOINTMENT,
            "Move one of the caller's appointments to another free slot. Confirm with the caller first.",
            json!({"booking_id": string("A booking id from find_appointments."),
                   "slot_id": string("The new slot id from list_available_slots.")}),
            &["booking_id", "slot_id"],
        ),
        function(GET_CURRENT_TIME, "The current date and time in the agent's time zone.", json!({}), &[]),
    ])
}

/// What a tool produced, for engines that need more than the text (one per tool call).
#[derive(Debug, Clone)]
#[allow(clippy::large_enum_variant)]
pub enum ToolData {
    /// Nothing beyond the text.
    None,
    /// Free slots, soonest first.
    Slots(Vec<Slot>),
    /// A booking made, cancelled or moved.
    Booking(Booking),
    /// The caller's upcoming bookings.
    Bookings(Vec<Booking>),
    /// The slot was taken; the nearest free ones.
    Taken(Vec<Slot>),
    /// Now, in the agent's time zone.
    Now(DateTime<Tz>),
}

/// The result of one tool call.
#[derive(Debug, Clone)]
pub struct ToolResult {
    /// Short text for the caller or the model.
    pub text: String,
    /// `ok`, or the failure: `no_slots`, `slot_taken`, `invalid_input`, `calendar_error`, `not_configured`.
    pub outcome: &'static str,
    /// Structured result.
    pub data: ToolData,
}

impl ToolResult {
    /// `true` for `ok`.
    pub fn is_ok(&self) -> bool {
        self.outcome == "ok"
    }
}

/// A tool call and what it returned, as an engine reports it.
#[derive(Debug, Clone)]
pub struct ToolCallRecord {
    /// The call.
    pub call: ToolCall,
    /// Its outcome label (see [`ToolResult::outcome`]).
    pub outcome: &'static str,
    /// Its text result.
    pub result: String,
}

/// What a conversation achieved, for the `slotline_conversations_total{outcome}` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    /// Nothing was done.
    Abandoned,
    /// The caller heard "No appointment slots available".
    NoSlots,
    /// A calendar call failed.
    CalendarError,
    /// A booking was cancelled.
    Cancelled,
    /// A booking was moved.
    Rescheduled,
    /// A booking was made.
    Booked,
}

impl Outcome {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Abandoned => "abandoned",
            Self::NoSlots => "no_slots",
            Self::CalendarError => "calendar_error",
            Self::Cancelled => "cancelled",
            Self::Rescheduled => "rescheduled",
            Self::Booked => "booked",
        }
    }
}

/// Everything a toolbox needs to know about its conversation.
#[derive(Clone)]
pub struct ToolContext {
    /// Call or chat id; bookings carry it, idempotency keys derive from it.
    pub call_id: String,
    /// The agent's name (logs).
    pub agent_name: String,
    /// The agent's time zone.
    pub timezone: Tz,
    /// Caller id, E.164, when known.
    pub caller: Option<String>,
    /// The clock.
    pub clock: Arc<dyn Clock>,
}

/// Runs tools for one conversation.
pub struct Toolbox {
    context: ToolContext,
    calendar: Option<Arc<dyn Calendar>>,
    /// Said instead of running a calendar tool when the agent has no usable calendar.
    unavailable: String,
    interim: Option<(mpsc::UnboundedSender<String>, Duration)>,
    state: Mutex<ToolboxState>,
}

struct ToolboxState {
    outcome: Option<Outcome>,
    emails: Vec<String>,
    funnel: Funnel,
}

impl Toolbox {
    /// A toolbox over `calendar`, or over none: then every calendar tool answers `unavailable`
    /// ("Calendar integration is not available", or the calendar's initialisation error).
    pub fn new(context: ToolContext, calendar: Result<Arc<dyn Calendar>, CalendarError>) -> Self {
        let (calendar, unavailable) = match calendar {
            Ok(calendar) => (Some(calendar), String::new()),
            Err(e) => (None, e.to_string()),
        };
        let labels = FunnelLabels {
            agent: context.agent_name.clone(),
            calendar: calendar.as_ref().map_or("none", |c| c.kind().as_str()),
            way_in: WayIn::Chat,
        };
        let state = ToolboxState { outcome: None, emails: Vec::new(), funnel: Funnel::new(labels) };
        Self { context, calendar, unavailable, interim: None, state: Mutex::new(state) }
    }

    /// Counts the conversation's funnel under `labels` (the agent's configured calendar kind and the way
    /// in), rather than the defaults of [`Toolbox::new`] (the usable calendar's kind, `chat`).
    pub fn with_funnel(self, labels: FunnelLabels) -> Self {
        self.lock().funnel = Funnel::new(labels);
        self
    }

    /// The conversation reached `step` of the booking funnel (counted once per conversation).
    pub fn reached(&self, step: Step) {
        self.lock().funnel.reach(step);
    }

    /// The dialog engine ends the conversation for `cause`.
    pub fn ending(&self, cause: EndCause) {
        self.lock().funnel.ending(cause);
    }

    /// The funnel's labels.
    pub fn funnel_labels(&self) -> FunnelLabels {
        self.lock().funnel.labels().clone()
    }

    /// The one outcome label of the conversation, ended by the agent or by the caller hanging up.
    pub fn funnel_outcome(&self, agent_ended: bool) -> &'static str {
        let state = self.lock();
        state.funnel.outcome(state.outcome.unwrap_or(Outcome::Abandoned), agent_ended)
    }

    /// Sends [`CHECKING_SLOTS`] to `sink` when a slot listing takes longer than `after` (a voice call
    /// says it while the calendar answers).
    pub fn with_interim(mut self, sink: mpsc::UnboundedSender<String>, after: Duration) -> Self {
        self.interim = Some((sink, after));
        self
    }

    /// The conversation's context.
    pub fn context(&self) -> &ToolContext {
        &self.context
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        self.context.clock.now()
    }

    /// Why the agent has no usable calendar ("Calendar integration is not available"), if it has none.
    pub fn unavailable(&self) -> Option<&str> {
        self.calendar.is_none().then_some(self.unavailable.as_str())
    }

    /// What the conversation achieved so far.
    pub fn outcome(&self) -> Outcome {
        self.lock().outcome.unwrap_or(Outcome::Abandoned)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ToolboxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn note(&self, outcome: Outcome) {
        let mut state = self.lock();
        state.outcome = Some(state.outcome.map_or(outcome, |o| o.max(outcome)));
    }

    /// Runs one call, counts it (`slotline_tool_calls_total`) and remembers the conversation's outcome.
    pub async fn run(&self, call: &ToolCall) -> ToolResult {
        let started = Instant::now();
        let result = match &self.calendar {
            None if call != &ToolCall::GetCurrentTime => self.not_configured(),
            _ => self.dispatch(call).await,
        };
        metrics::tool_call(call.name(), result.outcome, started.elapsed());
        tracing::info!(call_id = %self.context.call_id, agent = %self.context.agent_name, tool = call.name(),
            outcome = result.outcome, "tool call");
        result
    }

    fn not_configured(&self) -> ToolResult {
        self.note(Outcome::CalendarError);
        ToolResult { text: self.unavailable.clone(), outcome: "not_configured", data: ToolData::None }
    }

    async fn dispatch(&self, call: &ToolCall) -> ToolResult {
        let Some(calendar) = self.calendar.as_ref() else { return self.not_configured() };
        match call {
            ToolCall::ListAvailableSlots { range_days } => self.list_slots(calendar.as_ref(), *range_days).await,
            ToolCall::ScheduleAppointment { slot_id, attendee_name, attendee_email, attendee_phone, notes } => {
                let attendee = (attendee_name.as_str(), attendee_email.as_deref(), attendee_phone.as_deref());
                self.schedule(calendar.as_ref(), slot_id, attendee, notes.as_ref()).await
            }
            ToolCall::FindAppointments { attendee_email } => {
                let email = attendee_email.clone().or_else(|| self.lock().emails.last().cloned());
                let phone = self.context.caller.clone();
                if email.is_none() && phone.is_none() {
                    let text = "I need the email address the appointment was booked with.".to_string();
                    return ToolResult { text, outcome: "invalid_input", data: ToolData::None };
                }
                let query = AttendeeQuery { email, phone, from: Some(self.now()) };
                match calendar.find_bookings(query).await {
                    Ok(bookings) => {
                        let text = self.describe_bookings(&bookings);
                        ToolResult { text, outcome: "ok", data: ToolData::Bookings(bookings) }
                    }
                    Err(e) => self.failure(e),
                }
            }
            ToolCall::CancelAppointment { booking_id, reason } => {
                let Some(id) = parse_booking_id(booking_id) else {
                    return self.failure(CalendarError::BookingNotFound);
                };
                match calendar.cancel(id, reason.clone()).await {
                    Ok(booking) => {
                        self.note(Outcome::Cancelled);
                        let when = speak::instant(booking.start_at, self.context.timezone, self.now());
                        let text = format!("Cancelled the appointment on {when}.");
                        ToolResult { text, outcome: "ok", data: ToolData::Booking(booking) }
                    }
                    Err(e) => self.failure(e),
                }
            }
            ToolCall::RescheduleAppointment { booking_id, slot_id } => {
                let Some(id) = parse_booking_id(booking_id) else {
                    return self.failure(CalendarError::BookingNotFound);
                };
                match calendar.reschedule(id, &SlotId::from(slot_id.as_str())).await {
                    Ok(booking) => {
                        self.note(Outcome::Rescheduled);
                        let when = speak::instant(booking.start_at, self.context.timezone, self.now());
                        let text = format!("Moved the appointment to {when} (booking id {}).", booking.id);
                        ToolResult { text, outcome: "ok", data: ToolData::Booking(booking) }
                    }
                    Err(e) => self.failure(e),
                }
            }
            ToolCall::GetCurrentTime => self.current_time(),
        }
    }

    /// Free slots over the next `range_days` days; says "checking" to the caller when the calendar is slow.
    async fn list_slots(&self, calendar: &dyn Calendar, range_days: u32) -> ToolResult {
        let listing = calendar.list_available_slots(range_days.clamp(1, MAX_RANGE_DAYS));
        let result = match &self.interim {
            Some((sink, after)) => {
                tokio::pin!(listing);
                tokio::select! {
                    result = &mut listing => result,
                    () = tokio::time::sleep(*after) => {
                        let _ = sink.send(CHECKING_SLOTS.to_string());
                        listing.await
                    }
                }
            }
            None => listing.await,
        };
        match result {
            Ok(slots) if slots.is_empty() => self.failure(CalendarError::NoSlots),
            Ok(slots) => ToolResult { text: self.describe_slots(&slots), outcome: "ok", data: ToolData::Slots(slots) },
            Err(e) => self.failure(e),
        }
    }

    /// Books a slot for the attendee (name, email, phone), keyed on the call so a retry books once.
    async fn schedule(
        &self,
        calendar: &dyn Calendar,
        slot_id: &str,
        attendee: (&str, Option<&str>, Option<&str>),
        notes: Option<&String>,
    ) -> ToolResult {
        let (attendee_name, attendee_email, attendee_phone) = attendee;
        let attendee = match Attendee::new(attendee_name, attendee_email, attendee_phone) {
            Ok(attendee) => attendee,
            Err(e) => return self.failure(e),
        };
        if let Some(email) = attendee_email {
            self.lock().emails.push(email.to_string());
        }
        self.reached(Step::Details);
        let request = BookingRequest {
            slot_id: SlotId::from(slot_id),
            attendee,
            notes: notes.cloned(),
            idempotency_key: Some(format!("{}:{slot_id}", self.context.call_id)),
            source_call_id: Some(self.context.call_id.clone()),
        };
        match calendar.schedule(request).await {
            Ok(booking) => {
                self.note(Outcome::Booked);
                self.reached(Step::Booked);
                let when = speak::instant(booking.start_at, self.context.timezone, self.now());
                let text = format!("Booked {when} for {} (booking id {}).", booking.attendee_name, booking.id);
                ToolResult { text, outcome: "ok", data: ToolData::Booking(booking) }
            }
            Err(e) => self.failure(e),
        }
    }

    /// The date and time now, in the agent's time zone.
    fn current_time(&self) -> ToolResult {
        let now = self.now().with_timezone(&self.context.timezone);
        let text = format!(
            "It is {}, {} {} {}, {} in {}.",
            speak::weekday_name(chrono::Datelike::weekday(&now)),
            speak::month_name(chrono::Datelike::month(&now)),
            speak::ordinal(chrono::Datelike::day(&now)),
            chrono::Datelike::year(&now),
            speak::time(now.time()),
            self.context.timezone.name(),
        );
        ToolResult { text, outcome: "ok", data: ToolData::Now(now) }
    }

    fn failure(&self, error: CalendarError) -> ToolResult {
        let outcome = match &error {
            CalendarError::NoSlots => {
                self.note(Outcome::NoSlots);
                "no_slots"
            }
            CalendarError::SlotTaken { .. } => {
                self.lock().funnel.slot_taken();
                "slot_taken"
            }
            CalendarError::UnknownSlot(_)
            | CalendarError::InvalidAttendee { .. }
            | CalendarError::BookingNotFound
            | CalendarError::NotActive => "invalid_input",
            CalendarError::NotConfigured | CalendarError::InitFailed(_) => {
                self.note(Outcome::CalendarError);
                "not_configured"
            }
            CalendarError::Unavailable(_) | CalendarError::RateLimited { .. } | CalendarError::Storage(_) => {
                self.note(Outcome::CalendarError);
                "calendar_error"
            }
        };
        match error {
            CalendarError::SlotTaken { alternatives } => {
                let text = if alternatives.is_empty() {
                    "That time is no longer available, and nothing else is free soon.".to_string()
                } else {
                    format!(
                        "That time is no longer available. The nearest free slots: {}",
                        self.describe_slot_ids(&alternatives)
                    )
                };
                ToolResult { text, outcome, data: ToolData::Taken(alternatives) }
            }
            other => ToolResult { text: other.to_string(), outcome, data: ToolData::None },
        }
    }

    fn describe_slot_ids(&self, slots: &[Slot]) -> String {
        let now = self.now();
        let named: Vec<String> =
            slots.iter().take(LISTED_SLOTS).map(|s| format!("{} = {}", s.id, speak::slot(s, now))).collect();
        let mut text = named.join("; ");
        if slots.len() > LISTED_SLOTS {
            text.push_str(&format!("; and {} more", slots.len() - LISTED_SLOTS));
        }
        text
    }

    fn describe_slots(&self, slots: &[Slot]) -> String {
        format!("Free slots ({}): {}.", self.context.timezone.name(), self.describe_slot_ids(slots))
    }

    fn describe_bookings(&self, bookings: &[Booking]) -> String {
        if bookings.is_empty() {
            return "No upcoming appointments found.".to_string();
        }
        let now = self.now();
        let items: Vec<String> = bookings
            .iter()
            .map(|b| {
                format!("{} = {} for {}", b.id, speak::instant(b.start_at, self.context.timezone, now), b.attendee_name)
            })
            .collect();
        format!("Upcoming appointments: {}.", items.join("; "))
    }
}

fn parse_booking_id(text: &str) -> Option<Uuid> {
    Uuid::parse_str(text.trim()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_round_trip_through_json_arguments() {
        let calls = [
            ToolCall::ListAvailableSlots { range_days: 7 },
            ToolCall::ScheduleAppointment {
                slot_id: "ST_abc".into(),
                attendee_name: "Jane Doe".into(),
                attendee_email: Some("jane@example.com".into()),
                attendee_phone: None,
                notes: None,
            },
            ToolCall::FindAppointments { attendee_email: None },
            ToolCall::CancelAppointment { booking_id: "b".into(), reason: Some("sick".into()) },
            ToolCall::RescheduleAppointment { booking_id: "b".into(), slot_id: "ST_x".into() },
            ToolCall::GetCurrentTime,
        ];
        for call in calls {
            assert_eq!(ToolCall::parse(call.name(), &call.arguments()), Ok(call.clone()), "{}", call.display());
        }
        let names: Vec<String> = definitions()
            .as_array()
            .map(|a| a.iter().filter_map(|d| d["function"]["name"].as_str().map(String::from)).collect())
            .unwrap_or_default();
        assert_eq!(names.len(), 6);
    }

    #[test]
    fn bad_arguments_name_the_field() {
        let err = ToolCall::parse(SCHEDULE_APPOINTMENT, &json!({"slot_id": "ST_a"})).unwrap_err();
        assert!(err.to_string().contains("attendee_name"), "{err}");
        let err = ToolCall::parse(LIST_AVAILABLE_SLOTS, &json!({"range_days": 400})).unwrap_err();
        assert!(err.to_string().contains("range_days"), "{err}");
        assert_eq!(
            ToolCall::parse(LIST_AVAILABLE_SLOTS, &json!({"range_days": "5"})),
            Ok(ToolCall::ListAvailableSlots { range_days: 5 })
        );
        assert_eq!(
            ToolCall::parse(LIST_AVAILABLE_SLOTS, &json!({})),
            Ok(ToolCall::ListAvailableSlots { range_days: 14 })
        );
        assert!(matches!(ToolCall::parse("rm_rf", &json!({})), Err(ToolError::UnknownTool(_))));
    }
}
