#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, then every unit and integration test with cargo-nextest
# against SQLite and PostgreSQL (IT_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo nextest run --locked --no-fail-fast "$@"
