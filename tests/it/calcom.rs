//! The Cal.com calendar through slotline's HTTP endpoints, against the local Cal.com double: init
//! (existing and auto-created event type), a bad key, slots, booking, a taken slot, cancel, reschedule,
//! 429 back-off, a timed-out booking POST that must not double-book, webhooks, and the global key
//! (`calcom.api_key`, alias `CAL_KEY`) beside agents' own keys.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use slotline::calendar::SystemClock;

use crate::calcom_double::{CalcomDouble, DoubleConfig};
use crate::helpers::{assert_error, spawn_app_with, Db, TestApp};

crate::on_every_backend!(
    creates_the_event_type_and_books_cancels_reschedules,
    uses_an_existing_event_type,
    a_bad_key_fails_initialisation,
    a_taken_slot_offers_alternatives,
    reads_back_off_on_429,
    a_timed_out_booking_is_found_not_repeated,
    webhooks_update_the_mirror_only_when_signed,
    an_agent_without_a_key_books_with_the_global_key,
    the_agents_own_key_wins_over_the_global_key,
);

const KEY: &str = "cal_live_double_key_0001";

async fn setup(db: Db, config: DoubleConfig, timeout_ms: u64) -> (TestApp, CalcomDouble) {
    let double = CalcomDouble::start(config).await;
    let base = double.base_url.clone();
    let app = spawn_app_with(db, Arc::new(SystemClock), move |c| {
        c.calcom.base_url = base;
        c.calcom.timeout_ms = timeout_ms;
    })
    .await;
    (app, double)
}

async fn calcom_agent(app: &TestApp, key: &str, slug: &str) -> String {
    let (status, body) = app
        .post(
            "/v1/agents",
            json!({"name": format!("Cal {slug}"), "timezone": "Europe/Berlin",
                   "calendar": {"kind": "calcom", "api_key": key, "event_type_slug": slug, "slot_minutes": 30, "webhook_secret": "whsec_test"}}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().expect("id").to_string()
}

async fn slot_ids(app: &TestApp, agent: &str) -> Vec<String> {
    let (status, list) = app.get(&format!("/v1/agents/{agent}/slots?range_days=7")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["timezone"], "Europe/Berlin");
    list["slots"].as_array().expect("slots").iter().filter_map(|s| s["id"].as_str().map(str::to_string)).collect()
}

fn assert_contract_kept(double: &CalcomDouble) {
    assert_eq!(double.violations(), Vec::<String>::new(), "every body matched openapi-v2.json");
    for request in double.requests() {
        let expected = match request.path.as_str() {
            "/v2/me" => None,
            p if p.starts_with("/v2/slots") => Some("2024-09-04"),
            p if p.starts_with("/v2/bookings") => Some("2024-08-13"),
            p if p.starts_with("/v2/event-types") => Some("2024-06-14"),
            _ => None,
        };
        assert_eq!(request.version.as_deref(), expected, "{} {}", request.method, request.path);
    }
}

async fn book(app: &TestApp, agent: &str, slot: &str) -> (u16, Value) {
    app.post(
        &format!("/v1/agents/{agent}/bookings"),
        json!({"slot_id": slot, "attendee_name": "Ada Lovelace", "attendee_email": "ada@example.com", "notes": "first visit"}),
    )
    .await
}

async fn creates_the_event_type_and_books_cancels_reschedules(db: Db) {
    let (app, double) = setup(db, DoubleConfig::default(), 5000).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    let before = slot_ids(&app, &agent).await;
    assert!(before.len() > 3);
    let created = double.event_types();
    assert_eq!(created.len(), 1, "the missing event type was created");
    assert_eq!(
        (created[0].slug.as_str(), created[0].length, created[0].title.as_str()),
        ("checkup", 30, "Cal checkup")
    );
    let stored = app.store.get_agent(agent.parse().expect("uuid")).await.expect("get").expect("agent");
    assert_eq!(stored.calendar.event_type_id, Some(created[0].id));
    assert_eq!(stored.calendar.username.as_deref(), Some("dr-double"));

    let (status, booking) = book(&app, &agent, &before[0]).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(booking["calendar_kind"], "calcom");
    let on_calcom = double.bookings();
    assert_eq!(on_calcom.len(), 1);
    assert_eq!(booking["external_uid"], on_calcom[0].uid.as_str());
    assert_eq!(on_calcom[0].attendee["timeZone"], "Europe/Berlin", "the agent's IANA zone, never an abbreviation");
    assert_eq!(on_calcom[0].attendee["name"], "Ada Lovelace", "the name, not the email");
    assert_eq!(on_calcom[0].metadata["slotline_booking_id"], booking["id"]);
    assert!(!slot_ids(&app, &agent).await.contains(&before[0]), "the booked slot is gone");

    let id = booking["id"].as_str().expect("id");
    let (status, cancelled) = app.post(&format!("/v1/bookings/{id}/cancel"), json!({"reason": "sick"})).await;
    assert_eq!(status, 200, "{cancelled}");
    assert_eq!(double.bookings()[0].status, "cancelled");
    assert_eq!(double.bookings()[0].cancellation_reason.as_deref(), Some("sick"));
    assert!(slot_ids(&app, &agent).await.contains(&before[0]), "it is back");

    let (_, again) = book(&app, &agent, &before[0]).await;
    let again_id = again["id"].as_str().expect("id");
    let (status, moved) = app.post(&format!("/v1/bookings/{again_id}/reschedule"), json!({"slot_id": before[2]})).await;
    assert_eq!(status, 201, "{moved}");
    let all = double.bookings();
    let new =
        all.iter().find(|b| Some(b.uid.as_str()) == moved["external_uid"].as_str()).expect("new booking on Cal.com");
    assert_eq!(new.rescheduled_from_uid.as_deref(), again["external_uid"].as_str(), "rescheduledFromUid chain");
    let free = slot_ids(&app, &agent).await;
    assert!(free.contains(&before[0]) && !free.contains(&before[2]), "reschedule moved it");
    assert_contract_kept(&double);
    app.stop().await;
}

async fn uses_an_existing_event_type(db: Db) {
    let config = DoubleConfig { event_types: vec![("checkup".into(), 30)], ..DoubleConfig::default() };
    let (app, double) = setup(db, config, 5000).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    assert!(!slot_ids(&app, &agent).await.is_empty());
    assert!(!double.requests().iter().any(|r| r.method == "POST" && r.path == "/v2/event-types"), "nothing created");
    assert_eq!(double.event_types().len(), 1);
    // Initialised once: a second listing goes straight to /v2/slots.
    slot_ids(&app, &agent).await;
    assert_eq!(double.requests().iter().filter(|r| r.path == "/v2/me").count(), 1);
    assert_contract_kept(&double);
    app.stop().await;
}

async fn a_bad_key_fails_initialisation(db: Db) {
    let (app, double) = setup(db, DoubleConfig::default(), 5000).await;
    let agent = calcom_agent(&app, "cal_live_wrong_key_9999", "checkup").await;
    let (status, body) = app.get(&format!("/v1/agents/{agent}/slots")).await;
    assert_error(status, &body, 502, "calendar_init_failed", None);
    assert_eq!(body["error"]["message"], "Failed to initialize Cal.com calendar: the API key was rejected");
    assert!(!body.to_string().contains("wrong_key"), "the key is never echoed");
    assert!(double.event_types().is_empty());
    let metrics = app.http.get(&app.metrics_url).send().await.expect("scrape").text().await.expect("text");
    assert!(
        metrics.contains(
            r#"slotline_calendar_requests_total{provider="calcom",operation="list_slots",outcome="calendar_error"} 1"#
        ),
        "{metrics}"
    );
    app.stop().await;
}

async fn a_taken_slot_offers_alternatives(db: Db) {
    let config = DoubleConfig { event_types: vec![("checkup".into(), 30)], ..DoubleConfig::default() };
    let (app, double) = setup(db, config, 5000).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    let (status, list) = app.get(&format!("/v1/agents/{agent}/slots?range_days=7")).await;
    assert_eq!(status, 200);
    let first = &list["slots"][0];
    // Someone books the same time on Cal.com directly.
    let start = chrono::DateTime::parse_from_rfc3339(first["start"].as_str().expect("start"))
        .expect("start")
        .with_timezone(&chrono::Utc);
    double.add_booking(double.event_types()[0].id, start, 30, "other@example.com");
    let (status, body) = book(&app, &agent, first["id"].as_str().expect("id")).await;
    assert_error(status, &body, 409, "slot_taken", None);
    // The host's own calendar blocks another offered time.
    let second = &list["slots"][1];
    let start2 = chrono::DateTime::parse_from_rfc3339(second["start"].as_str().expect("start"))
        .expect("start")
        .with_timezone(&chrono::Utc);
    double.block_time(start2, start2 + chrono::Duration::minutes(30));
    let (status, blocked) = book(&app, &agent, second["id"].as_str().expect("id")).await;
    assert_error(status, &blocked, 409, "slot_taken", None);
    let alternatives = body["error"]["alternatives"].as_array().expect("alternatives");
    assert!(!alternatives.is_empty() && alternatives.iter().all(|a| a["id"] != first["id"]), "{body}");
    assert_eq!(double.bookings().len(), 1, "no booking was made for us");
    assert_contract_kept(&double);
    app.stop().await;
}

async fn reads_back_off_on_429(db: Db) {
    let config = DoubleConfig { event_types: vec![("checkup".into(), 30)], ..DoubleConfig::default() };
    let (app, double) = setup(db, config, 5000).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    double.fail_next("GET /v2/slots", 429, 1);
    double.fail_next("GET /v2/slots", 503, 1);
    assert!(!slot_ids(&app, &agent).await.is_empty(), "the third try succeeds");
    let statuses: Vec<u16> = double.requests().iter().filter(|r| r.path == "/v2/slots").map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 503, 200]);
    assert_contract_kept(&double);
    app.stop().await;
}

async fn a_timed_out_booking_is_found_not_repeated(db: Db) {
    let config = DoubleConfig { event_types: vec![("checkup".into(), 30)], ..DoubleConfig::default() };
    let (app, double) = setup(db, config, 800).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    let slots = slot_ids(&app, &agent).await;
    // Cal.com books, then answers too late for slotline's timeout.
    double.set_latency("POST /v2/bookings", Duration::from_millis(1500));
    let (status, booking) = book(&app, &agent, &slots[0]).await;
    assert_eq!(status, 201, "{booking}");
    let on_calcom = double.bookings();
    assert_eq!(on_calcom.len(), 1, "a slow Cal.com never yields two bookings: {on_calcom:?}");
    assert_eq!(booking["external_uid"], on_calcom[0].uid.as_str());
    let posts = double.requests().iter().filter(|r| r.method == "POST" && r.path == "/v2/bookings").count();
    assert_eq!(posts, 1, "looked up before any retry");
    assert!(double.requests().iter().any(|r| r.method == "GET" && r.path == "/v2/bookings"));
    let (_, listed) = app.get(&format!("/v1/bookings?agent_id={agent}")).await;
    assert_eq!(listed["bookings"].as_array().map(Vec::len), Some(1));
    assert_contract_kept(&double);
    app.stop().await;
}

async fn webhooks_update_the_mirror_only_when_signed(db: Db) {
    let config = DoubleConfig { event_types: vec![("checkup".into(), 30)], ..DoubleConfig::default() };
    let (app, double) = setup(db, config, 5000).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    let slots = slot_ids(&app, &agent).await;
    let (_, booking) = book(&app, &agent, &slots[0]).await;
    let uid = booking["external_uid"].as_str().expect("uid").to_string();
    let url = app.url(&format!("/v1/webhooks/calcom/{agent}"));
    let deliver = |body: Value, signature: String| {
        let http = app.http.clone();
        let url = url.clone();
        async move {
            let bytes = serde_json::to_vec(&body).expect("json");
            let response = http
                .post(url)
                .header("content-type", "application/json")
                .header("x-cal-signature-256", signature)
                .body(bytes)
                .send()
                .await
                .expect("send");
            (response.status().as_u16(), response.json::<Value>().await.expect("json"))
        }
    };

    // The host cancels on Cal.com: a forged delivery changes nothing, a signed one updates the mirror.
    double.cancel_on_calcom(&uid);
    let cancelled = double.webhook_payload("BOOKING_CANCELLED", &uid);
    let bytes = serde_json::to_vec(&cancelled).expect("json");
    let (status, body) = deliver(cancelled.clone(), CalcomDouble::sign_webhook("not-the-secret", &bytes)).await;
    assert_error(status, &body, 401, "unauthorized", None);
    let (status, body) = deliver(cancelled.clone(), "no-secret-provided".into()).await;
    assert_error(status, &body, 401, "unauthorized", None);
    let id = booking["id"].as_str().expect("id");
    let mirror = app.store.get_booking(id.parse().expect("uuid")).await.expect("get").expect("booking");
    assert_eq!(mirror.status, "confirmed", "nothing changed");
    let (status, body) = deliver(cancelled.clone(), CalcomDouble::sign_webhook("whsec_test", &bytes)).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("cancelled")));
    let mirror = app.store.get_booking(id.parse().expect("uuid")).await.expect("get").expect("booking");
    assert_eq!(mirror.status, "cancelled");
    let (_, body) = deliver(cancelled.clone(), CalcomDouble::sign_webhook("whsec_test", &bytes)).await;
    assert_eq!(body["result"], "ignored", "redelivery is harmless");

    // A booking made on Cal.com itself appears in the mirror.
    let start = chrono::Utc::now() + chrono::Duration::days(2);
    let walk_in = double.add_booking(double.event_types()[0].id, start, 30, "walkin@example.com");
    let created = double.webhook_payload("BOOKING_CREATED", &walk_in.uid);
    let bytes = serde_json::to_vec(&created).expect("json");
    let (status, body) = deliver(created, CalcomDouble::sign_webhook("whsec_test", &bytes)).await;
    assert_eq!((status, body["result"].as_str()), (200, Some("created")));
    let (_, listed) = app.get(&format!("/v1/bookings?agent_id={agent}")).await;
    let mirrored: Vec<&Value> = listed["bookings"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|b| b["external_uid"] == walk_in.uid.as_str())
        .collect();
    assert_eq!(mirrored.len(), 1);
    assert_eq!(mirrored[0]["attendee_email"], "walkin@example.com");
    app.stop().await;
}

const GLOBAL_KEY: &str = "cal_live_global_key_4242";

/// slotline with the global Cal.com key set, against a double that accepts `accepted` keys.
async fn setup_with_global_key(db: Db, accepted: &[&str]) -> (TestApp, CalcomDouble) {
    let config = DoubleConfig { api_keys: accepted.iter().map(|k| k.to_string()).collect(), ..DoubleConfig::default() };
    let double = CalcomDouble::start(config).await;
    let base = double.base_url.clone();
    let app = spawn_app_with(db, Arc::new(SystemClock), move |c| {
        c.calcom.base_url = base;
        c.calcom.api_key = Some(slotline::config::Secret::new(GLOBAL_KEY));
    })
    .await;
    (app, double)
}

fn keys_sent(double: &CalcomDouble) -> Vec<Option<String>> {
    let mut keys: Vec<Option<String>> = double.requests().into_iter().map(|r| r.key).collect();
    keys.dedup();
    keys
}

async fn an_agent_without_a_key_books_with_the_global_key(db: Db) {
    let (app, double) = setup_with_global_key(db, &[GLOBAL_KEY]).await;
    let (status, created) = app
        .post(
            "/v1/agents",
            json!({"name": "Global", "timezone": "Europe/Berlin",
                   "calendar": {"kind": "calcom", "event_type_slug": "checkup"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["calendar"]["has_api_key"], false);
    assert_eq!(created["calendar"]["api_key_source"], "global");
    assert!(created["calendar"]["api_key_last4"].is_null());
    let agent = created["id"].as_str().expect("id");
    let slots = slot_ids(&app, agent).await;
    let (status, booking) = book(&app, agent, &slots[0]).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(double.bookings().len(), 1);
    assert_eq!(keys_sent(&double), vec![Some(GLOBAL_KEY.to_string())], "every request carried the global key");
    let (_, listed) = app.get("/v1/agents").await;
    assert!(!listed.to_string().contains("global_key"), "the global key is never returned: {listed}");
    assert_contract_kept(&double);
    app.stop().await;
}

async fn the_agents_own_key_wins_over_the_global_key(db: Db) {
    // The double takes either key, so only the key actually sent tells which one slotline chose.
    let (app, double) = setup_with_global_key(db, &[KEY, GLOBAL_KEY]).await;
    let agent = calcom_agent(&app, KEY, "checkup").await;
    let (_, view) = app.get(&format!("/v1/agents/{agent}")).await;
    assert_eq!(view["calendar"]["api_key_source"], "agent");
    assert_eq!(view["calendar"]["api_key_last4"], "0001");
    let slots = slot_ids(&app, &agent).await;
    let (status, booking) = book(&app, &agent, &slots[0]).await;
    assert_eq!(status, 201, "{booking}");
    assert_eq!(keys_sent(&double), vec![Some(KEY.to_string())], "every request carried the agent's own key");

    // When the agent forgets its own key, it books with the global one.
    let (status, body) = app
        .patch(
            &format!("/v1/agents/{agent}"),
            json!({"calendar": {"kind": "calcom", "event_type_slug": "checkup", "api_key": KEY, "use_global_key": true}}),
        )
        .await;
    assert_error(status, &body, 422, "validation_failed", Some("calendar.use_global_key"));
    let (status, view) = app
        .patch(
            &format!("/v1/agents/{agent}"),
            json!({"calendar": {"kind": "calcom", "event_type_slug": "checkup", "use_global_key": true}}),
        )
        .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(
        (view["calendar"]["api_key_source"].as_str(), view["calendar"]["has_api_key"].as_bool()),
        (Some("global"), Some(false))
    );
    let before = double.requests().len();
    let slots = slot_ids(&app, &agent).await;
    let (status, booking) = book(&app, &agent, &slots[0]).await;
    assert_eq!(status, 201, "{booking}");
    let later: Vec<_> = double.requests().into_iter().skip(before).map(|r| r.key).collect();
    assert!(!later.is_empty() && later.iter().all(|k| k.as_deref() == Some(GLOBAL_KEY)), "{later:?}");
    app.stop().await;
}

/// The seed's `CAL_KEY`: `slotline chat` (the real binary, its configuration from the environment) books
/// for a keyless Cal.com agent with the key in `CAL_KEY` and nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cal_key_in_the_environment_books_for_a_keyless_agent() {
    const CAL_KEY: &str = "cal_live_seed_cal_key_77";
    // The server only stores the agent; the double accepts nothing but the CAL_KEY value.
    let (app, double) = setup_with_global_key(Db::Sqlite, &[CAL_KEY]).await;
    let (status, created) = app
        .post(
            "/v1/agents",
            json!({"name": "Seed", "timezone": "Europe/Berlin", "calendar": {"kind": "calcom", "event_type_slug": "checkup"}}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let script =
        "I'd like to schedule an appointment\nthe first one\nJane Doe\nj a n e at example dot com\nyes\nno thanks\n";
    let mut child = crate::helpers::command()
        .current_dir(app.data_dir())
        .env("SLOTLINE_DATA_DIR", app.data_dir())
        .env("SLOTLINE_DATABASE__URL", app.database_url())
        .env("SLOTLINE_CALCOM__BASE_URL", &double.base_url)
        .env("CAL_KEY", CAL_KEY)
        .args(["chat", "--agent", "Seed"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run slotline chat");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), script.as_bytes()).expect("write script");
    let output = tokio::task::spawn_blocking(move || child.wait_with_output()).await.expect("join").expect("chat ran");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("You're all set, Jane"), "{stdout}");
    assert_eq!(double.bookings().len(), 1, "booked on Cal.com: {stdout}");
    assert_eq!(keys_sent(&double), vec![Some(CAL_KEY.to_string())], "every request carried CAL_KEY");
    assert!(!stdout.contains(CAL_KEY) && !stderr.contains(CAL_KEY), "the key is never printed");
    app.stop().await;
}
