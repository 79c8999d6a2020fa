//! Turn latency of spoken calls over real SIP (sipp) and RTP on loopback, the whole voice pipeline behind
//! slotline's SIP gateway: each call speaks TURNS scripted turns; the turn gap is measured on the wire
//! (the caller's last voiced packet → the agent's first voiced packet) and its parts are read from
//! `slotline_turn_latency_seconds{part}` on `/metrics` (mean per step), beside the CPU time per call.
//! Steps of 1..=MAX_CALLS concurrent calls, or the listed counts ("1,5,10,20,30", at most 50); the
//! capacity is the largest step whose p95 stays under 800 ms with every smaller step's too. The calls of a step
//! start STAGGER_MS apart (default 2000), as independent callers do; with 0 they speak in lockstep, every
//! turn of every call ending at once (the worst case for the shared speech-to-text workers). Run by
//! `bench/turn_latency.sh`.
//!
//!     cargo run --release --example turn_latency -- MODEL [TURNS] [MAX_CALLS] [STT_WORKERS] [STAGGER_MS]
//!
//! With `--livekit` first (run inside a network namespace by `bench/turn_latency.sh --livekit`), it starts
//! Redis, livekit-server and livekit-sip on test hosts beside slotline (with its LiveKit worker) and places
//! CALLS calls one after another both ways, straight to slotline's SIP and through livekit-sip, and prints
//! the turn gap on the wire of each way, what LiveKit adds to the median, and the mean time the caller's
//! audio waited in libwebrtc's jitter buffer (`slotline_livekit_jitter_buffer_seconds`).
//!
//!     turn_latency --livekit MODEL [TURNS] [CALLS]

use std::path::PathBuf;
use std::time::Duration;

#[allow(dead_code)]
#[path = "../tests/it/voice_caller.rs"]
mod voice_caller;

#[allow(dead_code)]
#[path = "support/gateway.rs"]
mod gateway;

#[allow(dead_code)]
#[path = "../tests/it/local.rs"]
mod local;

#[allow(dead_code)]
#[path = "../tests/it/livekit_rig.rs"]
mod livekit_rig;

#[allow(dead_code)]
#[path = "../tests/it/netns.rs"]
mod netns;

use gateway::{percentile, series, Gateway, DEMO_NUMBER};
use voice_caller::{CallSpec, Cue};

/// The turn gap the capacity is judged by.
const TARGET_P95: Duration = Duration::from_millis(800);
const MAX_TURNS: usize = 20;
const MAX_CALLS: usize = 50;

/// Each part of the turn latency histogram: its name, `_sum` and `_count`.
type Parts = Vec<(String, f64, f64)>;

/// `_sum` and `_count` of each part of the turn latency histogram.
async fn parts(gateway: &Gateway) -> anyhow::Result<Parts> {
    let page = gateway.scrape().await?;
    let mut parts: Vec<(String, f64, f64)> = Vec::new();
    for (suffix, sum) in [("_sum", true), ("_count", false)] {
        let name = format!("slotline_turn_latency_seconds{suffix}");
        for (labels, value) in series(&page, &name) {
            let Some(part) = labels.split("part=\"").nth(1).and_then(|p| p.split('"').next()) else { continue };
            let index = match parts.iter().position(|(name, _, _)| name == part) {
                Some(index) => index,
                None => {
                    parts.push((part.to_string(), 0.0, 0.0));
                    parts.len() - 1
                }
            };
            if sum {
                parts[index].1 = value;
            } else {
                parts[index].2 = value;
            }
        }
    }
    Ok(parts)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--livekit") {
        return livekit(&args[2..]).await;
    }
    let usage = "usage: turn_latency MODEL [TURNS] [MAX_CALLS] [STT_WORKERS] [STAGGER_MS]";
    let model = PathBuf::from(args.get(1).expect(usage));
    let turns: usize = args.get(2).map_or(Ok(10), |a| a.parse())?.clamp(2, MAX_TURNS);
    let steps = steps(args.get(3).map_or("4", String::as_str))?;
    let stt_workers: usize = args.get(4).map_or(Ok(1), |a| a.parse())?.clamp(1, 8);
    let stagger = Duration::from_millis(args.get(5).map_or(Ok(2000), |a| a.parse())?.min(10_000));

    let gateway = Gateway::start(model, stt_workers).await?;
    let (sip, config) = (gateway.sip, &gateway.config);

    // The caller asks for times, has them repeated, and says goodbye.
    let spoken = gateway::repeating_caller((2..turns).map(|_| Cue::AfterPrompt)).await?;
    let scenario = gateway::scenario();

    println!(
        "turn_latency: {turns} turns per call, {steps:?} concurrent calls {} ms apart, {stt_workers} STT \
         workers × {} threads; voice.end_silence_ms {}, voice.pause_ms {}, voice.speculate_ms {}, voice.early_end {}",
        stagger.as_millis(),
        config.speech.stt_threads,
        config.voice.end_silence_ms,
        config.voice.pause_ms,
        config.voice.speculate_ms,
        config.voice.early_end
    );
    println!("{:>5} {:>6} {:>8} {:>8} {:>9}   parts (mean ms)", "calls", "turns", "p50 ms", "p95 ms", "CPU/call");
    let mut capacity = 0;
    let mut held = true;
    for calls in steps {
        let before = parts(&gateway).await?;
        let cpu_before = cpu_seconds();
        let step = Step { sip, calls, stagger, turns };
        let (mut gaps, failed) = step.run(&spoken, &scenario).await?;
        let cpu = (cpu_seconds() - cpu_before) / calls as f64;
        gaps.sort();
        let after = parts(&gateway).await?;
        let means = show_parts(&mean_parts(&[(before, after)]));
        let (p50, p95) = (percentile(&gaps, 0.5), percentile(&gaps, 0.95));
        println!(
            "{calls:>5} {:>6} {:>8} {:>8} {:>8.1}s   {}{}",
            gaps.len(),
            p50.as_millis(),
            p95.as_millis(),
            cpu,
            means,
            if failed > 0 { format!("  ({failed} calls failed)") } else { String::new() }
        );
        held &= p95 < TARGET_P95 && failed == 0;
        if held {
            capacity = calls;
        }
    }
    println!("capacity: {capacity} concurrent calls with the turn gap p95 under {} ms", TARGET_P95.as_millis());
    gateway.stop().await
}

/// The steps of concurrent calls: "N" is every count from 1 to N, "1,5,10" those counts.
fn steps(arg: &str) -> anyhow::Result<Vec<usize>> {
    let steps: Vec<usize> = if arg.contains(',') {
        arg.split(',').map(|n| n.trim().parse()).collect::<Result<_, _>>()?
    } else {
        (1..=arg.parse::<usize>()?).collect()
    };
    anyhow::ensure!(
        !steps.is_empty() && steps.iter().all(|n| (1..=MAX_CALLS).contains(n)),
        "MAX_CALLS: a count or a list of counts, each 1..={MAX_CALLS}"
    );
    Ok(steps)
}

/// CPU seconds this process has used (`utime` + `stime` of `/proc/self/stat`, in the kernel's 100 Hz
/// clock ticks): the gateway, and the scripted callers beside it, which only send recorded audio.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which is in parentheses and may hold spaces); utime and stime are
    // the 14th and 15th fields of the line, the 12th and 13th after it.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks = |n: usize| after.split_whitespace().nth(n).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

/// One step: `calls` callers started `stagger` apart, each speaking `turns` turns.
struct Step {
    sip: std::net::SocketAddr,
    calls: usize,
    stagger: Duration,
    turns: usize,
}

impl Step {
    /// Places the calls and waits for every one; the turn gaps of all and the count that failed.
    async fn run(
        &self,
        spoken: &[voice_caller::Turn],
        scenario: &std::path::Path,
    ) -> anyhow::Result<(Vec<Duration>, usize)> {
        let placed = (0..self.calls).map(|i| {
            let (spoken, scenario) = (spoken.to_vec(), scenario.to_path_buf());
            let (sip, turns) = (self.sip, self.turns);
            let caller = format!("+1555123{:04}", 4567 + i);
            let start = self.stagger * i as u32;
            tokio::spawn(async move {
                tokio::time::sleep(start).await;
                let spec = CallSpec {
                    local_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                    sip,
                    caller: &caller,
                    service: DEMO_NUMBER,
                    scenario: &scenario,
                    turns: spoken,
                    deadline: Duration::from_secs(60 + 20 * turns as u64),
                };
                voice_caller::call(spec).await
            })
        });
        let mut gaps = Vec::new();
        let mut failed = 0;
        for call in placed.collect::<Vec<_>>() {
            let log = call.await?;
            if log.error.is_some() || log.sipp_code != 0 {
                failed += 1;
                eprintln!("a call failed: {:?}, sipp exit {}", log.error, log.sipp_code);
            }
            // The goodbye's gap is a cached prompt after a hang-up decision; every turn counts.
            gaps.extend((0..log.turns.len()).filter_map(|i| log.turn_gap(i)));
        }
        Ok((gaps, failed))
    }
}

/// The mean of each turn latency part over the calls whose metrics were read before and after.
fn mean_parts(calls: &[(Parts, Parts)]) -> Vec<(String, f64)> {
    let mut totals: Parts = Vec::new();
    for (before, after) in calls {
        for (part, sum, count) in after {
            let (s0, c0) = before.iter().find(|(p, _, _)| p == part).map_or((0.0, 0.0), |(_, s, c)| (*s, *c));
            match totals.iter_mut().find(|(p, _, _)| p == part) {
                Some(total) => {
                    total.1 += sum - s0;
                    total.2 += count - c0;
                }
                None => totals.push((part.clone(), sum - s0, count - c0)),
            }
        }
    }
    totals
        .iter()
        .map(|(part, sum, count)| (part.clone(), if *count > 0.0 { sum / count * 1000.0 } else { 0.0 }))
        .collect()
}

/// The parts as `name=ms` pairs.
fn show_parts(parts: &[(String, f64)]) -> String {
    parts.iter().map(|(part, ms)| format!("{part}={ms:.0}")).collect::<Vec<_>>().join(" ")
}

/// The mean of the gaps, in milliseconds.
fn mean_ms(gaps: &[Duration]) -> f64 {
    gaps.iter().map(|g| g.as_secs_f64() * 1000.0).sum::<f64>() / gaps.len().max(1) as f64
}

/// The turn gaps of one call, every turn.
fn call_gaps(log: &voice_caller::CallLog, way: &str) -> Vec<Duration> {
    if log.error.is_some() || log.sipp_code != 0 {
        eprintln!("a call {way} failed: {:?}, sipp exit {}", log.error, log.sipp_code);
    }
    (0..log.turns.len()).filter_map(|i| log.turn_gap(i)).collect()
}

/// Direct SIP and LiveKit SIP side by side (see the module doc).
async fn livekit(args: &[String]) -> anyhow::Result<()> {
    use livekit_rig::{LivekitServer, LivekitSip, Redis};
    use netns::{TestNet, SERVER_IF, SERVER_IP, SIP_IP};

    let usage = "usage: turn_latency --livekit MODEL [TURNS] [CALLS]";
    let model = PathBuf::from(args.first().expect(usage));
    let turns: usize = args.get(1).map_or(Ok(6), |a| a.parse())?.clamp(2, MAX_TURNS);
    let calls: usize = args.get(2).map_or(Ok(3), |a| a.parse())?.clamp(1, 20);
    let _net = TestNet::up();
    let redis = Redis::start_on(SERVER_IP).await;
    let server = LivekitServer::prepare_on(&redis, None, SERVER_IP, SERVER_IF).start().await;
    let ffi = local::setup_file("IT_LIVEKIT_FFI", "livekit/liblivekit_ffi.so");
    let gateway = Gateway::start_with(model, 1, |c| {
        server.configure(c);
        c.livekit.worker = true;
        c.livekit.ffi_lib = Some(ffi);
        c.sip.addr = std::net::SocketAddr::new(SERVER_IP, 0);
        // The caller calls from the test host.
        c.sip.trunks[0].allow.push("192.0.2.0/24".parse().expect("network"));
    })
    .await?;
    let sip = LivekitSip::start(&server, &redis, SIP_IP).await;
    let settings = slotline::livekit::LivekitSettings::from_config(&gateway.config.livekit)?;
    livekit_rig::eventually(Duration::from_secs(60), "the demo number on LiveKit's trunk", || async {
        let filter = livekit_api::services::sip::ListSIPInboundTrunkFilter::All;
        let trunks = settings.sip().list_sip_inbound_trunk(filter).await.unwrap_or_default();
        trunks.iter().any(|t| t.numbers.iter().any(|n| n == DEMO_NUMBER))
    })
    .await;

    let spoken = gateway::repeating_caller((2..turns).map(|_| Cue::AfterPrompt)).await?;
    let scenario = gateway::scenario();
    println!("turn_latency --livekit: {calls} calls each way, one at a time, {turns} turns per call");
    let (mut direct, mut through_livekit) = (Vec::new(), Vec::new());
    let (mut direct_parts, mut livekit_parts) = (Vec::new(), Vec::new());
    for _ in 0..calls {
        for (target, gaps, way, way_parts) in [
            (gateway.sip, &mut direct, "direct", &mut direct_parts),
            (sip.sip, &mut through_livekit, "through LiveKit", &mut livekit_parts),
        ] {
            let before = parts(&gateway).await?;
            let spec = CallSpec {
                local_ip: SERVER_IP,
                sip: target,
                caller: "+15551234567",
                service: DEMO_NUMBER,
                scenario: &scenario,
                turns: spoken.clone(),
                deadline: Duration::from_secs(60 + 20 * turns as u64),
            };
            gaps.extend(call_gaps(&voice_caller::call(spec).await, way));
            way_parts.push((before, parts(&gateway).await?));
        }
    }
    direct.sort();
    through_livekit.sort();
    for (way, gaps, way_parts) in
        [("direct SIP", &direct, &direct_parts), ("LiveKit SIP", &through_livekit, &livekit_parts)]
    {
        // The session's parts start at the last caller frame it received and end when the first agent frame
        // is queued, so the rest of the mean gap is the audio's way in and out (transport, coding, buffers).
        let parts = mean_parts(way_parts);
        let session = parts.iter().find(|(part, _)| part == "total").map_or(0.0, |(_, ms)| *ms);
        println!(
            "{way:>12}: {:>3} turns  p50 {:>5} ms  p95 {:>5} ms  mean {:>5.0} ms  in and out of the session {:>4.0} ms   parts (mean ms) {}",
            gaps.len(),
            percentile(gaps, 0.5).as_millis(),
            percentile(gaps, 0.95).as_millis(),
            mean_ms(gaps),
            mean_ms(gaps) - session,
            show_parts(&parts)
        );
    }
    let added = percentile(&through_livekit, 0.5).as_millis() as i128 - percentile(&direct, 0.5).as_millis() as i128;
    println!("LiveKit adds {added} ms to the median turn gap");
    jitter_buffer(&gateway).await?;
    gateway.stop().await
}

/// Prints the mean time the caller's audio waited in libwebrtc's jitter buffer on its way to the worker
/// (the FFI library's receive statistics, one mean per LiveKit call).
async fn jitter_buffer(gateway: &Gateway) -> anyhow::Result<()> {
    let page = gateway.scrape().await?;
    let total = |suffix: &str| {
        let name = format!("slotline_livekit_jitter_buffer_seconds{suffix}");
        series(&page, &name).map(|(_, value)| value).sum::<f64>()
    };
    let (sum, count) = (total("_sum"), total("_count"));
    if count > 0.0 {
        println!(
            "caller → worker: the audio waited {:.0} ms (mean of {count} calls) in libwebrtc's jitter buffer",
            sum / count * 1000.0
        );
    }
    Ok(())
}
