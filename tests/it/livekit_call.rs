//! Spoken calls through LiveKit SIP end to end: the suite's spoken caller (sipp + its own RTP endpoint)
//! dials livekit-sip, LiveKit puts the call in a room and dispatches slotline's worker, which joins the
//! room through LiveKit's FFI library and runs the same voice pipeline as a direct SIP call. Everything
//! runs inside a network namespace of the test's own ([`crate::netns`]); SQLite only.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::json;
use slotline::config::{Config, LivekitDispatch};
use slotline::storage::{CallRecord, RecordFilter};

use crate::helpers::{setup_file, TestApp};
use crate::livekit_sip::Deployment;
use crate::netns::{run_inside, SERVER_IP};
use crate::speech::model_path;
use crate::voice_call::{bookings, hear, hibari_agent, natural_turns, summary, transcript, PATIENT_END_MS};
use crate::voice_caller::{self, CallLog, CallSpec, Cue, Turn};

const NUMBER: &str = "+15550100001";
const CALLER: &str = "+15551234567";
const WAIT: Duration = Duration::from_secs(60);

/// slotline's voice pipeline (whisper, the hibari voice) and the worker's FFI library.
fn voice(config: &mut Config) {
    config.voice.enabled = true;
    config.speech.model_path = Some(model_path());
    config.voice.end_silence_ms = PATIENT_END_MS;
    config.livekit.ffi_lib = Some(setup_file("IT_LIVEKIT_FFI", "livekit/liblivekit_ffi.so"));
    hibari_agent(config);
}

/// A LiveKit deployment with an agent (demo calendar) answering [`NUMBER`].
async fn deployment(configure: impl FnOnce(&mut Config)) -> (Deployment, String) {
    let _ = tracing_subscriber::fmt().with_env_filter("slotline=info").with_test_writer().try_init();
    let deployment = Deployment::start(|c| {
        voice(c);
        configure(c);
    })
    .await;
    let agent = deployment.app.create_agent("Through LiveKit").await;
    route(&deployment.app, &agent).await;
    deployment.wait_for_number(NUMBER).await;
    (deployment, agent)
}

async fn route(app: &TestApp, agent: &str) {
    let (status, body) = app.put(&format!("/v1/numbers/{NUMBER}"), json!({"agent_id": agent})).await;
    assert!(status == 200 || status == 201, "{body}");
}

async fn call(deployment: &Deployment, turns: Vec<Turn>) -> CallLog {
    let scenario = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/voice_caller.xml");
    let spec = CallSpec {
        local_ip: SERVER_IP,
        sip: deployment.sip.sip,
        caller: CALLER,
        service: NUMBER,
        scenario: &scenario,
        turns,
        deadline: Duration::from_secs(150),
    };
    voice_caller::call(spec).await
}

/// The call's row once it has ended.
async fn ended_call(app: &TestApp) -> CallRecord {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let calls = app.store.list_calls(&RecordFilter { limit: 10, ..Default::default() }).await.expect("calls");
        if let Some(call) = calls.into_iter().find(|c| c.ended_at.is_some()) {
            return call;
        }
        assert!(tokio::time::Instant::now() < deadline, "no call row ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn first_slot(app: &TestApp, agent: &str) -> chrono::DateTime<chrono::Utc> {
    let (status, body) = app.get(&format!("/v1/agents/{agent}/slots")).await;
    assert_eq!(status, 200, "{body}");
    body["slots"][0]["start"].as_str().expect("a free slot").parse().expect("RFC 3339")
}

const BOOKING: &[(&str, Cue)] = &[
    ("I'd like to schedule an appointment", Cue::AfterPrompt),
    ("the first one", Cue::AfterPrompt),
    ("My name is John Smith", Cue::AfterPrompt),
    ("I don't have an email, just use my phone number", Cue::AfterPrompt),
    ("yes", Cue::AfterPrompt),
    ("no, that's all, goodbye", Cue::AfterPrompt),
];

#[test]
fn a_spoken_booking_through_livekit_sip() {
    run_inside("livekit_call::inside::a_spoken_booking_through_livekit_sip");
}

#[test]
fn a_moved_number_books_with_its_new_agent_through_one_shared_rule() {
    run_inside("livekit_call::inside::a_moved_number_books_with_its_new_agent_through_one_shared_rule");
}

#[test]
fn keys_book_through_livekit_sip() {
    run_inside("livekit_call::inside::keys_book_through_livekit_sip");
}

#[test]
fn the_caller_interrupts_the_greeting_through_livekit_sip() {
    run_inside("livekit_call::inside::the_caller_interrupts_the_greeting_through_livekit_sip");
}

mod inside {
    use super::*;

    /// Given an agent on a number served by LiveKit SIP, when a caller books the first offered slot by
    /// voice, then the booking holds the slot, the name, the caller's number and the call; the call's row
    /// names its room; the caller heard the confirmation; and the agent hung up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "runs inside a network namespace through its outer test"]
    async fn a_spoken_booking_through_livekit_sip() {
        let (deployment, agent) = deployment(|_| {}).await;
        let app = &deployment.app;
        let first_offered = first_slot(app, &agent).await;
        let log = call(&deployment, natural_turns(BOOKING).await).await;
        let gaps: Vec<u128> = (0..log.turns.len()).filter_map(|i| log.turn_gap(i)).map(|g| g.as_millis()).collect();
        eprintln!("turn gaps through LiveKit on the wire (ms): {gaps:?}");
        let call = ended_call(app).await;
        let lines = transcript(app, &call, 12).await;
        assert!(log.error.is_none() && log.turns.len() == 6, "{}\ntranscript: {lines:#?}", summary(&log));
        assert_eq!(call.end_reason.as_deref(), Some("agent_bye"), "{call:?}");
        assert_eq!(log.sipp_code, 0, "LiveKit SIP hangs up once the agent did: {}", summary(&log));
        assert_eq!(call.transport, "livekit");
        assert!(call.room.as_deref().is_some_and(|r| r.starts_with("call-")), "{call:?}");
        assert_eq!((call.dialed.as_str(), call.caller.as_str()), (NUMBER, CALLER));

        let bookings = bookings(app).await;
        let [booking] = bookings.as_slice() else { panic!("one booking, found {bookings:#?}\n{lines:#?}") };
        assert_eq!(booking.agent_id.map(|a| a.to_string()), Some(agent.clone()));
        assert_eq!(booking.start_at, first_offered, "the first slot the agent offered");
        assert_eq!(booking.attendee_name, "John Smith");
        assert_eq!(booking.attendee_phone.as_deref(), Some(CALLER));
        assert_eq!(booking.source_call_id.as_deref(), Some(call.id.to_string().as_str()));

        // From the end of the "yes" on, not only until the caller's next turn: on a loaded machine a pause
        // between the reply's sentences can pass for its end, and the rest plays while the caller talks.
        let after_yes = log.turns[4].received_at_end;
        let reply =
            log.speech_between(after_yes, log.received.len(), Duration::from_secs(3), Duration::from_millis(300));
        let heard = hear(reply).await;
        eprintln!("the caller heard through LiveKit: {heard:?}");
        // "You're all set" opens the reply, where whisper tiny is weakest.
        assert!(heard.contains("john") && heard.contains("booked"), "the caller heard: {heard:?}");
        assert!(lines.iter().any(|(who, text)| who == "caller" && text.to_lowercase().contains("john smith")));
    }

    /// With one shared rule for the trunk (`livekit.dispatch = "shared"`), the worker resolves the agent
    /// from the dialed number: a number moved to another agent books in the other agent's calendar.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "runs inside a network namespace through its outer test"]
    async fn a_moved_number_books_with_its_new_agent_through_one_shared_rule() {
        let (deployment, first) = deployment(|c| c.livekit.dispatch = LivekitDispatch::Shared).await;
        let app = &deployment.app;
        let second = app.create_agent("The other agent").await;
        route(app, &second).await;
        let settings = deployment.settings();
        let sip = settings.sip();
        let rules = sip.list_sip_dispatch_rule(livekit_api::services::sip::ListSIPDispatchRuleFilter::All);
        let rules = rules.await.expect("rules");
        assert_eq!(rules.len(), 1, "one shared rule: {rules:?}");
        assert!(rules[0].numbers.is_empty());

        let log = call(&deployment, natural_turns(BOOKING).await).await;
        let call = ended_call(app).await;
        assert!(log.error.is_none(), "{}", summary(&log));
        assert_eq!(call.agent_id.map(|a| a.to_string()), Some(second.clone()));
        let bookings = bookings(app).await;
        let [booking] = bookings.as_slice() else { panic!("one booking, found {bookings:#?}") };
        assert_eq!(booking.agent_id.map(|a| a.to_string()), Some(second), "not the number's first agent {first}");
    }

    /// Keys pressed on the phone reach the agent through LiveKit SIP's DTMF packets: key 1 picks the first
    /// offered slot and key 1 confirms the read-back, and the booking is made.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "runs inside a network namespace through its outer test"]
    async fn keys_book_through_livekit_sip() {
        let (deployment, agent) = deployment(|_| {}).await;
        let app = &deployment.app;
        let first_offered = first_slot(app, &agent).await;
        let key = |text: &str, digit: char| Turn {
            text: text.into(),
            audio: Vec::new(),
            key: Some(digit),
            cue: Cue::AfterPrompt,
        };
        let mut script = natural_turns(&[("I'd like to schedule an appointment", Cue::AfterPrompt)]).await;
        script.push(key("key 1 for the first slot", '1'));
        script.extend(natural_turns(&[("My name is John Smith", Cue::AfterPrompt)]).await);
        script.extend(natural_turns(&[("I don't have an email, just use my phone number", Cue::AfterPrompt)]).await);
        script.push(key("key 1 to confirm", '1'));
        script.extend(natural_turns(&[("no, that's all, goodbye", Cue::AfterPrompt)]).await);
        let log = call(&deployment, script).await;
        let call = ended_call(app).await;
        let lines = transcript(app, &call, 8).await;
        assert!(log.error.is_none(), "{}\n{lines:#?}", summary(&log));

        assert!(app.metric("slotline_dtmf_events_total", &[]).await >= Some(2.0), "both keys arrived");
        let bookings = bookings(app).await;
        let [booking] = bookings.as_slice() else { panic!("one booking, found {bookings:#?}\n{lines:#?}") };
        assert_eq!(booking.start_at, first_offered, "key 1 picked the first slot");
        assert_eq!(booking.attendee_phone.as_deref(), Some(CALLER));
    }

    /// The caller speaking over the agent's greeting through LiveKit stops the agent's audio (the sink and
    /// the worker's paced half frame are dropped), and the agent answers the caller's words.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "runs inside a network namespace through its outer test"]
    async fn the_caller_interrupts_the_greeting_through_livekit_sip() {
        let (deployment, _agent) = deployment(|_| {}).await;
        let app = &deployment.app;
        let script = natural_turns(&[("no thanks, goodbye", Cue::WhileAgentSpeaks(Duration::from_millis(1500)))]).await;
        let log = call(&deployment, script).await;
        let call = ended_call(app).await;
        let lines = transcript(app, &call, 2).await;
        assert!(log.error.is_none(), "{}\n{lines:#?}", summary(&log));

        let stop = log.barge_in_stop(0, Duration::from_millis(500)).expect("the caller spoke over the agent");
        let speaking = log.turns[0].speaking().expect("the caller spoke");
        eprintln!("barge-in through LiveKit: the agent's audio stopped {stop:?} after the caller's onset");
        assert!(stop < speaking, "the agent talked on for {stop:?}, past the caller's {speaking:?} of speech");
        assert!(app.metric("slotline_barge_ins_total", &[]).await >= Some(1.0));
        assert_eq!(call.end_reason.as_deref(), Some("agent_bye"), "the agent said goodbye and hung up: {lines:#?}");
        assert!(bookings(app).await.is_empty());
    }
}
