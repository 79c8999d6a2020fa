#!/usr/bin/env bash
# Speech engine timings: whisper.cpp on 1/2/4 s utterances (scaled audio_ctx vs. the full 1500) and
# espeak-ng per sentence, medians of RUNS runs (default 5). Needs the model (scripts/setup.sh).
#   bench/stt.sh [RUNS]
# Built in the dev profile, where whisper.cpp is still a cmake Release build (Cargo.toml), so the STT
# figures are those of an optimised engine; the release profile would only speed up the Rust glue.
set -euo pipefail
cd "$(dirname "$0")/.."
model="${SLOTLINE_SPEECH__MODEL_PATH:-${SLOTLINE_DATA_DIR:-data}/models/ggml-tiny.en-q8_0.bin}"
[[ -f "$model" ]] || { echo "bench: $model is missing; run scripts/setup.sh" >&2; exit 1; }
exec cargo run --quiet --locked --example speech_bench -- "$model" "${1:-5}"
