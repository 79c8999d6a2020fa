//! Phone calls through the real LiveKit SIP (livekit-sip and livekit-server with Redis, inside a network
//! namespace of the test's own, see [`crate::netns`]): sipp dials livekit-sip, LiveKit puts the call in a
//! room and dispatches slotline's worker.

use std::sync::Arc;
use std::time::Duration;

use livekit_protocol as proto;
use serde_json::json;
use slotline::calendar::SystemClock;

use crate::helpers::{free_port, spawn_app_with, Db, TestApp};
use crate::livekit_rig::{eventually, LivekitServer, LivekitSip, Redis};
use crate::netns::{run_inside, TestNet, SERVER_IF, SERVER_IP, SIP_IP};

const WAIT: Duration = Duration::from_secs(60);

/// Everything of one LiveKit SIP deployment, and slotline in front of it.
pub struct Deployment {
    pub app: TestApp,
    pub server: LivekitServer,
    pub sip: LivekitSip,
    _redis: Redis,
    _net: TestNet,
}

impl Deployment {
    /// Makes the test hosts, starts Redis, livekit-server (posting webhooks to slotline) and livekit-sip,
    /// and slotline (SQLite) with the LiveKit worker; `configure` adjusts slotline's settings.
    pub async fn start(configure: impl FnOnce(&mut slotline::config::Config)) -> Self {
        let net = TestNet::up();
        let redis = Redis::start_on(SERVER_IP).await;
        let api_port = free_port();
        let webhook = format!("http://{SERVER_IP}:{api_port}/v1/webhooks/livekit");
        let server = LivekitServer::prepare_on(&redis, Some(&webhook), SERVER_IP, SERVER_IF);
        let app = spawn_app_with(Db::Sqlite, Arc::new(SystemClock), |c| {
            server.configure(c);
            c.api.addr = std::net::SocketAddr::new(SERVER_IP, api_port);
            c.livekit.worker = true;
            c.demo.enabled = false;
            configure(c);
        })
        .await;
        let server = server.start().await;
        let sip = LivekitSip::start(&server, &redis, SIP_IP).await;
        Self { app, server, sip, _redis: redis, _net: net }
    }

    /// Waits until slotline's sync has put `number` on LiveKit SIP.
    pub async fn wait_for_number(&self, number: &str) {
        let settings = self.settings();
        eventually(WAIT, "the number on LiveKit's trunk", || async {
            let trunks = settings
                .sip()
                .list_sip_inbound_trunk(livekit_api::services::sip::ListSIPInboundTrunkFilter::All)
                .await
                .unwrap_or_default();
            trunks.iter().any(|t| t.numbers.iter().any(|n| n == number))
        })
        .await;
    }

    pub fn settings(&self) -> slotline::livekit::LivekitSettings {
        let mut config = slotline::config::Config::default();
        self.server.configure(&mut config);
        slotline::livekit::LivekitSettings::from_config(&config.livekit).expect("settings")
    }
}

/// sipp dialing `number` at livekit-sip from the server's host with a basic call (it is ended by the
/// test, not by sipp).
async fn dial(deployment: &Deployment, number: &str) -> tokio::process::Child {
    let scenario = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/sipp/basic_call.xml");
    let (port, media) = (free_port().to_string(), free_port().to_string());
    let ip = SERVER_IP.to_string();
    tokio::process::Command::new("sipp")
        .arg(deployment.sip.sip.to_string())
        .args(["-sf", scenario.to_str().expect("path"), "-s", number, "-i", &ip, "-mi", &ip, "-p", &port])
        .args(["-mp", &media, "-m", "1", "-l", "1", "-nostdin", "-timeout", "60s", "-rtp_echo"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("sipp is installed")
}

#[test]
fn livekit_sip_calls_become_calls_and_jobs() {
    run_inside("livekit_sip::inside::livekit_sip_calls_become_calls_and_jobs");
}

mod inside {
    use super::*;

    /// A routed number: LiveKit's own webhook records the call (numbers from the SIP participant, the
    /// room kept) and the worker takes the job for the number's agent. A number slotline does not route,
    /// on a trunk and rule made by hand that dispatch slotline's worker: the job fails with its reason.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "runs inside a network namespace through its outer test"]
    async fn livekit_sip_calls_become_calls_and_jobs() {
        let deployment = Deployment::start(|_| {}).await;
        let app = &deployment.app;
        let agent = app.create_agent("Through LiveKit").await;
        let (status, body) = app.put("/v1/numbers/+15550100001", json!({"agent_id": agent})).await;
        assert_eq!(status, 201, "{body}");
        deployment.wait_for_number("+15550100001").await;

        let _call = dial(&deployment, "+15550100001").await;
        eventually(WAIT, "the worker to take the call's job", || async {
            app.metric("slotline_livekit_jobs_total", &["result=\"accepted\""]).await == Some(1.0)
        })
        .await;
        eventually(WAIT, "LiveKit's webhook for the SIP participant", || async {
            app.metric("slotline_livekit_webhooks_total", &["event=\"participant_joined\"", "result=\"call_started\""])
                .await
                .is_some()
        })
        .await;
        let calls = app.get("/v1/calls").await.1;
        let call = &calls["calls"][0];
        assert_eq!(call["transport"], "livekit", "{calls}");
        assert_eq!(call["dialed"], "+15550100001");
        assert_eq!(call["caller"], "+15551234567");
        assert_eq!(call["agent_id"], agent);
        assert!(call["room"].as_str().is_some_and(|r| r.starts_with("call-")), "{calls}");

        // A trunk and rule made by hand for a number slotline does not route.
        let settings = deployment.settings();
        let sip = settings.sip();
        let trunk = sip
            .create_sip_inbound_trunk("by hand".into(), vec!["+15550100099".into()], Default::default())
            .await
            .expect("hand trunk");
        sip.create_sip_dispatch_rule(
            proto::sip_dispatch_rule::Rule::DispatchRuleIndividual(proto::SipDispatchRuleIndividual {
                room_prefix: "hand-".into(),
                ..Default::default()
            }),
            livekit_api::services::sip::CreateSIPDispatchRuleOptions {
                name: "by hand".into(),
                trunk_ids: vec![trunk.sip_trunk_id],
                room_config: Some(proto::RoomConfiguration {
                    agents: vec![proto::RoomAgentDispatch { agent_name: "slotline".into(), ..Default::default() }],
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await
        .expect("hand rule");
        let _stranger = dial(&deployment, "+15550100099").await;
        eventually(WAIT, "the job for an unrouted number to fail", || async {
            app.metric("slotline_livekit_job_failures_total", &["reason=\"unknown_number\""]).await == Some(1.0)
        })
        .await;
    }
}
