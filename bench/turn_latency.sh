#!/usr/bin/env bash
# Turn latency of spoken calls over real SIP (sipp) and RTP on loopback: TURNS turns per call (default 10),
# steps of 1..=MAX_CALLS concurrent calls (default 4), or the listed counts ("1,5,10,20,30", at most 50);
# prints p50/p95 of the turn gap on the wire, the CPU time per call, its parts from /metrics, and the
# concurrent-call capacity with p95 under 800 ms. Needs the model, sipp and
# espeak-ng (scripts/setup.sh --test).
# The calls of a step start STAGGER_MS apart (default 2000; 0 = in lockstep, every turn ending at once);
# STT_WORKERS defaults to speech.stt_workers' default, 1 (each with speech.stt_threads, default 2).
#   bench/turn_latency.sh [TURNS] [MAX_CALLS] [STT_WORKERS] [STAGGER_MS]
# With --livekit: the same caller straight to slotline and through LiveKit SIP (livekit-server, livekit-sip,
# slotline's worker joining rooms through the FFI library), CALLS calls each way (default 3), one at a
# time, inside a network namespace of its own (needs root and scripts/setup.sh --test):
#   bench/turn_latency.sh --livekit [TURNS] [CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${SLOTLINE_SPEECH__MODEL_PATH:-${SLOTLINE_DATA_DIR:-data}/models/ggml-tiny.en-q8_0.bin}"
[[ -f "$model" ]] || { echo "bench: $model is missing; run scripts/setup.sh" >&2; exit 1; }
command -v sipp >/dev/null || { echo "bench: sipp is missing (Debian package sip-tester)" >&2; exit 1; }
if [[ "${1:-}" == --livekit ]]; then
    cargo build --quiet --locked --release --example turn_latency
    target=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
    IT_NETNS=1 exec unshare --net --pid --fork --kill-child -- \
        "$target/release/examples/turn_latency" --livekit "$model" "${2:-6}" "${3:-3}"
fi
exec cargo run --quiet --locked --release --example turn_latency -- "$model" "${1:-10}" "${2:-4}" "${3:-1}" "${4:-2000}"
