//! A local Cal.com API v2 double that behaves as `../shared/calcom/api-v2-contract-notes.md` and
//! Cal.com's `openapi-v2.json` say, so slotline's real client is tested against the published contract.
//!
//! - envelopes `{"status":"success","data":...}` and the error envelope with `X-Request-Id`;
//! - `cal-api-version` routing: a versioned endpoint called without its exact version is served by the
//!   legacy (2024-04-15) controllers, whose bodies and answers differ, so such a request fails;
//! - every JSON body is validated against its schema in `openapi-v2.json` (jsonschema), and unknown
//!   properties are refused like Cal.com's `forbidNonWhitelisted` does; violations are recorded;
//! - availability from the host's working hours (Mon–Fri 09:00–17:00 in its zone) minus bookings and
//!   blocked ranges; the exact 400 texts for a taken slot, a past start, a second cancel;
//! - 429 after the per-key limit per minute; injected latency (applied after the work, as a slow server
//!   would) and injected failures.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{
    DateTime, Datelike as _, Duration as ChronoDuration, NaiveTime, SecondsFormat, TimeZone as _, Utc, Weekday,
};
use chrono_tz::Tz;
use hmac::{Hmac, Mac as _};
use serde_json::{json, Value};
use sha2::Sha256;

/// The exact text Cal.com answers when the host is busy.
pub const TAKEN: &str = "User either already has booking at this time or is not available";

/// How the double starts.
#[derive(Debug, Clone)]
pub struct DoubleConfig {
    pub api_keys: Vec<String>,
    pub username: String,
    pub user_id: i64,
    pub email: String,
    pub time_zone: String,
    pub event_types: Vec<(String, i64)>,
    pub rate_limit_per_minute: u32,
}

impl Default for DoubleConfig {
    fn default() -> Self {
        Self {
            api_keys: vec!["cal_live_double_key_0001".into()],
            username: "dr-double".into(),
            user_id: 7,
            email: "host@clinic.test".into(),
            time_zone: "America/New_York".into(),
            event_types: Vec::new(),
            rate_limit_per_minute: 120,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct DoubleBooking {
    pub id: i64,
    pub uid: String,
    pub event_type_id: i64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub status: String,
    pub attendee: Value,
    pub metadata: Value,
    pub rescheduled_from_uid: Option<String>,
    pub cancellation_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoubleEventType {
    pub id: i64,
    pub slug: String,
    pub title: String,
    pub length: i64,
}

#[derive(Debug, Clone)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub version: Option<String>,
    pub status: u16,
    /// The bearer key the request carried.
    pub key: Option<String>,
}

#[derive(Default)]
struct Inner {
    event_types: Vec<DoubleEventType>,
    bookings: Vec<DoubleBooking>,
    blocked: Vec<(DateTime<Utc>, DateTime<Utc>)>,
    requests: Vec<RecordedRequest>,
    violations: Vec<String>,
    latency: Vec<(String, Duration)>,
    failures: Vec<(String, u16, usize)>,
    rate: HashMap<String, Vec<Instant>>,
    next_id: i64,
}

#[derive(Clone)]
struct Shared {
    config: Arc<DoubleConfig>,
    inner: Arc<Mutex<Inner>>,
    schemas: Arc<Schemas>,
}

/// A running double.
pub struct CalcomDouble {
    pub base_url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CalcomDouble {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CalcomDouble {
    pub async fn start(config: DoubleConfig) -> Self {
        let mut inner = Inner { next_id: 1000, ..Default::default() };
        for (slug, length) in &config.event_types {
            inner.next_id += 1;
            inner.event_types.push(DoubleEventType {
                id: inner.next_id,
                slug: slug.clone(),
                title: slug.clone(),
                length: *length,
            });
        }
        let shared =
            Shared { config: Arc::new(config), inner: Arc::new(Mutex::new(inner)), schemas: Arc::new(Schemas::load()) };
        let app = Router::new()
            .route("/v2/me", get(me))
            .route("/v2/event-types", get(list_event_types).post(create_event_type))
            .route("/v2/slots", get(slots))
            .route("/v2/bookings", get(list_bookings).post(create_booking))
            .route("/v2/bookings/{uid}", get(get_booking))
            .route("/v2/bookings/{uid}/cancel", post(cancel_booking))
            .route("/v2/bookings/{uid}/reschedule", post(reschedule_booking))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind double");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { base_url: format!("http://{addr}"), shared, server }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn bookings(&self) -> Vec<DoubleBooking> {
        self.lock().bookings.clone()
    }

    pub fn event_types(&self) -> Vec<DoubleEventType> {
        self.lock().event_types.clone()
    }

    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// Bodies that did not match their schema in openapi-v2.json, or carried unknown properties.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// `key` is `"METHOD /path-prefix"`, e.g. `"POST /v2/bookings"`.
    pub fn set_latency(&self, key: &str, latency: Duration) {
        self.lock().latency.push((key.to_string(), latency));
    }

    pub fn fail_next(&self, key: &str, status: u16, times: usize) {
        self.lock().failures.push((key.to_string(), status, times));
    }

    /// The host is busy then (an event in the host's own calendar).
    pub fn block_time(&self, start: DateTime<Utc>, end: DateTime<Utc>) {
        self.lock().blocked.push((start, end));
    }

    /// A booking made on Cal.com directly (by the host, another booker).
    pub fn add_booking(&self, event_type_id: i64, start: DateTime<Utc>, minutes: i64, email: &str) -> DoubleBooking {
        let mut inner = self.lock();
        inner.next_id += 1;
        let booking = DoubleBooking {
            id: inner.next_id,
            uid: format!("uid{}", inner.next_id),
            event_type_id,
            start,
            end: start + ChronoDuration::minutes(minutes),
            status: "accepted".into(),
            attendee: json!({"name": "Walk In", "email": email, "timeZone": "UTC"}),
            metadata: json!({}),
            rescheduled_from_uid: None,
            cancellation_reason: None,
        };
        inner.bookings.push(booking.clone());
        booking
    }

    /// Cancels a booking on Cal.com's side (as the host would).
    pub fn cancel_on_calcom(&self, uid: &str) {
        if let Some(b) = self.lock().bookings.iter_mut().find(|b| b.uid == uid) {
            b.status = "cancelled".into();
        }
    }

    pub fn sign_webhook(secret: &str, body: &[u8]) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
        mac.update(body);
        hex::encode(mac.finalize().into_bytes())
    }

    /// A webhook delivery as Cal.com sends it for `uid`.
    pub fn webhook_payload(&self, trigger: &str, uid: &str) -> Value {
        let inner = self.lock();
        let booking = inner.bookings.iter().find(|b| b.uid == uid).cloned().expect("booking");
        let mut payload = json!({
            "type": inner.event_types.iter().find(|t| t.id == booking.event_type_id).map(|t| t.slug.clone()),
            "title": "Appointment",
            "startTime": iso(booking.start),
            "endTime": iso(booking.end),
            "organizer": {"id": self.shared.config.user_id, "name": "Host", "email": self.shared.config.email,
                          "username": self.shared.config.username, "timeZone": self.shared.config.time_zone},
            "attendees": [booking.attendee],
            "uid": booking.uid,
            "bookingId": booking.id,
            "eventTypeId": booking.event_type_id,
            "metadata": booking.metadata,
            "status": if booking.status == "cancelled" { "CANCELLED" } else { "ACCEPTED" },
            "length": (booking.end - booking.start).num_minutes(),
        });
        if let Some(reason) = &booking.cancellation_reason {
            payload["cancellationReason"] = json!(reason);
        }
        if let Some(from) = &booking.rescheduled_from_uid {
            payload["rescheduleUid"] = json!(from);
        }
        json!({"triggerEvent": trigger, "createdAt": iso(Utc::now()), "payload": payload})
    }
}

fn iso(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Request-body schemas from openapi-v2.json (OpenAPI 3.0 `nullable` translated to JSON Schema).
struct Schemas {
    validators: HashMap<&'static str, (jsonschema::Validator, Vec<String>)>,
}

impl Schemas {
    fn load() -> Self {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/calcom/openapi-v2.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("the Cal.com OpenAPI document must be at {}: {e}", path.display()));
        let spec: Value = serde_json::from_str(&text).expect("openapi-v2.json is JSON");
        let mut components = spec["components"].clone();
        translate_nullable(&mut components);
        let mut validators = HashMap::new();
        for name in [
            "CreateBookingInput_2024_08_13",
            "CancelBookingInput_2024_08_13",
            "RescheduleBookingInput_2024_08_13",
            "CreateEventTypeInput_2024_06_14",
        ] {
            let schema = json!({"$ref": format!("#/components/schemas/{name}"), "components": components.clone()});
            let validator = jsonschema::validator_for(&schema).expect("schema compiles");
            let properties: Vec<String> = spec["components"]["schemas"][name]["properties"]
                .as_object()
                .map(|p| p.keys().cloned().collect())
                .unwrap_or_default();
            validators.insert(name, (validator, properties));
        }
        Self { validators }
    }

    /// Schema errors plus Cal.com's whitelist check; empty when the body is acceptable.
    fn check(&self, name: &str, body: &Value) -> Vec<String> {
        let Some((validator, properties)) = self.validators.get(name) else { return vec![format!("no schema {name}")] };
        let mut errors: Vec<String> = validator.iter_errors(body).map(|e| format!("{name}: {e}")).collect();
        if let Some(object) = body.as_object() {
            for key in object.keys().filter(|k| !properties.contains(k)) {
                errors.push(format!("property {key} should not exist"));
            }
        }
        errors
    }
}

fn translate_nullable(value: &mut Value) {
    match value {
        Value::Object(map) => {
            if map.get("nullable") == Some(&Value::Bool(true)) {
                if let Some(Value::String(t)) = map.get("type").cloned() {
                    map.insert("type".into(), json!([t, "null"]));
                }
            }
            for v in map.values_mut() {
                translate_nullable(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(translate_nullable),
        _ => {}
    }
}

fn success(status: StatusCode, data: Value) -> Response {
    (status, Json(json!({"status": "success", "data": data}))).into_response()
}

fn error(status: StatusCode, code: &str, message: &str, path: &str) -> Response {
    let body = json!({
        "status": "error",
        "timestamp": iso(Utc::now()),
        "path": path,
        "error": {"code": code, "message": message, "details": {"message": message, "error": status.canonical_reason(), "statusCode": status.as_u16()}}
    });
    let mut response = (status, Json(body)).into_response();
    response.headers_mut().insert("x-request-id", uuid::Uuid::new_v4().to_string().parse().expect("header"));
    response
}

fn bad_request(message: &str, path: &str) -> Response {
    error(StatusCode::BAD_REQUEST, "BadRequestException", message, path)
}

/// The common part of every request: logging, version, auth, rate limit, injected failures.
struct Call {
    shared: Shared,
    method: Method,
    path: String,
    version: Option<String>,
    key: Option<String>,
}

impl Call {
    fn new(shared: &Shared, method: Method, uri: &Uri, headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
        Self {
            shared: shared.clone(),
            method,
            path: uri.path().to_string(),
            version: header("cal-api-version"),
            key: header("authorization").and_then(|v| v.strip_prefix("Bearer ").map(str::to_string)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.shared.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key_matches(&self, key: &str) -> bool {
        let (method, prefix) = key.split_once(' ').unwrap_or(("", key));
        (method.is_empty() || method == self.method.as_str()) && self.path.starts_with(prefix)
    }

    /// Rate limit and injected failures; `Some` ends the request early.
    fn gate(&self) -> Option<Response> {
        let mut inner = self.lock();
        let limit = self.shared.config.rate_limit_per_minute as usize;
        let bucket = self.key.clone().unwrap_or_else(|| "anonymous".into());
        let now = Instant::now();
        let log = inner.rate.entry(bucket).or_default();
        log.retain(|t| now.duration_since(*t) < Duration::from_secs(60));
        if log.len() >= limit {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlerException",
                "CustomThrottlerGuard - Too many requests. Please try again later.",
                &self.path,
            );
            let headers = response.headers_mut();
            headers.insert("x-ratelimit-limit-default", limit.to_string().parse().expect("header"));
            headers.insert("x-ratelimit-remaining-default", "0".parse().expect("header"));
            headers.insert("x-ratelimit-reset-default", "60".parse().expect("header"));
            return Some(response);
        }
        log.push(now);
        let failure = inner.failures.iter_mut().find(|(key, _, times)| *times > 0 && self.key_matches(key));
        if let Some((_, status, times)) = failure {
            *times -= 1;
            let status = StatusCode::from_u16(*status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if status == StatusCode::TOO_MANY_REQUESTS {
                let mut response = error(
                    status,
                    "ThrottlerException",
                    "CustomThrottlerGuard - Too many requests. Please try again later.",
                    &self.path,
                );
                response.headers_mut().insert("x-ratelimit-reset-default", "0.1".parse().expect("header"));
                return Some(response);
            }
            return Some(error(status, "InternalServerErrorException", "Internal server error", &self.path));
        }
        None
    }

    fn authenticated(&self) -> bool {
        self.key.as_ref().is_some_and(|k| self.shared.config.api_keys.contains(k))
    }

    /// Versioned endpoints without their exact version are served by the legacy (2024-04-15) controllers.
    fn legacy(&self, required: &str) -> bool {
        self.version.as_deref() != Some(required)
    }

    fn validate(&self, schema: &str, body: &Value) -> Option<Response> {
        let errors = self.shared.schemas.check(schema, body);
        if errors.is_empty() {
            return None;
        }
        self.lock().violations.extend(errors.iter().cloned());
        Some(bad_request(&errors.join(", "), &self.path))
    }

    /// Records the request (its work is done), then waits out any injected latency: a client that
    /// gives up meanwhile leaves the work done, as with a slow real server.
    async fn finish(&self, response: Response) -> Response {
        let latency = {
            let mut inner = self.lock();
            inner.requests.push(RecordedRequest {
                method: self.method.to_string(),
                path: self.path.clone(),
                version: self.version.clone(),
                status: response.status().as_u16(),
                key: self.key.clone(),
            });
            inner.latency.iter().filter(|(key, _)| self.key_matches(key)).map(|(_, d)| *d).max()
        };
        if let Some(latency) = latency {
            tokio::time::sleep(latency).await;
        }
        response
    }
}

#[allow(clippy::result_large_err)] // an early HTTP answer, built once per request
fn parse_json(body: &Bytes, path: &str) -> Result<Value, Response> {
    serde_json::from_slice(body).map_err(|_| bad_request("Invalid JSON body", path))
}

async fn me(State(s): State<Shared>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = if !call.authenticated() {
        error(StatusCode::UNAUTHORIZED, "UnauthorizedException", "Invalid API Key", &call.path)
    } else {
        let c = &s.config;
        success(
            StatusCode::OK,
            json!({"id": c.user_id, "username": c.username, "email": c.email, "timeFormat": 12, "defaultScheduleId": 1,
                   "weekStart": "Monday", "timeZone": c.time_zone, "organizationId": null}),
        )
    };
    call.finish(response).await
}

fn event_type_json(t: &DoubleEventType, owner: i64) -> Value {
    json!({"id": t.id, "slug": t.slug, "title": t.title, "lengthInMinutes": t.length, "ownerId": owner, "hidden": false})
}

async fn list_event_types(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = if call.legacy("2024-06-14") {
        // The legacy controller answers with event type groups.
        success(StatusCode::OK, json!({"eventTypeGroups": []}))
    } else if q.get("username") != Some(&s.config.username) {
        success(StatusCode::OK, json!([]))
    } else {
        let inner = call.lock();
        let list: Vec<Value> = inner
            .event_types
            .iter()
            .filter(|t| q.get("eventSlug").is_none_or(|slug| *slug == t.slug))
            .map(|t| event_type_json(t, s.config.user_id))
            .collect();
        success(StatusCode::OK, Value::Array(list))
    };
    call.finish(response).await
}

async fn create_event_type(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = 'r: {
        if !call.authenticated() {
            break 'r error(StatusCode::UNAUTHORIZED, "UnauthorizedException", "Invalid API Key", &call.path);
        }
        let body = match parse_json(&body, &call.path) {
            Ok(b) => b,
            Err(e) => break 'r e,
        };
        if call.legacy("2024-06-14") {
            break 'r bad_request("length must be a number", &call.path);
        }
        if let Some(e) = call.validate("CreateEventTypeInput_2024_06_14", &body) {
            break 'r e;
        }
        let mut inner = call.lock();
        let slug = body["slug"].as_str().unwrap_or_default().to_string();
        if inner.event_types.iter().any(|t| t.slug == slug) {
            break 'r bad_request(&format!("User already has an event type with slug {slug}"), &call.path);
        }
        inner.next_id += 1;
        let t = DoubleEventType {
            id: inner.next_id,
            slug,
            title: body["title"].as_str().unwrap_or_default().to_string(),
            length: body["lengthInMinutes"].as_i64().unwrap_or(30),
        };
        inner.event_types.push(t.clone());
        success(StatusCode::CREATED, event_type_json(&t, s.config.user_id))
    };
    call.finish(response).await
}

/// Free starts of an event type between two instants (host working hours Mon–Fri 09:00–17:00 local).
fn free_starts(
    s: &Shared,
    inner: &Inner,
    length: i64,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    ignore: Option<&str>,
) -> Vec<DateTime<Utc>> {
    let tz: Tz = s.config.time_zone.parse().unwrap_or(chrono_tz::UTC);
    let now = Utc::now();
    let mut out = Vec::new();
    let mut day = from.with_timezone(&tz).date_naive();
    let last = to.with_timezone(&tz).date_naive();
    while day <= last {
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            let mut minute = 9 * 60;
            while minute + length <= 17 * 60 {
                let local = day.and_time(NaiveTime::MIN) + ChronoDuration::minutes(minute);
                minute += length;
                let Some(start) = tz.from_local_datetime(&local).earliest().map(|t| t.with_timezone(&Utc)) else {
                    continue;
                };
                let end = start + ChronoDuration::minutes(length);
                let busy = inner
                    .bookings
                    .iter()
                    .filter(|b| b.status != "cancelled" && Some(b.uid.as_str()) != ignore)
                    .any(|b| b.start < end && b.end > start)
                    || inner.blocked.iter().any(|(f, u)| *f < end && *u > start);
                if start >= from && start < to && start > now && !busy {
                    out.push(start);
                }
            }
        }
        match day.succ_opt() {
            Some(next) => day = next,
            None => break,
        }
    }
    out
}

fn parse_instant(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).ok().or_else(|| {
        chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").ok().map(|d| d.and_time(NaiveTime::MIN).and_utc())
    })
}

async fn slots(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = 'r: {
        if call.legacy("2024-09-04") {
            // Legacy slots: `{slots: {date: [{time}]}}`, startTime/endTime parameters.
            break 'r success(StatusCode::OK, json!({"slots": {}}));
        }
        let (Some(from), Some(to)) =
            (q.get("start").and_then(|v| parse_instant(v)), q.get("end").and_then(|v| parse_instant(v)))
        else {
            break 'r bad_request("start and end must be ISO 8601 dates", &call.path);
        };
        let inner = call.lock();
        let event_type = match q.get("eventTypeId").and_then(|v| v.parse::<i64>().ok()) {
            Some(id) => inner.event_types.iter().find(|t| t.id == id),
            None => inner.event_types.iter().find(|t| Some(&t.slug) == q.get("eventTypeSlug")),
        };
        let Some(event_type) = event_type.cloned() else {
            break 'r error(StatusCode::NOT_FOUND, "NotFoundException", "Event type not found", &call.path);
        };
        let tz: Tz = match q.get("timeZone") {
            Some(zone) => match zone.parse() {
                Ok(tz) => tz,
                Err(_) => break 'r bad_request("timeZone must be a valid IANA time zone", &call.path),
            },
            None => chrono_tz::UTC,
        };
        let range = q.get("format").map(String::as_str) == Some("range");
        let mut days: serde_json::Map<String, Value> = serde_json::Map::new();
        for start in
            free_starts(&s, &inner, event_type.length, from, to, q.get("bookingUidToReschedule").map(String::as_str))
        {
            let local = start.with_timezone(&tz);
            let mut slot = json!({"start": local.to_rfc3339_opts(SecondsFormat::Millis, false)});
            if range {
                slot["end"] =
                    json!((local + ChronoDuration::minutes(event_type.length))
                        .to_rfc3339_opts(SecondsFormat::Millis, false));
            }
            days.entry(local.format("%Y-%m-%d").to_string())
                .or_insert_with(|| json!([]))
                .as_array_mut()
                .expect("array")
                .push(slot);
        }
        success(StatusCode::OK, Value::Object(days))
    };
    call.finish(response).await
}

fn booking_json(s: &Shared, inner: &Inner, b: &DoubleBooking) -> Value {
    let slug = inner.event_types.iter().find(|t| t.id == b.event_type_id).map(|t| t.slug.clone());
    json!({
        "id": b.id, "uid": b.uid, "title": "Appointment", "description": "",
        "hosts": [{"id": s.config.user_id, "name": "Host", "email": s.config.email, "username": s.config.username, "timeZone": s.config.time_zone}],
        "status": b.status, "start": iso(b.start), "end": iso(b.end), "duration": (b.end - b.start).num_minutes(),
        "eventTypeId": b.event_type_id, "eventType": {"id": b.event_type_id, "slug": slug},
        "location": "", "absentHost": false, "createdAt": iso(Utc::now()), "updatedAt": iso(Utc::now()),
        "attendees": [b.attendee], "bookingFieldsResponses": {}, "metadata": b.metadata,
        "rescheduledFromUid": b.rescheduled_from_uid, "cancellationReason": b.cancellation_reason,
    })
}

async fn create_booking(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = 'r: {
        let body = match parse_json(&body, &call.path) {
            Ok(b) => b,
            Err(e) => break 'r e,
        };
        if call.legacy("2024-08-13") {
            // The legacy booking controller wants `responses` and `timeZone` at the top level.
            break 'r bad_request("responses property is wrong, responses must be an object", &call.path);
        }
        if let Some(e) = call.validate("CreateBookingInput_2024_08_13", &body) {
            break 'r e;
        }
        let attendee = &body["attendee"];
        let attendee_allowed = ["name", "email", "timeZone", "phoneNumber", "language"];
        if let Some(extra) =
            attendee.as_object().and_then(|a| a.keys().find(|k| !attendee_allowed.contains(&k.as_str())))
        {
            call.lock().violations.push(format!("attendee.{extra} should not exist"));
            break 'r bad_request(&format!("attendee.{extra} property {extra} should not exist"), &call.path);
        }
        if attendee["email"].is_null() && attendee["phoneNumber"].is_null() {
            break 'r bad_request("Attendee must have an email or a phone number", &call.path);
        }
        if attendee["timeZone"].as_str().and_then(|z| z.parse::<Tz>().ok()).is_none() {
            break 'r bad_request("attendee.timeZone must be a valid IANA time zone", &call.path);
        }
        let Some(start) = body["start"].as_str().and_then(parse_instant) else {
            break 'r bad_request("start must be a valid ISO 8601 date", &call.path);
        };
        let mut inner = call.lock();
        let id = body["eventTypeId"].as_i64().unwrap_or(-1);
        let Some(event_type) = inner.event_types.iter().find(|t| t.id == id).cloned() else {
            break 'r error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                &format!("Event type with id {id} not found."),
                &call.path,
            );
        };
        if start <= Utc::now() {
            break 'r bad_request("Attempting to book a meeting in the past.", &call.path);
        }
        let free = free_starts(&s, &inner, event_type.length, start, start + ChronoDuration::minutes(1), None);
        if !free.contains(&start) {
            break 'r bad_request(TAKEN, &call.path);
        }
        inner.next_id += 1;
        let booking = DoubleBooking {
            id: inner.next_id,
            uid: format!("uid{}", inner.next_id),
            event_type_id: id,
            start,
            end: start + ChronoDuration::minutes(event_type.length),
            status: "accepted".into(),
            attendee: attendee.clone(),
            metadata: body.get("metadata").cloned().unwrap_or(json!({})),
            rescheduled_from_uid: None,
            cancellation_reason: None,
        };
        inner.bookings.push(booking.clone());
        success(StatusCode::CREATED, booking_json(&s, &inner, &booking))
    };
    call.finish(response).await
}

async fn list_bookings(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = if !call.authenticated() {
        error(StatusCode::UNAUTHORIZED, "UnauthorizedException", "Invalid API Key", &call.path)
    } else if call.legacy("2024-08-13") {
        success(StatusCode::OK, json!({"bookings": []}))
    } else {
        let inner = call.lock();
        let after = q.get("afterStart").and_then(|v| parse_instant(v));
        let before = q.get("beforeEnd").and_then(|v| parse_instant(v));
        let list: Vec<Value> = inner
            .bookings
            .iter()
            .filter(|b| q.get("eventTypeId").is_none_or(|id| id.parse() == Ok(b.event_type_id)))
            .filter(|b| after.is_none_or(|a| b.start >= a))
            .filter(|b| before.is_none_or(|e| b.end <= e))
            .filter(|b| q.get("attendeeEmail").is_none_or(|email| b.attendee["email"].as_str() == Some(email.as_str())))
            .map(|b| booking_json(&s, &inner, b))
            .collect();
        success(StatusCode::OK, Value::Array(list))
    };
    call.finish(response).await
}

async fn get_booking(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    UrlPath(uid): UrlPath<String>,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    let response = {
        let inner = call.lock();
        match inner.bookings.iter().find(|b| b.uid == uid) {
            Some(b) => success(StatusCode::OK, booking_json(&s, &inner, b)),
            None => error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                &format!("Booking with uid={uid} was not found"),
                &call.path,
            ),
        }
    };
    call.finish(response).await
}

async fn cancel_booking(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    UrlPath(uid): UrlPath<String>,
    body: Bytes,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = 'r: {
        let body = match parse_json(&body, &call.path) {
            Ok(b) => b,
            Err(e) => break 'r e,
        };
        if call.legacy("2024-08-13") {
            break 'r error(StatusCode::NOT_FOUND, "NotFoundException", "Cannot POST", &call.path);
        }
        if let Some(e) = call.validate("CancelBookingInput_2024_08_13", &body) {
            break 'r e;
        }
        let mut inner = call.lock();
        let Some(index) = inner.bookings.iter().position(|b| b.uid == uid) else {
            break 'r error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                &format!("Booking with uid={uid} was not found"),
                &call.path,
            );
        };
        if inner.bookings[index].status == "cancelled" {
            break 'r bad_request("This booking has already been cancelled.", &call.path);
        }
        inner.bookings[index].status = "cancelled".into();
        inner.bookings[index].cancellation_reason = body["cancellationReason"].as_str().map(str::to_string);
        let booking = inner.bookings[index].clone();
        success(StatusCode::OK, booking_json(&s, &inner, &booking))
    };
    call.finish(response).await
}

async fn reschedule_booking(
    State(s): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    UrlPath(uid): UrlPath<String>,
    body: Bytes,
) -> Response {
    let call = Call::new(&s, method, &uri, &headers);
    if let Some(r) = call.gate() {
        return call.finish(r).await;
    }
    let response = 'r: {
        let body = match parse_json(&body, &call.path) {
            Ok(b) => b,
            Err(e) => break 'r e,
        };
        if call.legacy("2024-08-13") {
            break 'r error(StatusCode::NOT_FOUND, "NotFoundException", "Cannot POST", &call.path);
        }
        if let Some(e) = call.validate("RescheduleBookingInput_2024_08_13", &body) {
            break 'r e;
        }
        let Some(start) = body["start"].as_str().and_then(parse_instant) else {
            break 'r bad_request("start must be a valid ISO 8601 date", &call.path);
        };
        let mut inner = call.lock();
        let Some(old) = inner.bookings.iter().find(|b| b.uid == uid).cloned() else {
            break 'r error(
                StatusCode::NOT_FOUND,
                "NotFoundException",
                &format!("Booking with uid={uid} was not found"),
                &call.path,
            );
        };
        if old.status == "cancelled" {
            break 'r bad_request(
                &format!("Can't reschedule booking with uid={uid} because it has been cancelled."),
                &call.path,
            );
        }
        let length = (old.end - old.start).num_minutes();
        let free = free_starts(&s, &inner, length, start, start + ChronoDuration::minutes(1), Some(&uid));
        if !free.contains(&start) {
            break 'r bad_request(TAKEN, &call.path);
        }
        inner.next_id += 1;
        let new = DoubleBooking {
            id: inner.next_id,
            uid: format!("uid{}", inner.next_id),
            start,
            end: start + ChronoDuration::minutes(length),
            status: "accepted".into(),
            rescheduled_from_uid: Some(uid.clone()),
            ..old
        };
        if let Some(b) = inner.bookings.iter_mut().find(|b| b.uid == uid) {
            b.status = "cancelled".into();
        }
        inner.bookings.push(new.clone());
        success(StatusCode::CREATED, booking_json(&s, &inner, &new))
    };
    call.finish(response).await
}
