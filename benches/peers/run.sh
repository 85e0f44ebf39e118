#!/usr/bin/env bash
# Peer comparison: the official HubSpot Python SDK and simple-salesforce against this
# workspace's clients, reading the same sandbox data (rate limits off), each process under
# /usr/bin/time -v. Prints records read, CPU seconds (user + sys), peak RSS, and ratios.
# Not run in CI. See benches/README.md.
#
#   benches/peers/run.sh [contacts=100000] [seed=7]
#
# Env: CARGO_TARGET_DIR (default target), PEERS_VENV (default /tmp/cativa-peers-venv).
set -euo pipefail

N="${1:-100000}"
# Contacts updated by the batch-update runs (each side reads their ids, then updates by 100).
N_UPDATE="${N_UPDATE:-10000}"
SEED="${2:-7}"
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}"
VENV="${PEERS_VENV:-/tmp/cativa-peers-venv}"
HS_PROPS="email,firstname,lastname,jobtitle,phone,lifecyclestage"
SOQL="SELECT Id, SystemModstamp, Email, FirstName, LastName, Title, Phone FROM Contact"

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (Debian package: time)" >&2; exit 1; }

echo "== building (release)" >&2
(cd "$ROOT" && cargo build --release -q -p sync-sandbox --bin sync-sandbox \
    && cargo build --release -q -p cativa-crm-sync-benches --bin peer_hubspot --bin peer_hubspot_update --bin peer_salesforce)

if [ ! -x "$VENV/bin/python" ]; then
    echo "== creating $VENV" >&2
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q hubspot-api-client simple-salesforce
PY="$VENV/bin/python"

WORK="$(mktemp -d)"
SANDBOX_PID=""
cleanup() {
    [ -n "$SANDBOX_PID" ] && kill "$SANDBOX_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

echo "== seeding $N contacts (seed $SEED), rate limits off" >&2
"$TARGET/release/sync-sandbox" --json --rate-limits off --contacts "$N" --seed "$SEED" \
    >"$WORK/endpoints" 2>"$WORK/sandbox.err" &
SANDBOX_PID=$!
for _ in $(seq 1 600); do
    [ -s "$WORK/endpoints" ] && break
    kill -0 "$SANDBOX_PID" 2>/dev/null || { cat "$WORK/sandbox.err" >&2; exit 1; }
    sleep 0.1
done
field() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]][sys.argv[3]])" "$WORK/endpoints" "$1" "$2"; }
HS_URL="$(field hubspot url)"
HS_TOKEN="$(field hubspot token)"
SF_URL="$(field salesforce url)"
SF_TOKEN="$(field salesforce token)"

# measure NAME CMD...: one run under /usr/bin/time -v; stores "records cpu_s rss_mib".
declare -A RESULT
measure() {
    local name="$1"
    shift
    /usr/bin/time -v "$@" >"$WORK/$name.out" 2>"$WORK/$name.time" || {
        cat "$WORK/$name.out" "$WORK/$name.time" >&2
        exit 1
    }
    RESULT[$name]="$(awk -v out="$WORK/$name.out" '
        /User time \(seconds\)/ { u = $NF }
        /System time \(seconds\)/ { s = $NF }
        /Maximum resident set size/ { r = $NF }
        END {
            while ((getline line < out) > 0) if (line ~ /^records /) { split(line, a, " "); n = a[2] }
            printf "%s %.3f %.1f", n, u + s, r / 1024
        }' "$WORK/$name.time")"
}

echo "== running" >&2
measure hs_python "$PY" "$HERE/hubspot_read.py" "$HS_URL" "$HS_TOKEN" "$HS_PROPS"
measure hs_ours "$TARGET/release/peer_hubspot" "$HS_URL" "$HS_TOKEN" "$HS_PROPS"
measure hs_update_python "$PY" "$HERE/hubspot_update.py" "$HS_URL" "$HS_TOKEN" "$N_UPDATE"
measure hs_update_ours "$TARGET/release/peer_hubspot_update" "$HS_URL" "$HS_TOKEN" "$N_UPDATE"
measure sf_pages_python "$PY" "$HERE/salesforce_read.py" pages "$SF_URL" "$SF_TOKEN" "$SOQL"
measure sf_pages_typed "$TARGET/release/peer_salesforce" typed "$SF_URL" "$SF_TOKEN" "$SOQL"
measure sf_pages_ours "$TARGET/release/peer_salesforce" pages "$SF_URL" "$SF_TOKEN" "$SOQL"
measure sf_keep_python "$PY" "$HERE/salesforce_read.py" keep "$SF_URL" "$SF_TOKEN" "$SOQL"
measure sf_keep_ours "$TARGET/release/peer_salesforce" keep "$SF_URL" "$SF_TOKEN" "$SOQL"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg), $(nproc) cores"
printf '%-28s %9s %8s %10s\n' run records cpu_s peak_MiB
for k in hs_python hs_ours hs_update_python hs_update_ours sf_pages_python sf_pages_typed sf_pages_ours sf_keep_python sf_keep_ours; do
    read -r n c r <<<"${RESULT[$k]}"
    printf '%-28s %9s %8s %10s\n' "$k" "$n" "$c" "$r"
done
ratio() {
    read -r _ pc pr <<<"${RESULT[$1]}"
    read -r _ oc or <<<"${RESULT[$2]}"
    awk -v pc="$pc" -v oc="$oc" -v pr="$pr" -v or="$or" -v what="$3" 'BEGIN {
        printf "%-28s CPU %.1fx less, peak memory %.0f%% of Python'"'"'s\n", what, pc / (oc > 0 ? oc : 0.001), 100 * or / pr }'
}
ratio hs_python hs_ours "HubSpot full read"
ratio hs_update_python hs_update_ours "HubSpot batch update"
ratio sf_pages_python sf_pages_typed "Salesforce pages, typed"
ratio sf_pages_python sf_pages_ours "Salesforce pages, CrmContact"
ratio sf_keep_python sf_keep_ours "Salesforce keep-all"
