//! Builds the [`Calendar`] of an agent from its stored configuration, caches it while the agent is
//! unchanged, and wraps it so every operation is measured ([`crate::metrics`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use uuid::Uuid;

use super::builtin::{BuiltinAvailability, Rules};
use super::calcom::api::{CalcomApi, Endpoint};
use super::calcom::limiter::RateLimiter;
use super::calcom::CalcomCalendar;
use super::demo::DemoAvailability;
use super::local::LocalCalendar;
use super::{
    calcom_key_context, AttendeeQuery, Booking, BookingRequest, Calendar, CalendarError, CalendarKind, Clock, Slot,
    SlotId,
};
use crate::config::{CalcomConfig, Secret};
use crate::metrics;
use crate::storage::crypto::MasterKey;
use crate::storage::{AgentRecord, Store};

/// A built calendar and the agent version (`updated_at`) it was built from.
type CachedCalendar = (DateTime<Utc>, Arc<dyn Calendar>);

/// Makes and keeps the calendars of agents.
pub struct CalendarRegistry {
    store: Arc<dyn Store>,
    master_key: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
    calcom: Endpoint,
    /// `calcom.api_key`: the key of Cal.com agents without their own.
    global_calcom_key: Option<Secret>,
    cache: Mutex<HashMap<Uuid, CachedCalendar>>,
}

impl CalendarRegistry {
    /// A registry reading agents' secrets with `master_key` and the time from `clock`.
    pub fn new(
        store: Arc<dyn Store>,
        master_key: Arc<MasterKey>,
        clock: Arc<dyn Clock>,
        calcom: &CalcomConfig,
    ) -> Self {
        let endpoint = Endpoint {
            base_url: calcom.base_url.clone(),
            timeout: Duration::from_millis(calcom.timeout_ms),
            http: reqwest::Client::builder()
                .user_agent(concat!("slotline/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            limiter: Arc::new(RateLimiter::new(calcom.requests_per_minute as usize, Duration::from_secs(60))),
        };
        Self {
            store,
            master_key,
            clock,
            calcom: endpoint,
            global_calcom_key: calcom.api_key.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// A global Cal.com key (`calcom.api_key`) is configured for agents without their own.
    pub fn has_global_calcom_key(&self) -> bool {
        self.global_calcom_key.is_some()
    }

    /// The clock calendars use.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The calendar of `agent` (built once per change of the agent).
    pub fn calendar(&self, agent: &AgentRecord) -> Result<Arc<dyn Calendar>, CalendarError> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((version, calendar)) = cache.get(&agent.id) {
            if *version == agent.updated_at {
                return Ok(calendar.clone());
            }
        }
        let calendar = self.build(agent)?;
        cache.insert(agent.id, (agent.updated_at, calendar.clone()));
        Ok(calendar)
    }

    fn build(&self, agent: &AgentRecord) -> Result<Arc<dyn Calendar>, CalendarError> {
        let timezone: Tz = agent.timezone.parse().map_err(|_| CalendarError::NotConfigured)?;
        let cal = &agent.calendar;
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let inner: Arc<dyn Calendar> = match cal.kind {
            CalendarKind::Demo => Arc::new(LocalCalendar::new(
                agent.id,
                CalendarKind::Demo,
                timezone,
                store,
                clock,
                DemoAvailability::new(agent.id, timezone),
            )),
            CalendarKind::Builtin => {
                let minutes = u16::try_from(cal.slot_minutes).map_err(|_| CalendarError::NotConfigured)?;
                let rules = cal.rules.as_deref().map(Rules::from_stored).transpose().map_err(|e| {
                    tracing::error!(agent = %agent.id, error = %e, "unreadable calendar rules");
                    CalendarError::NotConfigured
                })?;
                let availability = BuiltinAvailability::new(rules.unwrap_or_default(), minutes, timezone);
                Arc::new(LocalCalendar::new(agent.id, CalendarKind::Builtin, timezone, store, clock, availability))
            }
            CalendarKind::Calcom => {
                // The agent's own key wins over the global one.
                let key = match (&cal.calcom_api_key, &self.global_calcom_key) {
                    (Some(sealed), _) => {
                        let key = self.master_key.open(&calcom_key_context(agent.id), &sealed.sealed).map_err(|e| {
                            tracing::error!(agent_id = %agent.id, error = %e, "cannot open the agent's Cal.com key; was the master key changed?");
                            CalendarError::NotConfigured
                        })?;
                        Secret::new(String::from_utf8(key).map_err(|_| CalendarError::NotConfigured)?)
                    }
                    (None, Some(global)) => global.clone(),
                    (None, None) => return Err(CalendarError::NotConfigured),
                };
                let api = CalcomApi::new(self.calcom.clone(), key);
                Arc::new(CalcomCalendar::new(agent, timezone, api, store, clock)?)
            }
        };
        Ok(Arc::new(Measured { inner, agent: agent.name.clone() }))
    }
}

/// Records every operation of the calendar it wraps.
struct Measured {
    inner: Arc<dyn Calendar>,
    agent: String,
}

impl Measured {
    fn observe<T>(&self, operation: &'static str, started: Instant, result: &Result<T, CalendarError>) {
        let outcome = match result {
            Ok(_) => "success",
            Err(e) => e.outcome(),
        };
        let provider = self.inner.kind().as_str();
        metrics::calendar_request(provider, operation, outcome, started.elapsed());
        if let Err(e) = result {
            tracing::info!(agent = %self.agent, provider, operation, outcome, error = %e, detail = ?e, "calendar operation failed");
        }
    }
}

#[async_trait]
impl Calendar for Measured {
    fn kind(&self) -> CalendarKind {
        self.inner.kind()
    }

    fn timezone(&self) -> Tz {
        self.inner.timezone()
    }

    async fn list_available_slots(&self, range_days: u32) -> Result<Vec<Slot>, CalendarError> {
        let started = Instant::now();
        let result = self.inner.list_available_slots(range_days).await;
        self.observe("list_slots", started, &result);
        if let Err(CalendarError::NoSlots) = result {
            metrics::booking(&self.agent, self.kind().as_str(), "no_slots");
        }
        result
    }

    async fn schedule(&self, request: BookingRequest) -> Result<Booking, CalendarError> {
        let started = Instant::now();
        let result = self.inner.schedule(request).await;
        self.observe("schedule", started, &result);
        let outcome = result.as_ref().map_or_else(CalendarError::outcome, |_| "success");
        metrics::booking(&self.agent, self.kind().as_str(), outcome);
        result
    }

    async fn cancel(&self, booking_id: Uuid, reason: Option<String>) -> Result<Booking, CalendarError> {
        let started = Instant::now();
        let result = self.inner.cancel(booking_id, reason).await;
        self.observe("cancel", started, &result);
        let outcome = result.as_ref().map_or_else(CalendarError::outcome, |_| "success");
        metrics::cancellation(&self.agent, self.kind().as_str(), outcome);
        result
    }

    async fn reschedule(&self, booking_id: Uuid, slot_id: &SlotId) -> Result<Booking, CalendarError> {
        let started = Instant::now();
        let result = self.inner.reschedule(booking_id, slot_id).await;
        self.observe("reschedule", started, &result);
        let outcome = result.as_ref().map_or_else(CalendarError::outcome, |_| "success");
        metrics::reschedule(&self.agent, self.kind().as_str(), outcome);
        result
    }

    async fn find_bookings(&self, query: AttendeeQuery) -> Result<Vec<Booking>, CalendarError> {
        let started = Instant::now();
        let result = self.inner.find_bookings(query).await;
        self.observe("find_bookings", started, &result);
        result
    }
}
