#!/usr/bin/env bash
# Barge-in over real SIP (sipp) and RTP on loopback: each call interrupts the agent BARGE_INS times
# (default 6), in steps of 1..=MAX_CALLS concurrent calls (default 2); prints p50/p95/max of the time
# from the caller's onset to the agent's audio stopping on the wire, how many barge-ins slotline
# counted, and the reply gap after them. Needs the model, sipp and espeak-ng (scripts/setup.sh --test).
#   bench/barge_in.sh [BARGE_INS] [MAX_CALLS]
set -euo pipefail
cd "$(dirname "$0")/.."
model="${SLOTLINE_SPEECH__MODEL_PATH:-${SLOTLINE_DATA_DIR:-data}/models/ggml-tiny.en-q8_0.bin}"
[[ -f "$model" ]] || { echo "bench: $model is missing; run scripts/setup.sh" >&2; exit 1; }
command -v sipp >/dev/null || { echo "bench: sipp is missing (Debian package sip-tester)" >&2; exit 1; }
exec cargo run --quiet --locked --release --example barge_in -- "$model" "${1:-6}" "${2:-2}"
