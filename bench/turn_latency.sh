#!/usr/bin/env bash
# Turn latency of spoken calls over real SIP (sipp) and RTP on loopback: TURNS turns per call (default 10),
# steps of 1..=MAX_CALLS concurrent calls (default 4); prints p50/p95 of the turn gap on the wire, its
# parts from /metrics, and the concurrent-call capacity with p95 under 800 ms. Needs the model, sipp and
# espeak-ng (scripts/setup.sh --test).
# The calls of a step start STAGGER_MS apart (default 2000; 0 = in lockstep, every turn ending at once);
# STT_WORKERS defaults to speech.stt_workers' default, 1 (each with speech.stt_threads, default 2).
#   bench/turn_latency.sh [TURNS] [MAX_CALLS] [STT_WORKERS] [STAGGER_MS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${SLOTLINE_SPEECH__MODEL_PATH:-${SLOTLINE_DATA_DIR:-data}/models/ggml-tiny.en.bin}"
[[ -f "$model" ]] || { echo "bench: $model is missing; run scripts/setup.sh" >&2; exit 1; }
command -v sipp >/dev/null || { echo "bench: sipp is missing (Debian package sip-tester)" >&2; exit 1; }
exec cargo run --quiet --locked --release --example turn_latency -- "$model" "${1:-10}" "${2:-4}" "${3:-1}" "${4:-2000}"
