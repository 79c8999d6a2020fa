#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every unit and integration test with cargo-nextest
# against SQLite and PostgreSQL (IT_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres),
# then each fuzz target for FUZZ_SECONDS (default 60; 0 skips fuzzing) through scripts/fuzz.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo nextest run --locked --no-fail-fast "$@"
if [[ "${FUZZ_SECONDS:-60}" != 0 ]]; then
    scripts/fuzz.sh "${FUZZ_SECONDS:-60}"
fi
