//! Every Prometheus metric slotline exports, declared once with its help text, plus the exporter.
//!
//! Names follow Prometheus conventions: a `slotline_` prefix, base units (`_seconds`), `_total` on
//! counters. README's "Metrics" section lists them all; keep both in sync.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// `slotline_build_info{version}` = 1.
pub const BUILD_INFO: &str = "slotline_build_info";
/// HTTP requests served by the admin API, by `method`, `route` (the matched template) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "slotline_http_requests_total";
/// HTTP request latency by `method` and `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "slotline_http_request_duration_seconds";
/// API requests refused by authentication, by `reason` (`missing`, `invalid`, `forbidden`).
pub const API_AUTH_FAILURES_TOTAL: &str = "slotline_api_auth_failures_total";

/// Calendar operations by `provider`, `operation` and `outcome`.
pub const CALENDAR_REQUESTS_TOTAL: &str = "slotline_calendar_requests_total";
/// Calendar operation latency by `provider` and `operation`.
pub const CALENDAR_REQUEST_DURATION_SECONDS: &str = "slotline_calendar_request_duration_seconds";
/// Booking attempts by `agent`, `calendar` and `outcome`.
pub const BOOKINGS_TOTAL: &str = "slotline_bookings_total";
/// Cancellations by `agent`, `calendar` and `outcome`.
pub const CANCELLATIONS_TOTAL: &str = "slotline_booking_cancellations_total";
/// Reschedules by `agent`, `calendar` and `outcome`.
pub const RESCHEDULES_TOTAL: &str = "slotline_booking_reschedules_total";
/// HTTP requests to Cal.com by `method`, `endpoint` (template) and `status` (code, `timeout` or `error`).
pub const CALCOM_HTTP_REQUESTS_TOTAL: &str = "slotline_calcom_http_requests_total";
/// Cal.com HTTP latency by `method` and `endpoint`.
pub const CALCOM_HTTP_REQUEST_DURATION_SECONDS: &str = "slotline_calcom_http_request_duration_seconds";
/// Cal.com webhook deliveries by `trigger` and `result` (`created`, `cancelled`, `rescheduled`, `ignored`,
/// `bad_signature`, `invalid`).
pub const CALCOM_WEBHOOKS_TOTAL: &str = "slotline_calcom_webhooks_total";

/// Records one calendar operation.
pub fn calendar_request(provider: &'static str, operation: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(CALENDAR_REQUESTS_TOTAL, "provider" => provider, "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(CALENDAR_REQUEST_DURATION_SECONDS, "provider" => provider, "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// Records one booking attempt.
pub fn booking(agent: &str, calendar: &'static str, outcome: &'static str) {
    metrics::counter!(BOOKINGS_TOTAL, "agent" => agent.to_string(), "calendar" => calendar, "outcome" => outcome)
        .increment(1);
}

/// Records one cancellation attempt.
pub fn cancellation(agent: &str, calendar: &'static str, outcome: &'static str) {
    metrics::counter!(CANCELLATIONS_TOTAL, "agent" => agent.to_string(), "calendar" => calendar, "outcome" => outcome)
        .increment(1);
}

/// Records one reschedule attempt.
pub fn reschedule(agent: &str, calendar: &'static str, outcome: &'static str) {
    metrics::counter!(RESCHEDULES_TOTAL, "agent" => agent.to_string(), "calendar" => calendar, "outcome" => outcome)
        .increment(1);
}

/// Latency buckets (seconds) for request-style histograms: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns the handle that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // A recorder installed earlier in this process (tests) keeps working; ours then renders nothing new.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

fn describe() {
    describe_gauge!(BUILD_INFO, "Build information: always 1, labelled with the version.");
    describe_counter!(HTTP_REQUESTS_TOTAL, "Admin API requests by method, route template and status code.");
    describe_histogram!(HTTP_REQUEST_DURATION_SECONDS, Unit::Seconds, "Admin API request latency.");
    describe_counter!(
        CALENDAR_REQUESTS_TOTAL,
        "Calendar operations by provider (calcom, builtin, demo), operation and outcome."
    );
    describe_histogram!(CALENDAR_REQUEST_DURATION_SECONDS, Unit::Seconds, "Calendar operation latency.");
    describe_counter!(
        BOOKINGS_TOTAL,
        "Booking attempts by agent, calendar and outcome (success, slot_taken, no_slots, calendar_error, invalid_input)."
    );
    describe_counter!(CANCELLATIONS_TOTAL, "Booking cancellations by agent, calendar and outcome.");
    describe_counter!(RESCHEDULES_TOTAL, "Booking reschedules by agent, calendar and outcome.");
    describe_counter!(CALCOM_HTTP_REQUESTS_TOTAL, "HTTP requests to Cal.com by method, endpoint and status.");
    describe_histogram!(CALCOM_HTTP_REQUEST_DURATION_SECONDS, Unit::Seconds, "Cal.com HTTP request latency.");
    describe_counter!(CALCOM_WEBHOOKS_TOTAL, "Cal.com webhook deliveries by trigger and result.");
    describe_counter!(API_AUTH_FAILURES_TOTAL, "Admin API requests refused by authentication, by reason.");
}

/// Histograms need periodic upkeep to drain their buckets when nothing scrapes for a long time.
fn spawn_upkeep(handle: PrometheusHandle) {
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}
