//! The Cal.com API v2 over HTTP: each call with its exact `cal-api-version`, the bearer key, a timeout,
//! the client-side rate limit, and bounded retries with back-off for reads (429, 5xx, timeouts).
//! Writes are never retried blindly; [`super::CalcomCalendar`] decides what a failed write means.
//!
//! Contract: `../shared/calcom/api-v2-contract-notes.md` and Cal.com's `openapi-v2.json`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limiter::RateLimiter;
use crate::config::Secret;
use crate::metrics::{CALCOM_HTTP_REQUESTS_TOTAL, CALCOM_HTTP_REQUEST_DURATION_SECONDS};

/// `cal-api-version` of the slots endpoints.
pub const VERSION_SLOTS: &str = "2024-09-04";
/// `cal-api-version` of the bookings endpoints.
pub const VERSION_BOOKINGS: &str = "2024-08-13";
/// `cal-api-version` of the event types endpoints.
pub const VERSION_EVENT_TYPES: &str = "2024-06-14";
/// The exact text of Cal.com's 400 when the host is busy at that time.
pub const SLOT_TAKEN_MESSAGE: &str = "User either already has booking at this time or is not available";
/// Attempts of a read before giving up.
const READ_ATTEMPTS: u32 = 3;
/// First back-off; doubles on each retry.
const BACKOFF: Duration = Duration::from_millis(200);
/// Longest a call waits for the client-side limiter or a 429's reset before giving up.
const MAX_WAIT: Duration = Duration::from_secs(2);

/// Failures of one Cal.com call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401/403: the key was refused.
    #[error("Cal.com refused the API key ({0})")]
    Unauthorized(u16),
    /// 404, with Cal.com's message.
    #[error("Cal.com: not found: {0}")]
    NotFound(String),
    /// 400 with the "already has booking" text.
    #[error("Cal.com: the time is taken")]
    SlotTaken,
    /// Any other 400, with Cal.com's message.
    #[error("Cal.com rejected the request: {0}")]
    BadRequest(String),
    /// 429, or the client-side limit would be exceeded.
    #[error("Cal.com rate limit reached; retry in {0:?}")]
    RateLimited(Duration),
    /// No answer in time.
    #[error("Cal.com did not answer within {0:?}")]
    Timeout(Duration),
    /// 5xx, a connection failure, or an answer that is not the documented shape.
    #[error("Cal.com is unavailable: {0}")]
    Unavailable(String),
}

/// Connection settings shared by every agent.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// e.g. `https://api.cal.com` (no trailing `/v2`).
    pub base_url: String,
    /// Per-call timeout.
    pub timeout: Duration,
    /// Shared HTTP client.
    pub http: reqwest::Client,
    /// Shared per-key limiter.
    pub limiter: Arc<RateLimiter>,
}

/// A client for one API key.
#[derive(Debug, Clone)]
pub struct CalcomApi {
    endpoint: Endpoint,
    key: Secret,
}

/// `GET /v2/me` data.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// User id.
    pub id: i64,
    /// Username (event types are looked up under it).
    pub username: String,
    /// The user's time zone.
    pub time_zone: Option<String>,
}

/// An event type.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    /// Id.
    pub id: i64,
    /// Slug.
    pub slug: String,
    /// Default length.
    pub length_in_minutes: i64,
}

/// One free slot as `GET /v2/slots?format=range` returns it.
#[derive(Debug, Clone, Deserialize)]
pub struct RangeSlot {
    /// Start (offset-local when `timeZone` was given).
    pub start: DateTime<chrono::FixedOffset>,
    /// End.
    pub end: Option<DateTime<chrono::FixedOffset>>,
}

/// An attendee of a booking.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attendee {
    /// Name.
    pub name: String,
    /// Email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// IANA time zone.
    pub time_zone: String,
    /// E.164 phone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

/// `POST /v2/bookings` body (CreateBookingInput_2024_08_13).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateBooking {
    /// UTC ISO 8601 start.
    pub start: String,
    /// The event type.
    pub event_type_id: i64,
    /// Who.
    pub attendee: Attendee,
    /// Booking field answers (`notes`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub booking_fields_responses: Option<Value>,
    /// String metadata (≤ 50 keys).
    pub metadata: serde_json::Map<String, Value>,
}

/// A booking as Cal.com returns it (the fields slotline uses).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CalBooking {
    /// Numeric id.
    pub id: i64,
    /// Uid (what the other endpoints take).
    pub uid: String,
    /// `accepted`, `pending`, `cancelled`, `rejected`.
    pub status: String,
    /// Start.
    pub start: DateTime<Utc>,
    /// End.
    pub end: DateTime<Utc>,
    /// Attendees.
    #[serde(default)]
    pub attendees: Vec<Attendee>,
    /// Metadata given at creation.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// The booking this one replaced.
    #[serde(default)]
    pub rescheduled_from_uid: Option<String>,
}

#[derive(Deserialize)]
struct Envelope<T> {
    data: T,
}

/// UTC ISO 8601 as Cal.com expects (`2026-11-25T14:00:00.000Z`).
pub fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl CalcomApi {
    /// A client for `key`.
    pub fn new(endpoint: Endpoint, key: Secret) -> Self {
        Self { endpoint, key }
    }

    /// `GET /v2/me`.
    pub async fn me(&self) -> Result<Me, ApiError> {
        self.read("/v2/me", None, &[]).await
    }

    /// `GET /v2/event-types?username=&eventSlug=`.
    pub async fn event_types(&self, username: &str, slug: &str) -> Result<Vec<EventType>, ApiError> {
        self.read("/v2/event-types", Some(VERSION_EVENT_TYPES), &[("username", username), ("eventSlug", slug)]).await
    }

    /// `POST /v2/event-types`.
    pub async fn create_event_type(&self, title: &str, slug: &str, minutes: i64) -> Result<EventType, ApiError> {
        let body = serde_json::json!({"title": title, "slug": slug, "lengthInMinutes": minutes});
        self.write(Method::POST, "/v2/event-types", VERSION_EVENT_TYPES, &body).await
    }

    /// `GET /v2/slots?format=range` in `time_zone`, as `(start, end)` pairs in UTC.
    pub async fn slots(
        &self,
        event_type_id: i64,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        time_zone: &str,
    ) -> Result<Vec<(DateTime<Utc>, Option<DateTime<Utc>>)>, ApiError> {
        let id = event_type_id.to_string();
        let (start, end) = (iso(start), iso(end));
        let query = [
            ("eventTypeId", id.as_str()),
            ("start", start.as_str()),
            ("end", end.as_str()),
            ("timeZone", time_zone),
            ("format", "range"),
        ];
        let days: std::collections::BTreeMap<String, Vec<RangeSlot>> =
            self.read("/v2/slots", Some(VERSION_SLOTS), &query).await?;
        let mut slots: Vec<_> = days
            .into_values()
            .flatten()
            .map(|s| (s.start.with_timezone(&Utc), s.end.map(|e| e.with_timezone(&Utc))))
            .collect();
        slots.sort_by_key(|s| s.0);
        Ok(slots)
    }

    /// `POST /v2/bookings`.
    pub async fn create_booking(&self, body: &CreateBooking) -> Result<CalBooking, ApiError> {
        self.write(Method::POST, "/v2/bookings", VERSION_BOOKINGS, body).await
    }

    /// `GET /v2/bookings` for an event type between two instants, optionally for one attendee email.
    pub async fn bookings(
        &self,
        event_type_id: i64,
        after_start: DateTime<Utc>,
        before_end: DateTime<Utc>,
        attendee_email: Option<&str>,
    ) -> Result<Vec<CalBooking>, ApiError> {
        let id = event_type_id.to_string();
        let (after, before) = (iso(after_start), iso(before_end));
        let mut query =
            vec![("eventTypeId", id.as_str()), ("afterStart", after.as_str()), ("beforeEnd", before.as_str())];
        if let Some(email) = attendee_email {
            query.push(("attendeeEmail", email));
        }
        self.read("/v2/bookings", Some(VERSION_BOOKINGS), &query).await
    }

    /// `POST /v2/bookings/{uid}/cancel`.
    pub async fn cancel_booking(&self, uid: &str, reason: Option<&str>) -> Result<CalBooking, ApiError> {
        let mut body = serde_json::Map::new();
        if let Some(reason) = reason {
            body.insert("cancellationReason".into(), Value::String(reason.to_string()));
        }
        let path = format!("/v2/bookings/{}/cancel", encode_segment(uid));
        self.write(Method::POST, &path, VERSION_BOOKINGS, &Value::Object(body)).await
    }

    /// `POST /v2/bookings/{uid}/reschedule`.
    pub async fn reschedule_booking(&self, uid: &str, start: DateTime<Utc>) -> Result<CalBooking, ApiError> {
        let body = serde_json::json!({"start": iso(start)});
        let path = format!("/v2/bookings/{}/reschedule", encode_segment(uid));
        self.write(Method::POST, &path, VERSION_BOOKINGS, &body).await
    }

    async fn read<T: DeserializeOwned>(
        &self,
        path: &str,
        version: Option<&str>,
        query: &[(&str, &str)],
    ) -> Result<T, ApiError> {
        let mut backoff = BACKOFF;
        let mut attempt = 1;
        loop {
            let result = self.send::<T>(Method::GET, path, version, query, None).await;
            let retry_in = match &result {
                Err(ApiError::RateLimited(wait)) if *wait <= MAX_WAIT => Some((*wait).max(backoff)),
                Err(ApiError::Timeout(_) | ApiError::Unavailable(_)) => Some(backoff),
                _ => None,
            };
            match retry_in {
                Some(wait) if attempt < READ_ATTEMPTS => tokio::time::sleep(wait).await,
                _ => return result,
            }
            attempt += 1;
            backoff *= 2;
        }
    }

    async fn write<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        version: &str,
        body: &B,
    ) -> Result<T, ApiError> {
        let body = serde_json::to_value(body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
        self.send(method, path, Some(version), &[], Some(&body)).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        version: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<T, ApiError> {
        let endpoint = metric_endpoint(path);
        let acquired = self.endpoint.limiter.acquire(self.key.expose(), MAX_WAIT).await;
        crate::metrics::calcom_rate_limit(acquired);
        acquired.map_err(ApiError::RateLimited)?;
        let url = format!("{}{path}", self.endpoint.base_url.trim_end_matches('/'));
        let mut request = self
            .endpoint
            .http
            .request(method.clone(), url)
            .bearer_auth(self.key.expose())
            .timeout(self.endpoint.timeout)
            .query(query);
        if let Some(version) = version {
            request = request.header("cal-api-version", version);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let started = std::time::Instant::now();
        let result = request.send().await;
        let elapsed = started.elapsed().as_secs_f64();
        let response = match result {
            Ok(response) => response,
            Err(e) => {
                let status = if e.is_timeout() { "timeout" } else { "error" };
                record(&method, endpoint, status, elapsed);
                return Err(if e.is_timeout() {
                    ApiError::Timeout(self.endpoint.timeout)
                } else {
                    ApiError::Unavailable(without_url(&e))
                });
            }
        };
        let status = response.status();
        record(&method, endpoint, status.as_str(), elapsed);
        let reset = reset_after(response.headers());
        let bytes = response.bytes().await.map_err(|e| {
            if e.is_timeout() {
                ApiError::Timeout(self.endpoint.timeout)
            } else {
                ApiError::Unavailable(without_url(&e))
            }
        })?;
        if status.is_success() {
            return serde_json::from_slice::<Envelope<T>>(&bytes)
                .map(|envelope| envelope.data)
                .map_err(|e| ApiError::Unavailable(format!("unexpected answer from {path}: {e}")));
        }
        let message = error_message(&bytes);
        Err(match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => ApiError::Unauthorized(status.as_u16()),
            StatusCode::NOT_FOUND => ApiError::NotFound(message),
            StatusCode::TOO_MANY_REQUESTS => ApiError::RateLimited(reset.unwrap_or(Duration::from_secs(60))),
            StatusCode::BAD_REQUEST if message.contains(SLOT_TAKEN_MESSAGE) => ApiError::SlotTaken,
            s if s.is_client_error() => ApiError::BadRequest(message),
            s => ApiError::Unavailable(format!("HTTP {} from {path}", s.as_u16())),
        })
    }
}

fn record(method: &Method, endpoint: &'static str, status: &str, seconds: f64) {
    metrics::counter!(CALCOM_HTTP_REQUESTS_TOTAL, "method" => method.to_string(), "endpoint" => endpoint, "status" => status.to_string())
        .increment(1);
    metrics::histogram!(CALCOM_HTTP_REQUEST_DURATION_SECONDS, "method" => method.to_string(), "endpoint" => endpoint)
        .record(seconds);
}

/// The path template for metric labels (uids are not label values).
fn metric_endpoint(path: &str) -> &'static str {
    match path {
        "/v2/me" => "/v2/me",
        "/v2/event-types" => "/v2/event-types",
        "/v2/slots" => "/v2/slots",
        "/v2/bookings" => "/v2/bookings",
        p if p.ends_with("/cancel") => "/v2/bookings/{uid}/cancel",
        p if p.ends_with("/reschedule") => "/v2/bookings/{uid}/reschedule",
        _ => "other",
    }
}

/// The message of Cal.com's error envelope (`error.message`), or a short excerpt of the body.
fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v["error"]["message"].as_str().or_else(|| v["message"].as_str()))
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned())
}

/// `X-RateLimit-Reset-Default` (seconds) from a 429.
fn reset_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .iter()
        .find(|(name, _)| name.as_str().starts_with("x-ratelimit-reset"))
        .and_then(|(_, v)| v.to_str().ok()?.trim().parse::<f64>().ok())
        .or_else(|| headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(3600.0)))
}

/// reqwest errors include the URL; ours has no secret in it, but keep messages short and uniform.
fn without_url(error: &reqwest::Error) -> String {
    let mut error_text = error.to_string();
    if let Some(url) = error.url() {
        error_text = error_text.replace(url.as_str(), "Cal.com");
    }
    error_text
}

fn encode_segment(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request the client makes has its 429 series exported at zero by the metrics catalogue.
    #[test]
    fn every_request_template_is_in_the_catalogue() {
        let made = [
            ("GET", "/v2/me"),
            ("GET", "/v2/event-types"),
            ("POST", "/v2/event-types"),
            ("GET", "/v2/slots"),
            ("GET", "/v2/bookings"),
            ("POST", "/v2/bookings"),
            ("POST", "/v2/bookings/uid-1/cancel"),
            ("POST", "/v2/bookings/uid-1/reschedule"),
        ];
        for (method, path) in made {
            let labels = (method, metric_endpoint(path));
            assert!(crate::metrics::CALCOM_REQUESTS.contains(&labels), "{labels:?} is exported at zero");
        }
    }
}
