#!/usr/bin/env bash
# Pauses inside callers' turns as the VAD sees them (the dialog corpus spoken by espeak-ng in five
# voices), and how many turns each candidate voice.end_silence_ms would cut in two.
#   bench/pauses.sh
set -euo pipefail
cd "$(dirname "$0")/.."
exec cargo run --quiet --release --locked --example turn_pauses -- tests/fixtures/dialogs
