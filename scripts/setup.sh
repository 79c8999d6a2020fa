#!/usr/bin/env bash
# Installs what slotline needs on a Debian machine (idempotent; skips what is already there).
#   scripts/setup.sh          packages to run the gateway
#   scripts/setup.sh --test   plus the real peers the test suite talks to (promtool, sipp, baresip, ...)
set -euo pipefail

want_test=0
[[ "${1:-}" == "--test" ]] && want_test=1

packages=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || packages+=("$2")
}

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
