//! A calendar slotline keeps in its own database (the built-in and demo calendars share this).
//!
//! Availability comes from an [`Availability`] (rules or seeded randomness) minus the busy ranges of
//! confirmed bookings; booking writes through the [`ledger`](super::ledger), where the database refuses
//! overlapping busy ranges atomically (exclusion constraint / trigger), so two callers can never get
//! the same time.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::{
    ledger, AttendeeQuery, Booking, BookingRequest, Calendar, CalendarError, CalendarKind, Clock, Slot, SlotId,
};
use crate::storage::{BusyRange, Store, StoreError};

/// Where free time comes from.
pub trait Availability: Send + Sync {
    /// Length of every slot.
    fn slot_minutes(&self) -> u16;
    /// Slot starts the rules offer in `[from, to)`, ignoring bookings, soonest first.
    fn candidates(&self, from: DateTime<Utc>, to: DateTime<Utc>, now: DateTime<Utc>) -> Vec<DateTime<Utc>>;
    /// The time a booking at `[start, end)` keeps busy (buffers included).
    fn busy_range(&self, start: DateTime<Utc>, end: DateTime<Utc>) -> BusyRange {
        BusyRange { from: start, until: end }
    }
}

/// A calendar in slotline's database.
pub struct LocalCalendar<A> {
    agent_id: Uuid,
    kind: CalendarKind,
    timezone: Tz,
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    availability: A,
}

impl<A: Availability> LocalCalendar<A> {
    /// A calendar of `kind` for an agent.
    pub fn new(
        agent_id: Uuid,
        kind: CalendarKind,
        timezone: Tz,
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        availability: A,
    ) -> Self {
        Self { agent_id, kind, timezone, store, clock, availability }
    }

    async fn free_slots(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Vec<Slot>, CalendarError> {
        let now = self.clock.now();
        let minutes = self.availability.slot_minutes();
        let candidates = self.availability.candidates(from, to, now);
        let (Some(first), Some(last)) = (candidates.first(), candidates.last()) else { return Ok(Vec::new()) };
        let length = Duration::minutes(i64::from(minutes));
        let window_from = self.availability.busy_range(*first, *first + length).from;
        let window_to = self.availability.busy_range(*last, *last + length).until;
        let busy = self.store.busy_ranges(self.agent_id, window_from, window_to).await?;
        Ok(candidates
            .into_iter()
            .filter(|start| {
                let mine = self.availability.busy_range(*start, *start + length);
                !busy.iter().any(|b| b.from < mine.until && b.until > mine.from)
            })
            .map(|start| Slot::new(self.agent_id, start, minutes, self.timezone))
            .collect())
    }

    /// The slot an id names, if the rules still offer it (bookings aside).
    fn offered(&self, slot_id: &SlotId) -> Result<(DateTime<Utc>, DateTime<Utc>), CalendarError> {
        let unknown = || CalendarError::UnknownSlot(slot_id.to_string());
        let (start, minutes) = slot_id.decode(self.agent_id).ok_or_else(unknown)?;
        if minutes != self.availability.slot_minutes() {
            return Err(unknown());
        }
        let end = start + Duration::minutes(i64::from(minutes));
        let offered = self.availability.candidates(start, start + Duration::minutes(1), self.clock.now());
        if offered.first() != Some(&start) {
            return Err(unknown());
        }
        Ok((start, end))
    }

    async fn taken(&self, wanted: DateTime<Utc>) -> CalendarError {
        let from = wanted - Duration::days(3);
        let free = self.free_slots(from.max(self.clock.now()), wanted + Duration::days(7)).await.unwrap_or_default();
        CalendarError::SlotTaken { alternatives: ledger::nearest(free, wanted) }
    }
}

#[async_trait]
impl<A: Availability + 'static> Calendar for LocalCalendar<A> {
    fn kind(&self) -> CalendarKind {
        self.kind
    }

    fn timezone(&self) -> Tz {
        self.timezone
    }

    async fn list_available_slots(&self, range_days: u32) -> Result<Vec<Slot>, CalendarError> {
        let now = self.clock.now();
        let slots = self.free_slots(now, now + Duration::days(i64::from(range_days.max(1)))).await?;
        if slots.is_empty() {
            return Err(CalendarError::NoSlots);
        }
        Ok(slots)
    }

    async fn schedule(&self, request: BookingRequest) -> Result<Booking, CalendarError> {
        if let Some(done) = ledger::replay(&self.store, self.agent_id, &request).await? {
            return Ok(done);
        }
        let (start, end) = self.offered(&request.slot_id)?;
        let booking = ledger::new_booking(self.agent_id, self.kind, start, end, &request.attendee, &request);
        match ledger::record(&self.store, &booking, self.availability.busy_range(start, end)).await {
            Err(CalendarError::Storage(StoreError::SlotTaken)) => Err(self.taken(start).await),
            other => other,
        }
    }

    async fn cancel(&self, booking_id: Uuid, reason: Option<String>) -> Result<Booking, CalendarError> {
        ledger::active_booking(&self.store, self.agent_id, booking_id).await?;
        self.store.close_booking(booking_id, "cancelled", reason.as_deref()).await?.ok_or(CalendarError::NotActive)
    }

    async fn reschedule(&self, booking_id: Uuid, slot_id: &SlotId) -> Result<Booking, CalendarError> {
        let old = ledger::active_booking(&self.store, self.agent_id, booking_id).await?;
        let (start, end) = self.offered(slot_id)?;
        let mut new = old.clone();
        let now = crate::storage::now();
        new.id = Uuid::new_v4();
        new.start_at = start;
        new.end_at = end;
        new.rescheduled_from = Some(old.id);
        new.idempotency_key = None;
        new.created_at = now;
        new.updated_at = now;
        match self.store.reschedule_booking(old.id, &new, self.availability.busy_range(start, end)).await {
            Ok(true) => Ok(new),
            Ok(false) => Err(CalendarError::NotActive),
            Err(StoreError::SlotTaken) => Err(self.taken(start).await),
            Err(e) => Err(e.into()),
        }
    }

    async fn find_bookings(&self, query: AttendeeQuery) -> Result<Vec<Booking>, CalendarError> {
        let from = query.from.unwrap_or_else(|| self.clock.now());
        Ok(self
            .store
            .find_bookings_by_attendee(self.agent_id, query.email.as_deref(), query.phone.as_deref(), from)
            .await?)
    }
}

/// The local dates (in `tz`) that `[from, to)` touches.
pub fn local_dates(from: DateTime<Utc>, to: DateTime<Utc>, tz: Tz) -> impl Iterator<Item = chrono::NaiveDate> {
    let first = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    first.iter_days().take_while(move |d| *d <= last)
}

/// A local wall-clock time as an instant: times skipped by a DST change do not exist (`None`); times that
/// happen twice take the first occurrence.
pub fn local_to_utc(tz: Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    use chrono::TimeZone as _;
    tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc))
}
