//! Every Prometheus metric slotline exports, declared once with its help text, plus the exporter.
//!
//! Names follow Prometheus conventions: a `slotline_` prefix, base units (`_seconds`), `_total` on
//! counters. `docs/metrics.md` lists them all; keep both in sync.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// `slotline_build_info{version}` = 1.
pub const BUILD_INFO: &str = "slotline_build_info";
/// HTTP requests served by the admin API, by `method` (standard ones, else `other`), `route` (the matched
/// template) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "slotline_http_requests_total";
/// HTTP request latency by `method` and `route`.
pub const HTTP_REQUEST_DURATION_SECONDS: &str = "slotline_http_request_duration_seconds";
/// API requests refused by authentication, by `reason` (`missing`, `invalid`, `expired`, `forbidden`).
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
/// The Cal.com requests the client makes, as (`method`, `endpoint`) labels: their 429 series start at zero.
pub const CALCOM_REQUESTS: [(&str, &str); 8] = [
    ("GET", "/v2/me"),
    ("GET", "/v2/event-types"),
    ("POST", "/v2/event-types"),
    ("GET", "/v2/slots"),
    ("GET", "/v2/bookings"),
    ("POST", "/v2/bookings"),
    ("POST", "/v2/bookings/{uid}/cancel"),
    ("POST", "/v2/bookings/{uid}/reschedule"),
];
/// Cal.com HTTP latency by `method` and `endpoint`.
pub const CALCOM_HTTP_REQUEST_DURATION_SECONDS: &str = "slotline_calcom_http_request_duration_seconds";
/// Cal.com requests the client-side rate limit held back, by `result` (`waited`, or `refused` when the wait
/// would have been too long).
pub const CALCOM_RATE_LIMIT_TOTAL: &str = "slotline_calcom_rate_limit_total";
/// Time Cal.com requests waited for the client-side rate limit.
pub const CALCOM_RATE_LIMIT_WAIT_SECONDS: &str = "slotline_calcom_rate_limit_wait_seconds";
/// Cal.com webhook deliveries by `trigger` and `result` (`created`, `cancelled`, `rescheduled`, `ignored`,
/// `bad_signature`, `invalid`).
pub const CALCOM_WEBHOOKS_TOTAL: &str = "slotline_calcom_webhooks_total";

/// SIP requests received by `method` (`malformed` for unparsable ones).
pub const SIP_REQUESTS_TOTAL: &str = "slotline_sip_requests_total";
/// SIP responses sent by `method` and `code`.
pub const SIP_RESPONSES_TOTAL: &str = "slotline_sip_responses_total";
/// SIP requests slotline sent (BYE) by `method`, and the responses it got by `method` and `code`.
pub const SIP_REQUESTS_SENT_TOTAL: &str = "slotline_sip_requests_sent_total";
/// Responses received to requests slotline sent.
pub const SIP_RESPONSES_RECEIVED_TOTAL: &str = "slotline_sip_responses_received_total";
/// Retransmitted requests absorbed by their transaction (answered with the last response), by `method`.
pub const SIP_RETRANSMISSIONS_ABSORBED_TOTAL: &str = "slotline_sip_retransmissions_absorbed_total";
/// SIP requests refused before they got any state (no transaction, no database row), by `method` and
/// `reason` (`rate_limited`, `shutting_down`, `forbidden`, `auth_required`, `auth_failed`, `auth_replayed`).
pub const SIP_REQUESTS_REFUSED_TOTAL: &str = "slotline_sip_requests_refused_total";
/// Calls by `outcome` (`answered`, or the refusal reason: `not_found`, `forbidden`, `codec_mismatch`, ...).
pub const CALLS_TOTAL: &str = "slotline_calls_total";
/// `calls` rows dropped because the writer fell [`crate::sip::server`]'s queue behind (a stalled
/// database).
pub const CALL_RECORDS_DROPPED_TOTAL: &str = "slotline_call_records_dropped_total";
/// Calls in progress.
pub const ACTIVE_CALLS: &str = "slotline_active_calls";
/// Answered call duration by end `reason`.
pub const CALL_DURATION_SECONDS: &str = "slotline_call_duration_seconds";
/// Ended calls by `reason` (`caller_bye`, `media_timeout`, `max_duration`, `shutdown`, `no_ack`, ...).
pub const CALLS_ENDED_TOTAL: &str = "slotline_calls_ended_total";
/// RTP packets by `direction` (`received`, `sent`, `lost`).
pub const RTP_PACKETS_TOTAL: &str = "slotline_rtp_packets_total";
/// RTP packets a call's media session ignored because they were not the caller's, by `reason`
/// (`source`: another address; `ssrc`: the caller's address, another stream).
pub const RTP_PACKETS_IGNORED_TOTAL: &str = "slotline_rtp_packets_ignored_total";
/// Interarrival jitter of the caller's RTP at the end of each call, in seconds.
pub const RTP_JITTER_SECONDS: &str = "slotline_rtp_jitter_seconds";
/// DTMF digits received.
pub const DTMF_EVENTS_TOTAL: &str = "slotline_dtmf_events_total";
/// DTMF digits dropped because too many caller turns already waited for the dialog engine.
pub const DTMF_EVENTS_DROPPED_TOTAL: &str = "slotline_dtmf_events_dropped_total";

/// Tool calls of dialog engines by `tool` and `outcome` (`ok`, `no_slots`, `slot_taken`, `invalid_input`,
/// `calendar_error`, `not_configured`).
pub const TOOL_CALLS_TOTAL: &str = "slotline_tool_calls_total";
/// Tool call latency by `tool`.
pub const TOOL_CALL_DURATION_SECONDS: &str = "slotline_tool_call_duration_seconds";
/// Finished conversations (calls and chats) by `agent`, `calendar`, `way_in` and `outcome`: `booked`,
/// `cancelled`, `rescheduled`, or why no booking was made (`slot_taken`, `calendar_error`, `no_slots`,
/// `caller_hung_up`, `not_understood`, `no_input`, `transferred_or_other`); one per conversation.
pub const CONVERSATIONS_TOTAL: &str = "slotline_conversations_total";
/// Conversations that reached a booking funnel `step` (`answered`, `intent`, `offered`, `chosen`, `details`,
/// `booked`), by `agent`, `calendar` and `way_in`; each step at most once per conversation.
pub const BOOKING_FUNNEL_TOTAL: &str = "slotline_booking_funnel_total";
/// Dialog turns that failed to reach the LLM endpoint and fell back, by `reason`.
pub const LLM_FAILURES_TOTAL: &str = "slotline_llm_failures_total";

/// Voice turn latency by `part` (`endpointing`, `stt`, `dialog`, `tts_first_audio`, `total`).
pub const TURN_LATENCY_SECONDS: &str = "slotline_turn_latency_seconds";
/// Times a caller spoke (or pressed a key) over the agent and the agent stopped.
pub const BARGE_INS_TOTAL: &str = "slotline_barge_ins_total";
/// Caller turns that ended, by `at`: `pause` (the words so far answered the question) or `silence`
/// (the full end-of-turn silence, or the longest utterance).
pub const TURN_ENDS_TOTAL: &str = "slotline_turn_ends_total";
/// Transcriptions started at a pause, by `result`: `used` (the turn ended there) or `discarded` (the
/// caller went on speaking).
pub const STT_SPECULATIONS_TOTAL: &str = "slotline_stt_speculations_total";
/// Silent turns after the no-input timeout.
pub const NO_INPUT_TIMEOUTS_TOTAL: &str = "slotline_no_input_timeouts_total";
/// Sounds the voice detector took for speech in which the recogniser found no words (line noise, a
/// breath, a door): not turns.
pub const WORDLESS_UTTERANCES_TOTAL: &str = "slotline_wordless_utterances_total";
/// Sentences the agents spoke in calls (cached prompts included), by `engine` of the call's voice
/// (`hibari`, `piper`, `espeak`, `openai`, `external`).
pub const TTS_SENTENCES_TOTAL: &str = "slotline_tts_sentences_total";
/// Speech engine failures by `engine` (`stt`, `tts`, `webrtc-vad`).
pub const SPEECH_ERRORS_TOTAL: &str = "slotline_speech_errors_total";
/// LiveKit SIP syncs by `result` (`changed`, `unchanged`, `error`).
pub const LIVEKIT_SYNCS_TOTAL: &str = "slotline_livekit_syncs_total";
/// LiveKit webhook deliveries by `event` and `result`.
pub const LIVEKIT_WEBHOOKS_TOTAL: &str = "slotline_livekit_webhooks_total";
/// Calls through LiveKit recorded (`event="started"`) and ended (`event="ended"`).
pub const LIVEKIT_CALLS_TOTAL: &str = "slotline_livekit_calls_total";
/// Jobs the worker was offered, accepted, declined, and how accepted ones ended, by `result`.
pub const LIVEKIT_JOBS_TOTAL: &str = "slotline_livekit_jobs_total";
/// Failed jobs by `reason` (`unknown_number`, `no_agent`, `agent_gone`, `livekit_error`, `media_error`).
pub const LIVEKIT_JOB_FAILURES_TOTAL: &str = "slotline_livekit_job_failures_total";
/// Jobs the worker runs now.
pub const LIVEKIT_JOBS_RUNNING: &str = "slotline_livekit_jobs_running";
/// The load the worker reports to LiveKit (running and promised jobs / `livekit.max_jobs`).
pub const LIVEKIT_WORKER_LOAD: &str = "slotline_livekit_worker_load";
/// 1 while the worker is registered with LiveKit.
pub const LIVEKIT_WORKER_CONNECTED: &str = "slotline_livekit_worker_connected";
/// Successful worker registrations (the first, and each one after a reconnect).
pub const LIVEKIT_WORKER_REGISTRATIONS_TOTAL: &str = "slotline_livekit_worker_registrations_total";
/// The mean time the caller's audio of each LiveKit call waited in libwebrtc's jitter buffer, in seconds.
pub const LIVEKIT_JITTER_BUFFER_SECONDS: &str = "slotline_livekit_jitter_buffer_seconds";

/// Counts a LiveKit SIP sync.
pub fn livekit_sync(result: &'static str) {
    metrics::counter!(LIVEKIT_SYNCS_TOTAL, "result" => result).increment(1);
}

/// Counts a LiveKit webhook delivery (`event` is one of LiveKit's event names or `other`).
pub fn livekit_webhook(event: &str, result: &'static str) {
    let event = match event {
        "room_started" | "room_finished" | "participant_joined" | "participant_left" | "track_published"
        | "track_unpublished" | "egress_started" | "egress_updated" | "egress_ended" | "ingress_started"
        | "ingress_ended" => event.to_string(),
        _ => "other".to_string(),
    };
    metrics::counter!(LIVEKIT_WEBHOOKS_TOTAL, "event" => event, "result" => result).increment(1);
}

/// Counts a LiveKit call starting or ending.
pub fn livekit_call(event: &'static str) {
    metrics::counter!(LIVEKIT_CALLS_TOTAL, "event" => event).increment(1);
}

/// Counts a job event of the worker.
pub fn livekit_job(result: &'static str) {
    metrics::counter!(LIVEKIT_JOBS_TOTAL, "result" => result).increment(1);
}

/// Counts a failed job.
pub fn livekit_job_failed(reason: &'static str) {
    livekit_job("failed");
    metrics::counter!(LIVEKIT_JOB_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// Sets the worker's running jobs and load.
pub fn livekit_worker_load(running: usize, load: f32) {
    metrics::gauge!(LIVEKIT_JOBS_RUNNING).set(running as f64);
    metrics::gauge!(LIVEKIT_WORKER_LOAD).set(f64::from(load));
}

/// Records the mean jitter buffer delay of a LiveKit call's caller audio.
pub fn livekit_jitter_buffer(mean_delay: Duration) {
    metrics::histogram!(LIVEKIT_JITTER_BUFFER_SECONDS).record(mean_delay.as_secs_f64());
}

/// Sets whether the worker is registered.
pub fn livekit_worker_connected(connected: bool) {
    metrics::gauge!(LIVEKIT_WORKER_CONNECTED).set(if connected { 1.0 } else { 0.0 });
}

/// Counts a worker registration.
pub fn livekit_worker_registered() {
    metrics::counter!(LIVEKIT_WORKER_REGISTRATIONS_TOTAL).increment(1);
}

/// Counts a received SIP request.
pub fn sip_request(method: &str) {
    metrics::counter!(SIP_REQUESTS_TOTAL, "method" => sip_method_label(method)).increment(1);
}

/// Counts a sent SIP response.
pub fn sip_response(method: &str, code: u16) {
    metrics::counter!(SIP_RESPONSES_TOTAL, "method" => sip_method_label(method), "code" => code.to_string())
        .increment(1);
}

/// Counts a request refused before it got any state.
pub fn sip_refused(method: &str, reason: &'static str) {
    metrics::counter!(SIP_REQUESTS_REFUSED_TOTAL, "method" => sip_method_label(method), "reason" => reason)
        .increment(1);
}

/// Counts a retransmitted request that its transaction absorbed.
pub fn sip_retransmission_absorbed(method: &str) {
    metrics::counter!(SIP_RETRANSMISSIONS_ABSORBED_TOTAL, "method" => sip_method_label(method)).increment(1);
}

/// Counts a SIP request slotline sent.
pub fn sip_request_sent(method: &'static str) {
    metrics::counter!(SIP_REQUESTS_SENT_TOTAL, "method" => method).increment(1);
}

/// Counts a response to a request slotline sent.
pub fn sip_response_received(method: &str, code: u16) {
    metrics::counter!(SIP_RESPONSES_RECEIVED_TOTAL, "method" => sip_method_label(method), "code" => code.to_string())
        .increment(1);
}

/// Unknown methods share one label value (labels must stay bounded).
fn sip_method_label(method: &str) -> &'static str {
    match method {
        "INVITE" => "INVITE",
        "ACK" => "ACK",
        "BYE" => "BYE",
        "CANCEL" => "CANCEL",
        "OPTIONS" => "OPTIONS",
        "REGISTER" => "REGISTER",
        "malformed" => "malformed",
        _ => "other",
    }
}

/// The `method` label of an admin API request: the standard methods by name, anything else (any token
/// is a valid HTTP method) as `other`, so clients cannot create new series.
pub fn http_method_label(method: &axum::http::Method) -> &'static str {
    match *method {
        axum::http::Method::GET => "GET",
        axum::http::Method::HEAD => "HEAD",
        axum::http::Method::POST => "POST",
        axum::http::Method::PUT => "PUT",
        axum::http::Method::PATCH => "PATCH",
        axum::http::Method::DELETE => "DELETE",
        axum::http::Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// A call was answered.
pub fn call_started() {
    metrics::counter!(CALLS_TOTAL, "outcome" => "answered").increment(1);
    metrics::gauge!(ACTIVE_CALLS).increment(1.0);
}

/// An INVITE was refused (or cancelled) with `reason`.
pub fn call_refused(reason: &'static str) {
    metrics::counter!(CALLS_TOTAL, "outcome" => reason).increment(1);
}

/// A `calls` row could not be queued for writing.
pub fn call_record_dropped() {
    metrics::counter!(CALL_RECORDS_DROPPED_TOTAL).increment(1);
}

/// A call ended.
pub fn call_ended(reason: &'static str, duration: Duration, answered: bool) {
    if answered {
        metrics::gauge!(ACTIVE_CALLS).decrement(1.0);
        metrics::histogram!(CALL_DURATION_SECONDS, "reason" => reason).record(duration.as_secs_f64());
    }
    metrics::counter!(CALLS_ENDED_TOTAL, "reason" => reason).increment(1);
}

/// Adds a finished call's RTP counters.
pub fn rtp_call_stats(received: u64, sent: u64, lost: u64, jitter_ms: f64) {
    metrics::counter!(RTP_PACKETS_TOTAL, "direction" => "received").increment(received);
    metrics::counter!(RTP_PACKETS_TOTAL, "direction" => "sent").increment(sent);
    metrics::counter!(RTP_PACKETS_TOTAL, "direction" => "lost").increment(lost);
    metrics::histogram!(RTP_JITTER_SECONDS).record(jitter_ms / 1000.0);
}

/// Counters of ignored RTP packets, looked up once per call so counting a packet is one atomic add.
#[derive(Clone)]
pub struct RtpIgnored {
    /// From an address that is not the caller's.
    pub source: metrics::Counter,
    /// From the caller's address with another SSRC.
    pub ssrc: metrics::Counter,
}

/// The counters of ignored RTP packets.
pub fn rtp_ignored() -> RtpIgnored {
    RtpIgnored {
        source: metrics::counter!(RTP_PACKETS_IGNORED_TOTAL, "reason" => "source"),
        ssrc: metrics::counter!(RTP_PACKETS_IGNORED_TOTAL, "reason" => "ssrc"),
    }
}

/// Counts a DTMF digit.
pub fn dtmf_event() {
    metrics::counter!(DTMF_EVENTS_TOTAL).increment(1);
}

/// Counts a DTMF digit dropped by a full turn queue.
pub fn dtmf_dropped() {
    metrics::counter!(DTMF_EVENTS_DROPPED_TOTAL).increment(1);
}

/// Records one calendar operation.
pub fn calendar_request(provider: &'static str, operation: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(CALENDAR_REQUESTS_TOTAL, "provider" => provider, "operation" => operation, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(CALENDAR_REQUEST_DURATION_SECONDS, "provider" => provider, "operation" => operation)
        .record(elapsed.as_secs_f64());
}

/// Records what the client-side Cal.com rate limit did to one request: `Ok(waited)` or `Err(refused)`.
pub fn calcom_rate_limit(acquired: Result<Duration, Duration>) {
    match acquired {
        Ok(waited) if waited.is_zero() => {}
        Ok(waited) => {
            metrics::counter!(CALCOM_RATE_LIMIT_TOTAL, "result" => "waited").increment(1);
            metrics::histogram!(CALCOM_RATE_LIMIT_WAIT_SECONDS).record(waited.as_secs_f64());
        }
        Err(_) => metrics::counter!(CALCOM_RATE_LIMIT_TOTAL, "result" => "refused").increment(1),
    }
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

/// Records one tool call.
pub fn tool_call(tool: &'static str, outcome: &'static str, elapsed: Duration) {
    metrics::counter!(TOOL_CALLS_TOTAL, "tool" => tool, "outcome" => outcome).increment(1);
    metrics::histogram!(TOOL_CALL_DURATION_SECONDS, "tool" => tool).record(elapsed.as_secs_f64());
}

/// Who a conversation's series count: the agent's name, its calendar kind (`calcom`, `builtin`, `demo`)
/// and the way in (`sip`, `livekit`, `chat`).
#[derive(Debug, Clone, Copy)]
pub struct ConversationLabels<'a> {
    /// The agent's name.
    pub agent: &'a str,
    /// The agent's calendar kind.
    pub calendar: &'static str,
    /// How the conversation reached slotline.
    pub way_in: &'static str,
}

/// Counts a finished conversation with its one outcome.
pub fn conversation(labels: ConversationLabels<'_>, outcome: &'static str) {
    metrics::counter!(CONVERSATIONS_TOTAL, "agent" => labels.agent.to_string(), "calendar" => labels.calendar,
        "way_in" => labels.way_in, "outcome" => outcome)
    .increment(1);
}

/// Counts a conversation reaching a funnel step.
pub fn funnel_step(labels: ConversationLabels<'_>, step: &'static str) {
    metrics::counter!(BOOKING_FUNNEL_TOTAL, "agent" => labels.agent.to_string(), "calendar" => labels.calendar,
        "way_in" => labels.way_in, "step" => step)
    .increment(1);
}

/// Exports the funnel `steps` and conversation `outcomes` series of one agent and way in at zero, so that
/// rates and ratios over them count the first conversations too (a series that first appears at 1 hides
/// that 1 from `rate()`).
pub fn conversation_series(labels: ConversationLabels<'_>, steps: &[&'static str], outcomes: &[&'static str]) {
    for step in steps {
        metrics::counter!(BOOKING_FUNNEL_TOTAL, "agent" => labels.agent.to_string(), "calendar" => labels.calendar,
            "way_in" => labels.way_in, "step" => *step)
        .increment(0);
    }
    for outcome in outcomes {
        metrics::counter!(CONVERSATIONS_TOTAL, "agent" => labels.agent.to_string(), "calendar" => labels.calendar,
            "way_in" => labels.way_in, "outcome" => *outcome)
        .increment(0);
    }
}

/// Counts an LLM turn that fell back to the apology sentence.
pub fn llm_failure(reason: &'static str) {
    metrics::counter!(LLM_FAILURES_TOTAL, "reason" => reason).increment(1);
}

/// Records one part of a voice turn (`endpointing`, `stt`, `dialog`, `tts_first_audio`, `total`).
pub fn turn_latency(part: &'static str, elapsed: Duration) {
    metrics::histogram!(TURN_LATENCY_SECONDS, "part" => part).record(elapsed.as_secs_f64());
}

/// Counts a barge-in.
pub fn barge_in() {
    metrics::counter!(BARGE_INS_TOTAL).increment(1);
}

/// Counts the end of a caller's spoken turn, `at` a pause or after the full silence.
pub fn turn_end(at: &'static str) {
    metrics::counter!(TURN_ENDS_TOTAL, "at" => at).increment(1);
}

/// Counts a transcription started at a pause: `used` or `discarded`.
pub fn stt_speculation(result: &'static str) {
    metrics::counter!(STT_SPECULATIONS_TOTAL, "result" => result).increment(1);
}

/// Counts a no-input timeout.
pub fn no_input() {
    metrics::counter!(NO_INPUT_TIMEOUTS_TOTAL).increment(1);
}

/// Counts a sound without words that was not taken as a turn.
pub fn wordless_utterance() {
    metrics::counter!(WORDLESS_UTTERANCES_TOTAL).increment(1);
}

/// Counts a sentence spoken in a call by a voice of `engine`.
pub fn tts_sentence(engine: &'static str) {
    metrics::counter!(TTS_SENTENCES_TOTAL, "engine" => engine).increment(1);
}

/// Counts a speech engine failure.
pub fn speech_error(engine: &'static str) {
    metrics::counter!(SPEECH_ERRORS_TOTAL, "engine" => engine).increment(1);
}

/// Latency buckets (seconds) for request-style histograms: 1 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Buckets (seconds) for call durations: 5 s to 1 h.
const CALL_BUCKETS: &[f64] = &[5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder (once) and returns the handle that renders `/metrics`.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(CALL_DURATION_SECONDS.into()), CALL_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), LATENCY_BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // A recorder installed earlier in this process (tests) keeps working; ours then renders nothing new.
            let _ = metrics::set_global_recorder(recorder);
            describe();
            zero();
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
    describe_counter!(CALCOM_RATE_LIMIT_TOTAL, "Cal.com requests held back by the client-side rate limit, by result.");
    describe_histogram!(
        CALCOM_RATE_LIMIT_WAIT_SECONDS,
        Unit::Seconds,
        "Time Cal.com requests waited for the client-side rate limit."
    );
    describe_counter!(CALCOM_WEBHOOKS_TOTAL, "Cal.com webhook deliveries by trigger and result.");
    describe_counter!(SIP_REQUESTS_TOTAL, "SIP requests received by method.");
    describe_counter!(SIP_RESPONSES_TOTAL, "SIP responses sent by method and code.");
    describe_counter!(SIP_REQUESTS_SENT_TOTAL, "SIP requests sent by slotline, by method.");
    describe_counter!(SIP_RESPONSES_RECEIVED_TOTAL, "Responses to SIP requests slotline sent, by method and code.");
    describe_counter!(
        SIP_RETRANSMISSIONS_ABSORBED_TOTAL,
        "Retransmitted SIP requests answered with the transaction's last response, by method."
    );
    describe_counter!(
        SIP_REQUESTS_REFUSED_TOTAL,
        "SIP requests refused before they got any state (no transaction, no database row), by method and reason."
    );
    describe_counter!(CALLS_TOTAL, "INVITEs by outcome: answered, or why they were refused.");
    describe_counter!(CALL_RECORDS_DROPPED_TOTAL, "Call rows dropped because the database writer fell behind.");
    describe_gauge!(ACTIVE_CALLS, "Calls in progress.");
    describe_histogram!(CALL_DURATION_SECONDS, Unit::Seconds, "Duration of answered calls by end reason.");
    describe_counter!(CALLS_ENDED_TOTAL, "Ended calls by reason.");
    describe_counter!(RTP_PACKETS_TOTAL, "RTP packets by direction (received, sent, lost).");
    describe_counter!(
        RTP_PACKETS_IGNORED_TOTAL,
        "RTP packets ignored because they were not the caller's stream, by reason (source, ssrc)."
    );
    describe_histogram!(RTP_JITTER_SECONDS, Unit::Seconds, "Interarrival jitter of the caller's RTP per call.");
    describe_counter!(DTMF_EVENTS_TOTAL, "DTMF digits received (RFC 4733).");
    describe_counter!(DTMF_EVENTS_DROPPED_TOTAL, "DTMF digits dropped because too many caller turns were waiting.");
    describe_counter!(TOOL_CALLS_TOTAL, "Dialog tool calls by tool and outcome.");
    describe_histogram!(TOOL_CALL_DURATION_SECONDS, Unit::Seconds, "Dialog tool call latency by tool.");
    describe_counter!(
        CONVERSATIONS_TOTAL,
        "Finished conversations (calls and chats) by agent, calendar, way in and outcome (booked, cancelled, \
         rescheduled, or why no booking was made)."
    );
    describe_counter!(
        BOOKING_FUNNEL_TOTAL,
        "Conversations that reached each booking funnel step, by agent, calendar and way in."
    );
    describe_counter!(LLM_FAILURES_TOTAL, "LLM dialog turns that fell back to the apology sentence, by reason.");
    describe_voice();
    describe_counter!(API_AUTH_FAILURES_TOTAL, "Admin API requests refused by authentication, by reason.");
    describe_livekit();
}

/// Describes the LiveKit metrics.
fn describe_livekit() {
    describe_counter!(LIVEKIT_SYNCS_TOTAL, "Syncs of numbers to LiveKit SIP by result.");
    describe_counter!(LIVEKIT_WEBHOOKS_TOTAL, "LiveKit webhook deliveries by event and result.");
    describe_counter!(LIVEKIT_CALLS_TOTAL, "Calls through LiveKit, started and ended.");
    describe_counter!(LIVEKIT_JOBS_TOTAL, "LiveKit worker jobs: offered, accepted, declined, succeeded, failed.");
    describe_counter!(LIVEKIT_JOB_FAILURES_TOTAL, "Failed LiveKit worker jobs by reason.");
    describe_gauge!(LIVEKIT_JOBS_RUNNING, "Jobs the LiveKit worker runs now.");
    describe_gauge!(LIVEKIT_WORKER_LOAD, "Load the LiveKit worker reports (jobs / livekit.max_jobs).");
    describe_gauge!(LIVEKIT_WORKER_CONNECTED, "1 while the LiveKit worker is registered.");
    describe_counter!(LIVEKIT_WORKER_REGISTRATIONS_TOTAL, "LiveKit worker registrations, reconnects included.");
    describe_histogram!(
        LIVEKIT_JITTER_BUFFER_SECONDS,
        Unit::Seconds,
        "Mean wait of the caller's audio in libwebrtc's jitter buffer per LiveKit call."
    );
}

/// The voice pipeline's metrics.
fn describe_voice() {
    describe_histogram!(
        TURN_LATENCY_SECONDS,
        Unit::Seconds,
        "Voice turn latency from the caller's last voiced audio to the agent's first audio, by part."
    );
    describe_counter!(BARGE_INS_TOTAL, "Times the caller spoke or pressed a key over the agent.");
    describe_counter!(NO_INPUT_TIMEOUTS_TOTAL, "Silent caller turns after the no-input timeout.");
    describe_counter!(WORDLESS_UTTERANCES_TOTAL, "Sounds without words (noise, a breath), not taken as turns.");
    describe_counter!(TURN_ENDS_TOTAL, "Caller turns that ended, at a pause or after the full silence.");
    describe_counter!(STT_SPECULATIONS_TOTAL, "Transcriptions started at a pause, used or discarded.");
    describe_counter!(SPEECH_ERRORS_TOTAL, "Speech engine failures by engine.");
    describe_counter!(TTS_SENTENCES_TOTAL, "Sentences the agents spoke in calls, by engine of the call's voice.");
}

/// Exports the series whose label values are known in advance at zero (or empty, for histograms), so a
/// quiet instance still answers every dashboard query and alert with a value rather than no data, and
/// the first events after a restart are seen by `rate()`.
fn zero() {
    metrics::counter!(CALLS_TOTAL, "outcome" => "answered").increment(0);
    metrics::gauge!(ACTIVE_CALLS).increment(0.0);
    for reason in ["caller_bye", "agent_bye", "media_timeout", "max_duration", "shutdown", "no_ack"] {
        metrics::counter!(CALLS_ENDED_TOTAL, "reason" => reason).increment(0);
        let _ = metrics::histogram!(CALL_DURATION_SECONDS, "reason" => reason);
    }
    for direction in ["received", "sent", "lost"] {
        metrics::counter!(RTP_PACKETS_TOTAL, "direction" => direction).increment(0);
    }
    let _ = metrics::histogram!(RTP_JITTER_SECONDS);
    metrics::counter!(DTMF_EVENTS_TOTAL).increment(0);
    for part in ["endpointing", "stt", "dialog", "tts_first_audio", "total"] {
        let _ = metrics::histogram!(TURN_LATENCY_SECONDS, "part" => part);
    }
    metrics::counter!(BARGE_INS_TOTAL).increment(0);
    metrics::counter!(NO_INPUT_TIMEOUTS_TOTAL).increment(0);
    metrics::counter!(WORDLESS_UTTERANCES_TOTAL).increment(0);
    for engine in ["stt", "tts"] {
        metrics::counter!(SPEECH_ERRORS_TOTAL, "engine" => engine).increment(0);
    }
    for engine in ["hibari", "piper", "espeak", "openai", "external"] {
        metrics::counter!(TTS_SENTENCES_TOTAL, "engine" => engine).increment(0);
    }
    for at in ["pause", "silence"] {
        metrics::counter!(TURN_ENDS_TOTAL, "at" => at).increment(0);
    }
    for method in ["INVITE", "ACK", "BYE", "CANCEL", "OPTIONS"] {
        metrics::counter!(SIP_REQUESTS_TOTAL, "method" => method).increment(0);
    }
    for code in [200u16, 503] {
        metrics::counter!(SIP_RESPONSES_TOTAL, "method" => "INVITE", "code" => code.to_string()).increment(0);
    }
    for outcome in ["call_limit", "rate_limited"] {
        metrics::counter!(CALLS_TOTAL, "outcome" => outcome).increment(0);
    }
    metrics::counter!(SIP_REQUESTS_REFUSED_TOTAL, "method" => "INVITE", "reason" => "rate_limited").increment(0);
    metrics::counter!(CALL_RECORDS_DROPPED_TOTAL).increment(0);
    for result in ["offered", "accepted", "declined", "succeeded", "failed"] {
        metrics::counter!(LIVEKIT_JOBS_TOTAL, "result" => result).increment(0);
    }
    for result in ["waited", "refused"] {
        metrics::counter!(CALCOM_RATE_LIMIT_TOTAL, "result" => result).increment(0);
    }
    let _ = metrics::histogram!(CALCOM_RATE_LIMIT_WAIT_SECONDS);
    for (method, endpoint) in CALCOM_REQUESTS {
        metrics::counter!(CALCOM_HTTP_REQUESTS_TOTAL, "method" => method, "endpoint" => endpoint, "status" => "429")
            .increment(0);
    }
    metrics::gauge!(LIVEKIT_JOBS_RUNNING).increment(0.0);
    metrics::gauge!(LIVEKIT_WORKER_LOAD).increment(0.0);
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
