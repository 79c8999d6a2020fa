#!/usr/bin/env bash
# Runs each fuzz target in fuzz/ (cargo-fuzz, libFuzzer) for a bounded time, seeded from the committed
# real SIP messages and SDP bodies in fuzz/seeds/ (python3 fuzz/seeds/render.py makes them from
# tests/sipp/). New inputs the fuzzer finds accumulate in a corpus under the fuzz target dir, which CI
# caches with the rest of it; a crash fails the run and leaves its input in fuzz/artifacts/TARGET/.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     default: every target; SECONDS (60) for sip_message and
#                                             sdp, at most 30 s for the small readers (rtp, dtmf, e164,
#                                             nlu_when), about 4 min in all
#
# Only the stable toolchain is installed: RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its nightly flags.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
shift || true
targets=("$@")
((${#targets[@]})) || targets=(sip_message sdp rtp dtmf e164 nlu_when)
command -v cargo-fuzz >/dev/null 2>&1 || scripts/setup.sh --test
fuzz_target_dir="${CARGO_TARGET_DIR:-/var/tmp/slotline-target}/fuzz"
export RUSTC_BOOTSTRAP=1
for target in "${targets[@]}"; do
    budget="$seconds"
    case "$target" in rtp | dtmf | e164 | nlu_when) ((budget <= 30)) || budget=30 ;; esac
    corpus="$fuzz_target_dir/corpus/$target"
    mkdir -p "$corpus"
    echo "fuzz: $target for ${budget}s (corpus $corpus)" >&2
    # -s none: the code under test forbids unsafe, so no sanitizer; -a: overflow checks and debug asserts.
    cargo fuzz run --fuzz-dir fuzz -s none -a --target-dir "$fuzz_target_dir" "$target" \
        "$corpus" "fuzz/seeds/$target" -- -max_total_time="$budget" -max_len=65536 -timeout=10 -print_final_stats=1
done
