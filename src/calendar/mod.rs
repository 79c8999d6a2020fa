//! Calendars an agent books into, behind one [`Calendar`] trait.
//!
//! - [`slot`]: [`Slot`] and its short, opaque, stable [`SlotId`];
//! - [`attendee`]: who a booking is for, validated once;
//! - [`ledger`]: the `bookings` table as every calendar writes it;
//! - [`local`]: a calendar kept in slotline's database (built-in and demo share it);
//! - [`demo`]: reproducible random availability, 30-minute slots 09:00–18:00 on weekdays;
//! - [`builtin`]: working hours, blocked ranges, buffers, notice and horizon in the agent's time zone;
//! - [`calcom`]: Cal.com API v2 with the agent's own key;
//! - [`registry`]: builds (and caches) the calendar of an agent from its configuration.
//!
//! All instants are UTC inside; every slot is spoken and shown in the agent's IANA time zone (chrono-tz).
//! Errors carry the sentences callers hear ("No appointment slots available", ...).

pub mod attendee;
pub mod builtin;
pub mod calcom;
pub mod demo;
pub mod ledger;
pub mod local;
pub mod registry;
pub mod slot;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

pub use attendee::Attendee;
pub use registry::CalendarRegistry;
pub use slot::{Slot, SlotId};

use crate::storage::{BookingRecord, StoreError};

/// Associated data that binds a sealed Cal.com API key to its agent (see `storage::crypto`).
pub fn calcom_key_context(agent_id: Uuid) -> String {
    format!("agent:{agent_id}:calcom_api_key")
}

/// Associated data that binds a sealed Cal.com webhook secret to its agent.
pub fn calcom_webhook_context(agent_id: Uuid) -> String {
    format!("agent:{agent_id}:calcom_webhook_secret")
}

/// Which calendar an agent books into; stored with the agent, so the storage layer defines it.
pub use crate::storage::CalendarKind;

/// A booking, as recorded in slotline's `bookings` table whatever the calendar.
pub type Booking = BookingRecord;

/// What to book.
#[derive(Debug, Clone)]
pub struct BookingRequest {
    /// A slot id from a listing.
    pub slot_id: SlotId,
    /// Who.
    pub attendee: Attendee,
    /// Free text passed to the calendar.
    pub notes: Option<String>,
    /// Makes retries safe: the same key books once and returns the same booking.
    pub idempotency_key: Option<String>,
    /// The call or chat that books.
    pub source_call_id: Option<String>,
}

/// Whose bookings to find.
#[derive(Debug, Clone, Default)]
pub struct AttendeeQuery {
    /// Attendee email (case-insensitive).
    pub email: Option<String>,
    /// Attendee phone, E.164.
    pub phone: Option<String>,
    /// Only bookings starting at or after this instant (upcoming ones by default).
    pub from: Option<DateTime<Utc>>,
}

/// Why a calendar operation failed. `Display` is what a caller may hear.
#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    /// The agent has no usable calendar configuration.
    #[error("Calendar integration is not available")]
    NotConfigured,
    /// Cal.com refused the key, the user, or the event type cannot be found or created.
    #[error("Failed to initialize Cal.com calendar: {0}")]
    InitFailed(String),
    /// Nothing free in the requested range.
    #[error("No appointment slots available")]
    NoSlots,
    /// Someone else has the slot now; `alternatives` are the nearest free ones.
    #[error("That time is no longer available")]
    SlotTaken {
        /// Nearest free slots, soonest first.
        alternatives: Vec<Slot>,
    },
    /// The slot id was not made by this calendar, or its time has passed.
    #[error("That appointment time is not one I offered; please pick one from the list")]
    UnknownSlot(String),
    /// Name, email or phone is unusable.
    #[error("{message}")]
    InvalidAttendee {
        /// The attendee field at fault (`attendee_name`, `attendee_email`, `attendee_phone`).
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// No such booking for this agent.
    #[error("I could not find that booking")]
    BookingNotFound,
    /// The booking was already cancelled or moved.
    #[error("That booking was already cancelled")]
    NotActive,
    /// The calendar service failed or timed out.
    #[error("The calendar service is not responding right now")]
    Unavailable(String),
    /// The calendar service asks us to slow down.
    #[error("The calendar service is busy right now")]
    RateLimited {
        /// When to try again.
        retry_after: Duration,
    },
    /// slotline's own database failed.
    #[error("The booking system is having trouble right now")]
    Storage(#[from] StoreError),
}

impl CalendarError {
    /// The `outcome` label of booking metrics for this error.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::SlotTaken { .. } => "slot_taken",
            Self::NoSlots => "no_slots",
            Self::UnknownSlot(_) | Self::InvalidAttendee { .. } => "invalid_input",
            Self::BookingNotFound | Self::NotActive => "invalid_input",
            _ => "calendar_error",
        }
    }
}

/// A calendar. One per agent; built by [`CalendarRegistry`].
#[async_trait]
pub trait Calendar: Send + Sync {
    /// Which kind.
    fn kind(&self) -> CalendarKind;
    /// The agent's time zone (slots are spoken in it).
    fn timezone(&self) -> Tz;
    /// Free slots from now over the next `range_days` days, soonest first.
    async fn list_available_slots(&self, range_days: u32) -> Result<Vec<Slot>, CalendarError>;
    /// Books a slot.
    async fn schedule(&self, request: BookingRequest) -> Result<Booking, CalendarError>;
    /// Cancels a booking (by slotline booking id).
    async fn cancel(&self, booking_id: Uuid, reason: Option<String>) -> Result<Booking, CalendarError>;
    /// Moves a booking to another slot; returns the new booking (the old one becomes `rescheduled`).
    async fn reschedule(&self, booking_id: Uuid, slot_id: &SlotId) -> Result<Booking, CalendarError>;
    /// Upcoming bookings of an attendee.
    async fn find_bookings(&self, query: AttendeeQuery) -> Result<Vec<Booking>, CalendarError>;
}

/// The clock calendars read; tests pin it.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock pinned to one instant (tests, simulations).
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}
