#!/usr/bin/env bash
# Runs the dialog corpus fixtures whose file name contains $1 (all by default) and prints their transcripts.
set -euo pipefail
cd "$(dirname "$0")/.."
DIALOG="${1:-dialogs/}" cargo nextest run --no-fail-fast --success-output immediate -E 'test(dialog_corpus)' 2>&1 |
    grep -v '^\s*[0-9]*: \|^\s*at \|stack backtrace\|RUST_BACKTRACE'
