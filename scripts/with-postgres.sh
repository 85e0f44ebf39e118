#!/usr/bin/env bash
# Runs a command against a throwaway PostgreSQL cluster, then tears the cluster down.
#
#   scripts/with-postgres.sh cargo test -p sync-store
#
# - installs Debian's `postgresql` package when `initdb` is missing (needs root);
# - creates a cluster in a temporary directory, owned by a non-root user (PostgreSQL refuses
#   to run as root: as root, the script uses, or creates, the `postgres` system user);
# - starts it on a free loopback port (no Unix socket outside the temp dir, trust auth on
#   127.0.0.1 only) and creates the database `sync_test`;
# - exports SYNC_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:<port>/sync_test and runs
#   the command, returning its exit status;
# - stops the cluster and deletes the directory on exit, whatever happens.
#
# The cluster runs with fsync off (it is thrown away); set SYNC_PG_FSYNC=on to keep it.
set -euo pipefail
# useradd and runuser live in sbin, which a non-login shell's PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

if [ "$#" -eq 0 ]; then
    echo "usage: $0 <command> [args...]" >&2
    exit 2
fi

pg_bindir() {
    local initdb
    if initdb=$(command -v initdb 2>/dev/null); then
        dirname "$(readlink -f "$initdb")"
        return
    fi
    # Debian keeps the server binaries out of PATH.
    local dir
    dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then
        echo "$dir"
    fi
}

PGBIN=$(pg_bindir)
if [ -z "$PGBIN" ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "with-postgres: initdb not found and not root: install Debian's postgresql package" >&2
        exit 1
    fi
    echo "with-postgres: installing postgresql (apt-get)" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
    PGBIN=$(pg_bindir)
    if [ -z "$PGBIN" ]; then
        echo "with-postgres: postgresql installed but initdb still not found" >&2
        exit 1
    fi
fi

# PostgreSQL will not run as root: run the server as `postgres` when we are root.
if [ "$(id -u)" -eq 0 ]; then
    if ! id postgres >/dev/null 2>&1; then
        useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/sh postgres
    fi
    as_pg() { runuser -u postgres -- "$@"; }
else
    as_pg() { "$@"; }
fi

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/sync-pg.XXXXXX")
chmod 755 "$WORKDIR"
if [ "$(id -u)" -eq 0 ]; then
    chown postgres: "$WORKDIR"
fi
DATA="$WORKDIR/data"
STARTED=0

cleanup() {
    local status=$?
    if [ "$STARTED" -eq 1 ]; then
        as_pg "$PGBIN/pg_ctl" -D "$DATA" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$WORKDIR"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

as_pg "$PGBIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >"$WORKDIR/initdb.log" 2>&1 || {
    cat "$WORKDIR/initdb.log" >&2
    exit 1
}

port_free() {
    # A refused connection means nobody listens there.
    ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

FSYNC=${SYNC_PG_FSYNC:-off}
PORT=""
for _ in $(seq 1 20); do
    candidate=$((20000 + RANDOM % 40000))
    port_free "$candidate" || continue
    if as_pg "$PGBIN/pg_ctl" -D "$DATA" -l "$WORKDIR/server.log" -w -t 60 \
        -o "-k $WORKDIR -h 127.0.0.1 -p $candidate -c fsync=$FSYNC -c max_connections=200" start >/dev/null; then
        PORT=$candidate
        STARTED=1
        break
    fi
done
if [ -z "$PORT" ]; then
    echo "with-postgres: could not start PostgreSQL; server log:" >&2
    cat "$WORKDIR/server.log" >&2 || true
    exit 1
fi

as_pg "$PGBIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres sync_test
export SYNC_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$PORT/sync_test"
echo "with-postgres: PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (SYNC_TEST_POSTGRES_URL set)" >&2

set +e
"$@"
status=$?
set -e
exit "$status"
