# Throwaway servers for one test run, sourced by scripts/test.sh (bash; not run on its own).
#   start_postgres   a PostgreSQL cluster in a temporary directory, trust auth, a free port on 127.0.0.1;
#                    exports IT_POSTGRES_URL. Skipped when IT_POSTGRES_URL is already set.
# (Redis is not started here: LiveKit keeps its SIP trunks and dispatch rules in Redis without a key prefix,
# so each LiveKit test starts a throwaway redis-server of its own, see tests/it/livekit_rig.rs.)
# Each start registers its cleanup; `stop_services` (trapped on EXIT, INT and TERM by the caller) stops every
# server this shell started and removes its directory, whether the run passed, failed or was interrupted.

services_dirs=()
services_stops=()

stop_services() {
    local i
    for ((i = ${#services_stops[@]} - 1; i >= 0; i--)); do
        eval "${services_stops[$i]}" >/dev/null 2>&1 || true
    done
    for dir in "${services_dirs[@]}"; do
        rm -rf "$dir"
    done
    services_stops=()
    services_dirs=()
}

# A TCP port on 127.0.0.1 that nothing listens on now (the kernel picks it).
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The directory of the newest installed PostgreSQL server programs (Debian keeps them off PATH).
postgres_bindir() {
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    if [[ -x "$dir/initdb" ]]; then
        echo "$dir"
    elif command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
    else
        echo "services: PostgreSQL is not installed (run scripts/setup.sh --test)" >&2
        return 1
    fi
}

# Runs a command as the owner of the throwaway servers: initdb and postgres refuse to run as root, so root
# runs them as the `postgres` user that Debian's package creates; anyone else runs them as themselves.
as_server_user() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start_postgres() {
    if [[ -n "${IT_POSTGRES_URL:-}" ]]; then
        echo "services: using the PostgreSQL at IT_POSTGRES_URL" >&2
        return 0
    fi
    local bin dir port
    bin=$(postgres_bindir) || return 1
    dir=$(mktemp -d "${TMPDIR:-/tmp}/slotline-pg.XXXXXX")
    services_dirs+=("$dir")
    [[ $(id -u) == 0 ]] && chown postgres: "$dir"
    port=$(free_port)
    as_server_user "$bin/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    services_stops+=("as_server_user '$bin/pg_ctl' --pgdata='$dir/data' --mode=immediate --wait stop")
    # The socket lives in the cluster's own directory; fsync is off because the data is thrown away.
    # Every test creates its own database with its own pool, in parallel: room for many connections.
    as_server_user "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/server.log" --wait --timeout=60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off \
            -c synchronous_commit=off -c max_connections=400" start >/dev/null || {
        cat "$dir/server.log" >&2
        return 1
    }
    export IT_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    echo "services: PostgreSQL for this run on 127.0.0.1:$port (removed at the end)" >&2
}
