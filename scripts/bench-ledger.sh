#!/usr/bin/env bash
# Ledger benchmark (issue 11): `brook ledger bench` — stream vs poller, each ingesting while it
# applies (the poller's trading side INSERTs into pending_events, the stream's produces to the
# embedded broker with fsync); maximum sustained events/s of each, the ratio, produce→commit
# p50/p99/p99.9 at half load and at one fixed rate, the stream's stages, CPU per 1000 events and
# a worker process's peak RSS. For SQLite and PostgreSQL, uniform and zipf-skewed accounts.
#
#   scripts/bench-ledger.sh     # release build; prints each report and a markdown table
#
# Knobs: BENCH_EVENTS [60000], BENCH_ACCOUNTS [5000], BENCH_POLLERS [4], BENCH_WORKERS [1],
#        BENCH_PARTITIONS [16], BENCH_PHASE_SECONDS [5], BENCH_RSS_EVENTS [30000],
#        BENCH_STORES ["sqlite postgres"], BENCH_SKEWS ["uniform zipf"], BENCH_SKIP_BUILD [0],
#        BENCH_TMP [/tmp], BENCH_OUT [dir for the JSON files; default: a temporary one]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
EVENTS=${BENCH_EVENTS:-60000}
ACCOUNTS=${BENCH_ACCOUNTS:-5000}
POLLERS=${BENCH_POLLERS:-4}
WORKERS=${BENCH_WORKERS:-1}
PARTITIONS=${BENCH_PARTITIONS:-16}
PHASE=${BENCH_PHASE_SECONDS:-5}
RSS_EVENTS=${BENCH_RSS_EVENTS:-30000}
STORES=${BENCH_STORES:-"sqlite postgres"}
SKEWS=${BENCH_SKEWS:-"uniform zipf"}
TMPROOT=${BENCH_TMP:-/tmp}

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then swift build -c release --product brook >&2; fi
BROOK="$ROOT/.build/release/brook"
WORK=$(mktemp -d "$TMPROOT/brook-ledger-bench-XXXXXX")
OUT=${BENCH_OUT:-$WORK/json}
mkdir -p "$OUT"
chmod 755 "$WORK"  # the postgres user must reach its data dir inside
PG_PID_DIR=""
cleanup() {
    if [[ -n "$PG_PID_DIR" ]]; then $PG_RUNAS "$PG_BIN/pg_ctl" -D "$PG_PID_DIR/data" -m immediate stop >/dev/null 2>&1 || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT

start_postgres() {
    PG_BIN=$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -n1)")")
    PG_RUNAS=""
    if [[ $(id -u) -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
        PG_RUNAS="runuser -u postgres --"
    fi
    PG_PID_DIR="$WORK/pg"
    mkdir -p "$PG_PID_DIR"
    [[ -n "$PG_RUNAS" ]] && chown postgres "$PG_PID_DIR"
    $PG_RUNAS "$PG_BIN/initdb" -D "$PG_PID_DIR/data" -U postgres -A trust -E UTF8 >/dev/null
    PG_PORT=$((20000 + RANDOM % 30000))
    # A durable server (fsync on): the stream and the poller pay the same commit cost.
    $PG_RUNAS "$PG_BIN/pg_ctl" -D "$PG_PID_DIR/data" -l "$PG_PID_DIR/server.log" -w -o "-p $PG_PORT -k $PG_PID_DIR -c listen_addresses= -c max_connections=200" start >/dev/null
    $PG_RUNAS "$PG_BIN/createdb" -h "$PG_PID_DIR" -p "$PG_PORT" -U postgres bench
    PG_URL="postgres://postgres@/bench?host=$PG_PID_DIR&port=$PG_PORT"
}

echo "## Ledger benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
for store in $STORES; do
    case $store in
        sqlite) db="sqlite:$WORK/ledger.sqlite" ;;
        postgres) [[ -n "$PG_PID_DIR" ]] || start_postgres; db=$PG_URL ;;
        *) echo "unknown store $store" >&2; exit 2 ;;
    esac
    for skew in $SKEWS; do
        echo "### $store, $skew"
        echo '```'
        "$BROOK" ledger bench --db "$db" --skew "$skew" --events "$EVENTS" --accounts "$ACCOUNTS" --pollers "$POLLERS" \
            --workers "$WORKERS" --partitions "$PARTITIONS" --phase-seconds "$PHASE" --rss-events "$RSS_EVENTS" \
            --json "$OUT/ledger-$store-$skew.json"
        echo '```'
        echo
    done
done
python3 - "$OUT" <<'PY'
import json, pathlib, sys
rows = [json.loads(p.read_text()) for p in sorted(pathlib.Path(sys.argv[1]).glob("ledger-*.json"))]
print("| store | skew | stream max sustained | poller max sustained | ratio | stream p50/p99 at half load | poller p50/p99 at half load | CPU s/1000 stream/poller | worker peak RSS |")
print("|---|---|---:|---:|---:|---|---|---|---:|")
for r in rows:
    print(f"| {r['store']} | {r['skew']} | {r['stream_events_per_s']:,.0f}/s | {r['poller_events_per_s']:,.0f}/s | {r['ratio']}× "
          f"| {r.get('stream_p50_ms')} / {r.get('stream_p99_ms')} ms at {r['stream_half_rate']:,.0f}/s "
          f"| {r.get('poller_p50_ms')} / {r.get('poller_p99_ms')} ms at {r['poller_half_rate']:,.0f}/s "
          f"| {r.get('stream_cpu_s_per_1000')} / {r.get('poller_cpu_s_per_1000')} | {r.get('worker_peak_rss_mib')} MiB |")
PY
