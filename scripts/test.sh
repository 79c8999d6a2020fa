#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, the Prometheus rules and their unit tests (promtool), then
# every unit and integration test with cargo-nextest against SQLite and PostgreSQL, then each fuzz target
# for FUZZ_SECONDS (default 60; 0 skips fuzzing) through scripts/fuzz.sh. Extra arguments go to `cargo nextest run`.
#
# The PostgreSQL the tests talk to is started here for this run only and removed at its end (also on
# failure or Ctrl-C), see scripts/services.sh, unless IT_POSTGRES_URL names one to use instead. The
# LiveKit tests start their own Redis and livekit-server per test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
promtool check rules prometheus/recording_rules.yml prometheus/alerts.yml
promtool test rules prometheus/tests/alerts_test.yml

source scripts/services.sh
trap stop_services EXIT
trap 'exit 130' INT TERM
start_postgres
cargo nextest run --locked --workspace --no-fail-fast "$@"
stop_services

if [[ "${FUZZ_SECONDS:-60}" != 0 ]]; then
    scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
