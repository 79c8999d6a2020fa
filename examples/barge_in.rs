//! Barge-in on the wire: how soon the agent's audio stops when the caller speaks over it, over real SIP
//! (sipp) and RTP on loopback with the whole voice pipeline behind slotline's SIP gateway. Each call asks
//! for times, then interrupts the agent's answer BARGE_INS times ("sorry, can you repeat that?", each
//! at another moment of the answer, 300–1500 ms in) and says goodbye. The stop time is measured from the
//! caller's first voiced packet to the agent's last voiced packet before 500 ms of silence; the reply
//! gap is the turn gap after the interruption (the agent listened and answered). Steps of 1..=MAX_CALLS
//! concurrent calls, started 1 s apart. Run by `bench/barge_in.sh`.
//!
//!     cargo run --release --example barge_in -- MODEL [BARGE_INS] [MAX_CALLS]

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

use gateway::{percentile, Gateway, DEMO_NUMBER};
use voice_caller::{CallSpec, Cue};

/// What the issue asks of barge-in: the agent's audio stops within this of the caller's onset.
const TARGET: Duration = Duration::from_millis(150);
/// The silence that ends the agent's audio after an interruption.
const QUIET: Duration = Duration::from_millis(500);
const MAX_BARGE_INS: usize = 12;
const MAX_CALLS: usize = 4;

/// When the `i`th interruption of a call comes, after the agent starts its answer.
fn offset(i: usize) -> Duration {
    Duration::from_millis(300 + (i as u64 * 300) % 1500)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let usage = "usage: barge_in MODEL [BARGE_INS] [MAX_CALLS]";
    let model = PathBuf::from(args.get(1).expect(usage));
    let barge_ins: usize = args.get(2).map_or(Ok(6), |a| a.parse())?.clamp(1, MAX_BARGE_INS);
    let max_calls: usize = args.get(3).map_or(Ok(2), |a| a.parse())?.clamp(1, MAX_CALLS);

    let gateway = Gateway::start(model, 1).await?;
    let spoken = gateway::repeating_caller((0..barge_ins).map(|i| Cue::WhileAgentSpeaks(offset(i)))).await?;
    let scenario = gateway::scenario();

    println!(
        "barge_in: {barge_ins} interruptions per call, 1..={max_calls} concurrent calls 1 s apart; \
         voice.start_speech_ms {}",
        gateway.config.voice.start_speech_ms
    );
    println!(
        "{:>5} {:>6} {:>8} {:>8} {:>8} {:>9} {:>13}",
        "calls", "stops", "p50 ms", "p95 ms", "max ms", "counted", "reply p50 ms"
    );
    for calls in 1..=max_calls {
        let counted_before = gateway.total("slotline_barge_ins_total").await?;
        let placed: Vec<_> = (0..calls)
            .map(|i| {
                let (spoken, scenario, sip) = (spoken.clone(), scenario.clone(), gateway.sip);
                let caller = format!("+1555123{:04}", 4567 + i);
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(i as u64)).await;
                    let spec = CallSpec {
                        local_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                        sip,
                        caller: &caller,
                        service: DEMO_NUMBER,
                        scenario: &scenario,
                        turns: spoken,
                        deadline: Duration::from_secs(60 + 20 * barge_ins as u64),
                    };
                    voice_caller::call(spec).await
                })
            })
            .collect();
        let (mut stops, mut replies, mut failed, mut ended) = (Vec::new(), Vec::new(), 0, 0);
        for call in placed {
            let log = call.await?;
            if log.error.is_some() || log.sipp_code != 0 {
                failed += 1;
                eprintln!("a call failed: {:?}, sipp exit {}", log.error, log.sipp_code);
            }
            // Turns 1..=barge_ins are the interruptions; turn 0 and the goodbye wait for the prompt.
            for i in (1..log.turns.len()).filter(|&i| i <= barge_ins) {
                // A cue that came as the agent's answer ended interrupts nothing: the agent's next
                // audio is its reply, not speech it kept on playing.
                let onset = log.turns[i].first_voiced;
                let still_speaking = onset.is_some_and(|onset| {
                    log.received[log.turns[i].received_at_start..]
                        .iter()
                        .any(|p| p.voiced && p.at >= onset && p.at - onset < Duration::from_millis(100))
                });
                if still_speaking {
                    stops.extend(log.barge_in_stop(i, QUIET));
                } else {
                    ended += 1;
                }
                replies.extend(log.turn_gap(i));
            }
        }
        stops.sort();
        replies.sort();
        let counted = gateway.total("slotline_barge_ins_total").await? - counted_before;
        println!(
            "{calls:>5} {:>6} {:>8} {:>8} {:>8} {:>9} {:>13}{}",
            stops.len(),
            percentile(&stops, 0.5).as_millis(),
            percentile(&stops, 0.95).as_millis(),
            stops.last().copied().unwrap_or_default().as_millis(),
            counted,
            percentile(&replies, 0.5).as_millis(),
            if failed > 0 { format!("  ({failed} calls failed)") } else { String::new() }
        );
        if ended > 0 {
            println!("      ({ended} interruptions came as the agent's answer ended: not counted as stops)");
        }
    }
    println!("target: the agent's audio stops within {} ms of the caller's onset", TARGET.as_millis());
    gateway.stop().await
}
