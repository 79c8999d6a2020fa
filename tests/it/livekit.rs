//! The LiveKit control plane against a real livekit-server with Redis: number sync to LiveKit SIP, agent
//! join tokens, LiveKit's signed webhooks, and the agent worker's job protocol.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt as _;
use livekit_api::access_token::{AccessToken, TokenVerifier};
use livekit_api::services::room::CreateRoomOptions;
use livekit_api::services::sip::{ListSIPDispatchRuleFilter, ListSIPInboundTrunkFilter};
use livekit_protocol as proto;
use prost::Message as _;
use serde_json::json;
use slotline::calendar::SystemClock;
use slotline::livekit::job::{JobError, JobRunner, ResolvedJob, RoomWatch};
use slotline::livekit::sync::{self, Change};
use slotline::livekit::worker::Worker;
use slotline::livekit::LivekitSettings;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::helpers::{command, free_port, spawn_app, spawn_app_with, Db, TestApp};
use crate::livekit_rig::{eventually, LivekitServer, Redis};

crate::on_every_backend!(
    sync_makes_livekit_sip_route_what_slotline_routes,
    agent_tokens_carry_the_agent_and_join_the_real_server,
    webhooks_verify_and_record_calls,
    the_worker_takes_jobs_within_its_capacity_and_comes_back_after_a_server_restart,
);

const WAIT: Duration = Duration::from_secs(60);

fn settings(server: &LivekitServer, configure: impl FnOnce(&mut slotline::config::LivekitConfig)) -> LivekitSettings {
    let mut config = slotline::config::Config::default();
    server.configure(&mut config);
    configure(&mut config.livekit);
    LivekitSettings::from_config(&config.livekit).expect("livekit settings")
}

async fn route(app: &TestApp, number: &str, agent: &str) {
    let (status, body) = app.put(&format!("/v1/numbers/{number}"), json!({"agent_id": agent})).await;
    assert!(status == 200 || status == 201, "{body}");
}

/// The slotline-owned rules by the number they route, with the agent their dispatch carries.
async fn owned_rules(settings: &LivekitSettings) -> BTreeMap<String, proto::SipDispatchRuleInfo> {
    let rules = settings.sip().list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All).await.expect("list rules");
    rules.into_iter().filter(|r| r.metadata.contains("slotline")).map(|r| (r.numbers.join(","), r)).collect()
}

fn dispatched_agent(rule: &proto::SipDispatchRuleInfo) -> String {
    rule.room_config.as_ref().map(|c| c.agents[0].metadata.clone()).unwrap_or_default()
}

async fn sync_makes_livekit_sip_route_what_slotline_routes(db: Db) {
    // Given slotline (without LiveKit configured: the test drives every sync) with two agents and numbers.
    let redis = Redis::start().await;
    let server = LivekitServer::prepare(&redis, None).start().await;
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.demo.enabled = false).await;
    let (a, b) = (app.create_agent("Alpha").await, app.create_agent("Beta").await);
    route(&app, "+15550100001", &a).await;
    route(&app, "+15550100002", &a).await;
    let settings = settings(&server, |_| {});
    let sip = settings.sip();

    // --dry-run plans the trunk and two rules and changes nothing.
    let output = command()
        .args(["--database-url", app.database_url(), "--data-dir"])
        .arg(app.data_dir())
        .args(["livekit", "sync", "--dry-run"])
        .env("SLOTLINE_LIVEKIT__URL", server.ws_url())
        .env("SLOTLINE_LIVEKIT__API_KEY", &server.api_key)
        .env("SLOTLINE_LIVEKIT__API_SECRET", &server.api_secret)
        .output()
        .expect("run slotline livekit sync --dry-run");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("would create inbound trunk") && stdout.contains("3 change(s) planned"), "{stdout}");
    assert!(sip.list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All).await.expect("trunks").is_empty());
    assert!(owned_rules(&settings).await.is_empty(), "a dry run creates nothing");

    // The first sync creates the trunk with both numbers and one rule per number, read back from LiveKit.
    let first = sync::run(&settings, app.store.as_ref(), false).await.expect("first sync");
    assert_eq!(first.changes.len(), 3, "{:?}", first.changes);
    let trunks = sip.list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All).await.expect("trunks");
    assert_eq!(trunks.len(), 1);
    let mut numbers = trunks[0].numbers.clone();
    numbers.sort();
    assert_eq!(numbers, ["+15550100001", "+15550100002"]);
    let rules = owned_rules(&settings).await;
    assert_eq!(rules.keys().collect::<Vec<_>>(), ["+15550100001", "+15550100002"]);
    for rule in rules.values() {
        assert_eq!(rule.trunk_ids, [trunks[0].sip_trunk_id.clone()]);
        assert!(rule.inbound_numbers.is_empty(), "the dialed number is filtered, not the caller's");
        assert!(dispatched_agent(rule).contains(&a), "{rule:?}");
        assert_eq!(rule.room_config.as_ref().map(|c| c.agents[0].agent_name.as_str()), Some("slotline"));
    }

    // A second sync changes nothing.
    let second = sync::run(&settings, app.store.as_ref(), false).await.expect("second sync");
    assert!(second.changes.is_empty(), "{:?}", second.changes);
    assert_eq!(owned_rules(&settings).await, rules);

    // A rule made by hand in LiveKit (on a trunk of its own) survives every sync.
    let hand_trunk = sip
        .create_sip_inbound_trunk("by hand".into(), vec!["+15550199999".into()], Default::default())
        .await
        .expect("hand trunk");
    let hand_rule = sip
        .create_sip_dispatch_rule(
            proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
                room_prefix: "hand-".into(),
                ..Default::default()
            }),
            livekit_api::services::sip::CreateSIPDispatchRuleOptions {
                name: "made by hand".into(),
                trunk_ids: vec![hand_trunk.sip_trunk_id.clone()],
                ..Default::default()
            },
        )
        .await
        .expect("hand rule");

    // Moving a number to another agent changes exactly its rule.
    route(&app, "+15550100002", &b).await;
    let moved = sync::run(&settings, app.store.as_ref(), false).await.expect("sync after the move");
    assert_eq!(moved.changes.len(), 1, "{:?}", moved.changes);
    assert!(matches!(&moved.changes[0], Change::UpdateRule(r) if r.numbers == ["+15550100002"]));
    let after = owned_rules(&settings).await;
    assert!(dispatched_agent(&after["+15550100002"]).contains(&b));
    assert_eq!(after["+15550100001"], rules["+15550100001"], "the other rule is untouched");

    let all = sip.list_sip_dispatch_rule(ListSIPDispatchRuleFilter::All).await.expect("rules");
    assert!(all.iter().any(|r| r.sip_dispatch_rule_id == hand_rule.sip_dispatch_rule_id), "hand rule survives");
    let trunks = sip.list_sip_inbound_trunk(ListSIPInboundTrunkFilter::All).await.expect("trunks");
    assert!(trunks.iter().any(|t| t.sip_trunk_id == hand_trunk.sip_trunk_id), "hand trunk survives");
}

/// What the real server answers first on its `/rtc` signal socket for `token`.
async fn join_response(server: &LivekitServer, token: &str) -> proto::JoinResponse {
    let url = format!("{}/rtc?access_token={token}&protocol=16&auto_subscribe=1", server.ws_url());
    let (mut socket, _) = tokio_tungstenite::connect_async(url).await.expect("signal socket");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next()).await.expect("a signal message").expect("open");
        if let tokio_tungstenite::tungstenite::Message::Binary(bytes) = frame.expect("frame") {
            let response = proto::SignalResponse::decode(bytes.as_ref()).expect("signal response");
            if let Some(proto::signal_response::Message::Join(join)) = response.message {
                return join;
            }
        }
    }
}

async fn agent_tokens_carry_the_agent_and_join_the_real_server(db: Db) {
    let redis = Redis::start().await;
    let server = LivekitServer::prepare(&redis, None).start().await;
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| server.configure(c)).await;
    let cal_key = "cal_live_0123456789abcdefWXYZ";
    let (status, agent) = app
        .post(
            "/v1/agents",
            json!({"name": "Berlin Dental", "timezone": "Europe/Berlin",
                   "calendar": {"kind": "calcom", "api_key": cal_key, "event_type_slug": "checkup", "slot_minutes": 20}}),
        )
        .await;
    assert_eq!(status, 201, "{agent}");
    let id = agent["id"].as_str().expect("id");

    let (status, body) =
        app.post(&format!("/v1/agents/{id}/livekit-token"), json!({"identity": "web-caller-1", "name": "Ada"})).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.to_string().contains(cal_key), "the Cal.com key never leaves slotline: {body}");
    let token = body["token"].as_str().expect("token");
    let room = body["room"].as_str().expect("room");
    assert_eq!(body["url"], server.ws_url());

    // The token verifies with the server's key and carries the agent and its calendar, never the key.
    let claims = TokenVerifier::with_api_key(&server.api_key, &server.api_secret).verify(token).expect("verifies");
    assert_eq!(claims.sub, "web-caller-1");
    assert_eq!(claims.video.room, room);
    let config = claims.room_config.expect("room config");
    assert_eq!(config.agents.len(), 1);
    assert_eq!(config.agents[0].agent_name, "slotline");
    let dispatch: serde_json::Value = serde_json::from_str(&config.agents[0].metadata).expect("JSON metadata");
    assert_eq!(dispatch["agent_id"], id);
    assert_eq!(
        dispatch["calendar"],
        json!({"kind": "calcom", "event_type_slug": "checkup", "timezone": "Europe/Berlin", "slot_minutes": 20})
    );
    let payload = token.split('.').nth(1).expect("payload");
    let decoded = base64_decode(payload);
    assert!(!decoded.contains(cal_key) && !decoded.contains("cal_live"), "{decoded}");

    // The real server lets that identity join that room.
    let join = join_response(&server, token).await;
    assert_eq!(join.participant.as_ref().map(|p| p.identity.as_str()), Some("web-caller-1"));
    assert_eq!(join.room.as_ref().map(|r| r.name.as_str()), Some(room));

    // Analysts cannot sign tokens; bad input names the field; an unknown agent is 404.
    let path = format!("/v1/agents/{id}/livekit-token");
    let (status, _) =
        app.call(reqwest::Method::POST, &path, Some(&app.analyst.clone()), Some(json!({"identity": "x"}))).await;
    assert_eq!(status, 403);
    let (status, body) = app.post(&path, json!({"identity": "x", "ttl": 5})).await;
    crate::helpers::assert_error(status, &body, 422, "validation_failed", Some("ttl"));
    let (status, body) = app.post(&path, json!({"identity": ""})).await;
    crate::helpers::assert_error(status, &body, 422, "validation_failed", Some("identity"));
    let (status, _) = app.post(&format!("/v1/agents/{}/livekit-token", Uuid::new_v4()), json!({"identity": "x"})).await;
    assert_eq!(status, 404);

    // Without LiveKit configured the endpoint says so.
    let plain = spawn_app(db).await;
    let other = plain.create_agent("Plain").await;
    let (status, body) = plain.post(&format!("/v1/agents/{other}/livekit-token"), json!({"identity": "x"})).await;
    crate::helpers::assert_error(status, &body, 503, "not_configured", None);
}

fn base64_decode(segment: &str) -> String {
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(segment).expect("base64url");
    String::from_utf8(bytes).expect("UTF-8")
}

/// Posts `body` to slotline's LiveKit webhook, signed as LiveKit signs (a JWT with the body's SHA-256)
/// for `signed_body`.
async fn deliver(app: &TestApp, server: &LivekitServer, body: &str, signed_body: &str) -> (u16, serde_json::Value) {
    use base64::Engine as _;
    use sha2::Digest as _;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(signed_body.as_bytes()));
    let jwt = AccessToken::with_api_key(&server.api_key, &server.api_secret).with_sha256(&hash).to_jwt().expect("jwt");
    let response = app
        .http
        .post(app.url("/v1/webhooks/livekit"))
        .header("Authorization", jwt)
        .header("Content-Type", "application/webhook+json")
        .body(body.to_string())
        .send()
        .await
        .expect("deliver");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

fn sip_event(event: &str, room_sid: &str) -> String {
    let participant = proto::ParticipantInfo {
        identity: "sip_+15557654321".into(),
        kind: proto::participant_info::Kind::Sip as i32,
        attributes: [
            ("sip.trunkPhoneNumber", "+15550100001"),
            ("sip.phoneNumber", "+15557654321"),
            ("sip.callID", "SCL_test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect(),
        ..Default::default()
    };
    let event = proto::WebhookEvent {
        event: event.into(),
        room: Some(proto::Room { sid: room_sid.into(), name: "call-_+15557654321_abc".into(), ..Default::default() }),
        participant: Some(participant),
        id: Uuid::new_v4().to_string(),
        created_at: chrono::Utc::now().timestamp(),
        ..Default::default()
    };
    serde_json::to_string(&event).expect("event JSON")
}

async fn webhooks_verify_and_record_calls(db: Db) {
    // Given slotline and a LiveKit server that posts its webhooks to slotline.
    let redis = Redis::start().await;
    let api_port = free_port();
    let server = LivekitServer::prepare(&redis, Some(&format!("http://127.0.0.1:{api_port}/v1/webhooks/livekit")));
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| {
        server.configure(c);
        c.api.addr = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    })
    .await;
    let server = server.start().await;
    let agent = app.create_agent("Hooked").await;
    route(&app, "+15550100001", &agent).await;

    // The real server's own deliveries for a room created through its API arrive and verify.
    let settings = settings(&server, |_| {});
    let rooms = settings.rooms();
    rooms.create_room("hooked-room", CreateRoomOptions::default()).await.expect("create room");
    eventually(WAIT, "room_started from the server", || async {
        app.metric("slotline_livekit_webhooks_total", &["event=\"room_started\"", "result=\"ignored\""]).await.is_some()
    })
    .await;
    rooms.delete_room("hooked-room").await.expect("delete room");
    eventually(WAIT, "room_finished from the server", || async {
        app.metric("slotline_livekit_webhooks_total", &["event=\"room_finished\""]).await.is_some()
    })
    .await;

    // A SIP participant joining is a call: the numbers from its attributes, the room kept, the agent routed.
    let joined = sip_event("participant_joined", "RM_sip1");
    let (status, body) = deliver(&app, &server, &joined, &joined).await;
    assert_eq!((status, &body["result"]), (200, &json!("call_started")), "{body}");
    let call = app.store.find_room_call("RM_sip1").await.expect("query").expect("a calls row");
    assert_eq!(call.transport, "livekit");
    assert_eq!(call.dialed, "+15550100001");
    assert_eq!(call.caller, "+15557654321");
    assert_eq!(call.sip_call_id, "SCL_test");
    assert_eq!(call.room.as_deref(), Some("call-_+15557654321_abc"));
    assert_eq!(call.agent_id.map(|a| a.to_string()).as_deref(), Some(agent.as_str()));
    let (_, calls) = app.get("/v1/calls").await;
    assert_eq!(calls["calls"][0]["room"], "call-_+15557654321_abc", "{calls}");

    // A delivery again changes nothing; a tampered body is 401 and changes nothing.
    let (status, _) = deliver(&app, &server, &joined, &joined).await;
    assert_eq!(status, 200);
    let left = sip_event("participant_left", "RM_sip1");
    let (status, body) = deliver(&app, &server, &left, &joined).await;
    crate::helpers::assert_error(status, &body, 401, "unauthorized", None);
    let unchanged = app.store.find_room_call("RM_sip1").await.expect("query").expect("row");
    assert_eq!(unchanged, call);
    let response = app.http.post(app.url("/v1/webhooks/livekit")).body(left.clone()).send().await.expect("post");
    assert_eq!(response.status(), 401, "no signature at all");

    // The participant leaving ends the call.
    let (status, body) = deliver(&app, &server, &left, &left).await;
    assert_eq!((status, &body["result"]), (200, &json!("call_ended")), "{body}");
    let ended = app.store.find_room_call("RM_sip1").await.expect("query").expect("row");
    assert_eq!(ended.end_reason.as_deref(), Some("caller_left"));
    assert!(ended.ended_at.is_some());
    assert_eq!(app.metric("slotline_livekit_calls_total", &["event=\"started\""]).await, Some(1.0));
}

/// A job runner that reports each job, then runs it as the worker without room media does (until its
/// room ends, or LiveKit or the worker ends the job).
struct Recorder {
    jobs: mpsc::UnboundedSender<ResolvedJob>,
    watch: RoomWatch,
}

#[async_trait]
impl JobRunner for Recorder {
    async fn run(&self, job: ResolvedJob, cancel: CancellationToken) -> Result<(), JobError> {
        let _ = self.jobs.send(job.clone());
        self.watch.run(job, cancel).await
    }
}

/// Creates `room` with a dispatch of the agent worker. Retried for a while: after a crash, LiveKit may
/// still route a new room to the dead node until its registration in Redis goes stale.
async fn dispatch(settings: &LivekitSettings, room: &str, metadata: &str) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let created = async {
            let options = CreateRoomOptions { empty_timeout: 600, ..Default::default() };
            settings.rooms().create_room(room, options).await?;
            let request = proto::CreateAgentDispatchRequest {
                agent_name: "slotline".into(),
                room: room.into(),
                metadata: metadata.into(),
                ..Default::default()
            };
            settings.dispatches().create_dispatch(request).await
        };
        match created.await {
            Ok(_) => return,
            Err(e) if tokio::time::Instant::now() < deadline => {
                eprintln!("dispatch to {room} failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(e) => panic!("dispatch to {room}: {e}"),
        }
    }
}

async fn the_worker_takes_jobs_within_its_capacity_and_comes_back_after_a_server_restart(db: Db) {
    let redis = Redis::start().await;
    let mut server = LivekitServer::prepare(&redis, None).start().await;
    let app = spawn_app_with(db, Arc::new(SystemClock), |c| c.demo.enabled = false).await;
    let agent = app.create_agent("Worked").await;
    let settings = Arc::new(settings(&server, |c| {
        c.max_jobs = 1;
        c.drain_timeout_secs = 5;
    }));
    let (jobs_tx, mut jobs) = mpsc::unbounded_channel();
    let recorder = Recorder { jobs: jobs_tx, watch: RoomWatch::new(settings.clone()) };
    let worker = Worker::new(settings.clone(), app.store.clone(), Arc::new(recorder));
    let shutdown = CancellationToken::new();
    let running = tokio::spawn(worker.run(shutdown.clone()));
    eventually(WAIT, "the worker to register", || async {
        app.metric("slotline_livekit_worker_connected", &[]).await == Some(1.0)
    })
    .await;

    // A room with a dispatch for the agent becomes a job with that agent.
    dispatch(&settings, "room-a", &json!({"agent_id": agent}).to_string()).await;
    let job = tokio::time::timeout(WAIT, jobs.recv()).await.expect("a job").expect("job");
    assert_eq!(job.agent.id.to_string(), agent);
    assert_eq!(job.assignment.room, "room-a");
    assert!(!job.assignment.token.is_empty());

    // At max_jobs the worker takes no further job: LiveKit finds no worker with room for it.
    dispatch(&settings, "room-b", &json!({"agent_id": agent}).to_string()).await;
    eventually(WAIT, "LiveKit to give up on room-b's job", || async {
        // LiveKit asks its workers for affinity first; a full worker has none, so the request fails.
        server.log_text().lines().any(|l| {
            (l.contains("failed to send job request") || l.contains("no worker available to handle job"))
                && l.contains("\"agentName\": \"slotline\"")
        })
    })
    .await;
    assert!(jobs.try_recv().is_err(), "no second job while the first runs");
    assert_eq!(app.metric("slotline_livekit_jobs_total", &["result=\"accepted\""]).await, Some(1.0));
    assert_eq!(app.metric("slotline_livekit_jobs_running", &[]).await, Some(1.0));
    settings.rooms().delete_room("room-b").await.expect("delete room-b");

    // A job naming an agent that does not exist fails with a reason, and the worker goes on.
    settings.rooms().delete_room("room-a").await.expect("delete room-a");
    eventually(WAIT, "room-a's job to end", || async {
        app.metric("slotline_livekit_jobs_running", &[]).await == Some(0.0)
    })
    .await;
    dispatch(&settings, "room-c", &json!({"agent_id": Uuid::new_v4()}).to_string()).await;
    eventually(WAIT, "the job without an agent to fail", || async {
        app.metric("slotline_livekit_job_failures_total", &["reason=\"agent_gone\""]).await == Some(1.0)
    })
    .await;

    settings.rooms().delete_room("room-c").await.expect("delete room-c");

    // Killed and restarted, the server gets the worker back.
    server.kill().await;
    eventually(WAIT, "the worker to notice", || async {
        app.metric("slotline_livekit_worker_connected", &[]).await == Some(0.0)
    })
    .await;
    server.restart().await;
    eventually(WAIT, "the worker to register again", || async {
        app.metric("slotline_livekit_worker_connected", &[]).await == Some(1.0)
            && app.metric("slotline_livekit_worker_registrations_total", &[]).await >= Some(2.0)
    })
    .await;
    dispatch(&settings, "room-d", &json!({"agent_id": agent}).to_string()).await;
    let job = tokio::time::timeout(WAIT, jobs.recv()).await.expect("a job after the restart").expect("job");
    assert_eq!(job.assignment.room, "room-d");

    // SIGTERM drains: the running job is ended within the drain timeout and the worker stops.
    shutdown.cancel();
    tokio::time::timeout(WAIT, running).await.expect("the worker stops").expect("worker task");
}
