#!/usr/bin/env bash
# Sets up and runs slotline on the embedded default: SQLite under ./data, the demo agent on +15550100000,
# admin API on 127.0.0.1:8080, metrics on 127.0.0.1:9464. Extra arguments go to `slotline serve`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --release --locked
exec cargo run --release --locked --quiet -- serve "$@"
