#!/usr/bin/env bash
# SIP call-rate benchmark: the same sipp UAC scenario (tests/sipp/basic_call.xml: INVITE, 200, ACK, 2 s
# hold, BYE; no RTP echo) at a fixed call rate against slotline (release build, SQLite, the demo agent)
# and against sipp's own UAS, one after the other in one run, on loopback. For both it prints the calls
# that completed and failed, the answered calls per second (answers over the time from the first INVITE
# to the last 200) and the p50/p95 INVITE→200 latency (from sipp's message trace, microseconds), then
# slotline's ratios to sipp's UAS (sipp's UAS answers from memory: it is the ceiling of this scenario).
#
#   bench/sip_cps.sh [RATE] [CALLS]      defaults: 50 calls/s, 500 calls
#   STALL_DB=1 bench/sip_cps.sh ...      the same while another process holds SQLite's write lock for the
#                                        whole slotline run: every `calls` row write waits (the database
#                                        stalls), and the calls must go on regardless
#
# Bounded: CALLS calls per target (at most 10 000), sipp's -timeout 120 s per run, every wait below
# gives up after a fixed number of tries; slotline and the sipp UAS are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-50}"
CALLS="${2:-500}"
((CALLS >= 1 && CALLS <= 10000)) || { echo "sip_cps: CALLS must be 1..10000" >&2; exit 2; }
((RATE >= 1 && RATE <= 1000)) || { echo "sip_cps: RATE must be 1..1000" >&2; exit 2; }
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

command -v sipp >/dev/null || { echo "sip_cps: needs sipp (Debian package sip-tester; scripts/setup.sh --test)" >&2; exit 2; }
cargo build --release --locked --quiet
BIN="$TARGET_DIR/release/slotline"

free_port() { # a loopback port free for UDP and TCP
    python3 -c 'import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 0)); p = u.getsockname()[1]
    t = socket.socket()
    try: t.bind(("127.0.0.1", p)); print(p); break
    except OSError: pass'
}
udp_bound() { # udp_bound PORT: someone listens on 127.0.0.1:PORT/udp
    python3 -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
try: s.bind(("127.0.0.1", int(sys.argv[1]))); sys.exit(1)
except OSError: sys.exit(0)' "$1"
}
wait_bound() { # wait_bound NAME PORT: up to 10 s
    for _ in $(seq 100); do udp_bound "$2" && return 0; sleep 0.1; done
    echo "sip_cps: $1 did not start on port $2" >&2; exit 1
}

# slotline: no call limit or INVITE rate limit in the way, RTP ports for RATE × 3 calls up at once.
SLOTLINE_PORT=$(free_port)
SLOTLINE_DATA_DIR="$work/data" SLOTLINE_SIP__ADDR="127.0.0.1:$SLOTLINE_PORT" SLOTLINE_SIP__MAX_CALLS=10000 \
SLOTLINE_SIP__INVITES_PER_SECOND=100000 SLOTLINE_API__ADDR=127.0.0.1:0 SLOTLINE_METRICS__ADDR=127.0.0.1:0 \
SLOTLINE_LOG__LEVEL=warn SLOTLINE_VOICE__ENABLED=false SLOTLINE_RTP__PORT_MIN=30000 SLOTLINE_RTP__PORT_MAX=39999 \
  "$BIN" serve >"$work/slotline.log" 2>&1 &
pids+=($!)
# sipp's built-in UAS (180, 200, waits for ACK and BYE); it ends after CALLS calls.
UAS_PORT=$(free_port)
(cd "$work" && exec sipp -sn uas -i 127.0.0.1 -mi 127.0.0.1 -p "$UAS_PORT" -nostdin -m "$CALLS" -timeout 180s \
   >"$work/uas.log" 2>&1) &
pids+=($!)
wait_bound slotline "$SLOTLINE_PORT"
wait_bound "sipp UAS" "$UAS_PORT"
if [[ "${STALL_DB:-0}" == 1 ]]; then
    # Holds the write lock until killed at exit (slotline's writes wait on it; reads go on in WAL mode).
    python3 -c 'import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(600)' "$work/data/slotline.db" >"$work/stall.log" 2>&1 &
    pids+=($!)
    for _ in $(seq 100); do grep -q locked "$work/stall.log" 2>/dev/null && break; sleep 0.1; done
    grep -q locked "$work/stall.log" || { echo "sip_cps: could not take SQLite's write lock" >&2; exit 1; }
fi

run() { # run NAME PORT
    local name=$1 port=$2
    mkdir -p "$work/$name"
    (cd "$work/$name" && sipp "127.0.0.1:$port" -sf "$OLDPWD/tests/sipp/basic_call.xml" -s +15550100000 \
       -i 127.0.0.1 -mi 127.0.0.1 -p "$(free_port)" -r "$RATE" -m "$CALLS" -l $((RATE * 5)) -nostdin \
       -timeout 120s -timeout_error -trace_msg -trace_stat -fd 1 >sipp.out 2>&1) || true
    python3 - "$work/$name" "$name" <<'PY'
import csv, datetime, glob, sys
folder, name = sys.argv[1], sys.argv[2]
stats = {}
for path in glob.glob(f"{folder}/*_.csv"):
    rows = list(csv.reader(open(path), delimiter=";"))
    if len(rows) >= 2:
        stats = dict(zip(rows[0], rows[-1]))
ok, failed = int(stats.get("SuccessfulCall(C)", 0) or 0), int(stats.get("FailedCall(C)", 0) or 0)
# The message trace: "----...---- 2026-12-02 04:33:28.122736", then "UDP message sent|received", then the message.
invite_at, answer_at = {}, {}
for path in glob.glob(f"{folder}/*_messages.log"):
    for block in open(path, errors="replace").read().split("-----------------------------------------------")[1:]:
        lines = block.strip("\n").split("\n")
        if len(lines) < 4:
            continue
        try:
            at = datetime.datetime.strptime(lines[0].strip(), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        except ValueError:
            continue
        start = lines[3].strip()
        call_id = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith(("call-id:", "i:"))), None)
        cseq = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith("cseq:")), "")
        if call_id is None:
            continue
        if "sent" in lines[1] and start.startswith("INVITE "):
            invite_at.setdefault(call_id, at)
        elif "received" in lines[1] and start.startswith("SIP/2.0 200") and cseq.endswith("INVITE"):
            answer_at.setdefault(call_id, at)
latencies = sorted((answer_at[c] - invite_at[c]) * 1000 for c in answer_at if c in invite_at)
span = (max(answer_at.values()) - min(invite_at.values())) if answer_at and invite_at else 0
cps = len(latencies) / span if span > 0 else 0.0
p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] if latencies else float("nan")
print(f"{name:>9}: {ok} calls ok, {failed} failed, {len(latencies)} answered at {cps:.1f} calls/s, "
      f"INVITE→200 p50 {p(0.5):.3f} ms, p95 {p(0.95):.3f} ms")
open(f"{folder}/summary", "w").write(f"{cps} {p(0.5)} {p(0.95)} {ok} {failed}\n")
PY
}

echo "sip_cps: $CALLS calls at $RATE calls/s per target, 2 s hold, loopback, $(nproc) cores$([[ "${STALL_DB:-0}" == 1 ]] && echo ", slotline's database stalled")"
run sipp_uas "$UAS_PORT"
run slotline "$SLOTLINE_PORT"
if [[ "${STALL_DB:-0}" == 1 ]]; then
    # Proof of the stall: rows written while the lock was held (a reader still sees the database in WAL mode).
    python3 -c 'import sqlite3, sys
n = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True).execute("SELECT COUNT(*) FROM calls").fetchone()[0]
print(f"    stalled database: {n} calls rows written during the run")' "$work/data/slotline.db"
fi
python3 - "$work" <<'PY'
import sys
w = sys.argv[1]
uas = [float(x) for x in open(f"{w}/sipp_uas/summary").read().split()]
sl = [float(x) for x in open(f"{w}/slotline/summary").read().split()]
print(f"    ratio: slotline/sipp-UAS throughput {sl[0] / uas[0]:.2f}, "
      f"p50 latency {sl[1] / uas[1]:.1f}x, p95 latency {sl[2] / uas[2]:.1f}x")
if sl[4] > 0 or uas[4] > 0:
    print("sip_cps: some calls failed (see the counts above)", file=sys.stderr)
    sys.exit(1)
PY
