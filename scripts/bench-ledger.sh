#!/usr/bin/env bash
# Ledger benchmarks (issue 4): end-to-end balance updates per second with exactly-once effects,
# stream vs the legacy poller on the same database and the same events (a ratio), produce→commit
# latency p50/p99 at half the maximum rate, and the peak RSS of a ledger worker process.
#
#   scripts/bench-ledger.sh     # release build, SQLite and PostgreSQL, prints a markdown table
#
# Knobs: BENCH_EVENTS [50000], BENCH_ACCOUNTS [5000], BENCH_POLLERS [4], BENCH_WORKERS [1],
#        BENCH_PARTITIONS [16], BENCH_LATENCY_SECONDS [10], BENCH_SKIP_BUILD [0],
#        BENCH_STORES ["sqlite postgres"], BENCH_TMP [/tmp]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
EVENTS=${BENCH_EVENTS:-50000}
ACCOUNTS=${BENCH_ACCOUNTS:-5000}
POLLERS=${BENCH_POLLERS:-4}
WORKERS=${BENCH_WORKERS:-1}
PARTITIONS=${BENCH_PARTITIONS:-16}
LATENCY=${BENCH_LATENCY_SECONDS:-10}
STORES=${BENCH_STORES:-"sqlite postgres"}
TMPROOT=${BENCH_TMP:-/tmp}

if [[ "${BENCH_SKIP_BUILD:-0}" != 1 ]]; then swift build -c release --product brook >&2; fi
BROOK="$ROOT/.build/release/brook"
WORK=$(mktemp -d "$TMPROOT/brook-ledger-bench-XXXXXX")
chmod 755 "$WORK"  # the postgres user must reach its data dir inside
PG_PID_DIR=""
cleanup() {
    [[ -n "${BROKER_PID:-}" ]] && kill "$BROKER_PID" 2>/dev/null || true
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

# Peak RSS of one `brook ledger run` worker catching up on EVENTS events.
worker_rss() { # worker_rss DB_URL
    local db=$1 port
    port=$((30000 + RANDOM % 20000))
    "$BROOK" broker --listen "127.0.0.1:$port" --data-dir "$WORK/broker-rss-$RANDOM" --log-level error >/dev/null 2>&1 &
    BROKER_PID=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
    printf 'topics:\n  - name: trades\n    partitions: %s\n' "$PARTITIONS" >"$WORK/rss.yaml"
    "$BROOK" topics apply -f "$WORK/rss.yaml" --bootstrap "127.0.0.1:$port" >/dev/null
    "$BROOK" ledger generate --bootstrap "127.0.0.1:$port" --accounts "$ACCOUNTS" --events "$EVENTS" 2>/dev/null
    "$BROOK" ledger run --bootstrap "127.0.0.1:$port" --db "$db" >/dev/null 2>&1 &
    local wpid=$! peak=0
    local start=$SECONDS
    "$BROOK" ledger verify --bootstrap "127.0.0.1:$port" --db "$db" --wait-seconds 600 >"$WORK/verify.txt" 2>&1 &
    local vpid=$!
    while kill -0 $vpid 2>/dev/null; do
        local hwm
        hwm=$(awk '/VmHWM/ {print $2}' /proc/$wpid/status 2>/dev/null || echo 0)
        ((hwm > peak)) && peak=$hwm
        sleep 0.2
    done
    wait $vpid || { echo "verify failed:" >&2; cat "$WORK/verify.txt" >&2; }
    hwm=$(awk '/VmHWM/ {print $2}' /proc/$wpid/status 2>/dev/null || echo 0)
    ((hwm > peak)) && peak=$hwm
    kill -TERM $wpid 2>/dev/null; wait $wpid 2>/dev/null || true
    kill "$BROKER_PID" 2>/dev/null; wait "$BROKER_PID" 2>/dev/null || true
    BROKER_PID=""
    echo "$((peak / 1024)) MiB ($((SECONDS - start)) s to catch up and verify: $(tail -n1 "$WORK/verify.txt"))"
}

echo "## Ledger benchmark — $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "$EVENTS events, $ACCOUNTS accounts, $POLLERS pollers vs $WORKERS worker(s) on $PARTITIONS partitions; embedded broker with fsync."
echo
echo "| store | stream vs poller, latency | worker peak RSS |"
echo "|---|---|---|"
for store in $STORES; do
    case $store in
        sqlite) db="sqlite:$WORK/ledger.sqlite" ;;
        postgres) start_postgres; db=$PG_URL ;;
        *) echo "unknown store $store" >&2; exit 2 ;;
    esac
    line=$("$BROOK" ledger bench --db "$db" --events "$EVENTS" --accounts "$ACCOUNTS" --pollers "$POLLERS" --workers "$WORKERS" \
        --partitions "$PARTITIONS" --latency-seconds "$LATENCY" | tail -n1)
    rssdb=$db
    [[ $store == sqlite ]] && rssdb="sqlite:$WORK/rss.sqlite"
    if [[ $store == postgres ]]; then
        $PG_RUNAS "$PG_BIN/createdb" -h "$PG_PID_DIR" -p "$PG_PORT" -U postgres rss
        rssdb="postgres://postgres@/rss?host=$PG_PID_DIR&port=$PG_PORT"
    fi
    rss=$(worker_rss "$rssdb")
    echo "| $store | $line | $rss |"
done
