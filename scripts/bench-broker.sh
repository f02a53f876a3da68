#!/usr/bin/env bash
# Brook broker ingest benchmark, side by side with librdkafka's in-memory mock cluster.
#
#   scripts/bench-broker.sh            # build, run everything, print + write bench/results-latest.md
#
# For each record size (100 B, 1 KiB) it runs bench/rdkafka_producer_bench (librdkafka 2.0.2,
# acks=all, idempotent, linger 5 ms, no compression) against:
#   mock        librdkafka's mock cluster (test.mock.num.brokers=1), in-process
#   brook-fsync `brook broker --flush fsync` on a fresh data dir and a free loopback port
#   brook-os    `brook broker --flush os`, likewise
# and then a large-batch run (64 KiB records, batch.size 1 MiB, linger 50 ms) against all three.
# For Brook it samples the broker's CPU time (utime+stime, /proc/PID/stat) around the run and
# its peak RSS (VmHWM, /proc/PID/status).
#
# Environment knobs (defaults in brackets):
#   BENCH_DURATION [8]        seconds of producing per run (plus the drain of what is in flight)
#   BENCH_MAX_BYTES [4e9]     cap on record bytes per run (bounds disk use)
#   BENCH_SIZES ["100 1024"]  record sizes for the normal runs
#   BENCH_LARGE_SIZE [65536]  record size of the large-batch runs (empty: skip them)
#   BENCH_PARTITIONS [1]      partitions of the topic (mock: created so; Brook: --default-partitions)
#   BENCH_PRODUCE_BATCH [0]   >0: driver enqueues with rd_kafka_produce_batch() this many at a time
#   BENCH_TARGETS ["mock brook-fsync brook-os"]
#   BENCH_SKIP_BUILD [0]      1: use the existing binaries
#   BENCH_BUILD_PATH [.build] swift build --build-path
#   BENCH_TMP [/tmp]          where the fresh data dirs go (use a real disk for fsync numbers)
#   BENCH_OUT [bench/results-latest.md]
# Only loopback addresses are used. Exit status is non-zero if any run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

DURATION=${BENCH_DURATION:-8}
MAX_BYTES=${BENCH_MAX_BYTES:-4000000000}
SIZES=${BENCH_SIZES:-"100 1024"}
LARGE_SIZE=${BENCH_LARGE_SIZE-65536}
PARTITIONS=${BENCH_PARTITIONS:-1}
PRODUCE_BATCH=${BENCH_PRODUCE_BATCH:-0}
TARGETS=${BENCH_TARGETS:-"mock brook-fsync brook-os"}
BUILD_PATH=${BENCH_BUILD_PATH:-.build}
TMP_BASE=${BENCH_TMP:-/tmp}
OUT=${BENCH_OUT:-$ROOT/bench/results-latest.md}
DRIVER_SRC=$ROOT/bench/rdkafka_producer_bench.c
DRIVER=$ROOT/$BUILD_PATH/bench/rdkafka_producer_bench
BROOK=$ROOT/$BUILD_PATH/release/brook
CLK_TCK=$(getconf CLK_TCK)
# shellcheck source=bench-common.sh
source "$ROOT/scripts/bench-common.sh"

# ---------------------------------------------------------------- build
needs_brook=0
for t in $TARGETS; do [[ $t == brook-* ]] && needs_brook=1; done

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  if ! [[ -f /usr/include/librdkafka/rdkafka_mock.h ]]; then
    log "librdkafka-dev missing: apt-get install -y librdkafka-dev"; exit 2
  fi
  mkdir -p "$(dirname "$DRIVER")"
  log "building the C driver ..."
  cc -O2 -Wall -o "$DRIVER" "$DRIVER_SRC" -lrdkafka
  if [[ $needs_brook == 1 ]]; then
    log "building brook (release) ..."
    swift build -c release --product brook --build-path "$BUILD_PATH" >&2
  fi
fi
[[ -x $DRIVER ]] || { log "no driver at $DRIVER"; exit 2; }
[[ $needs_brook == 0 || -x $BROOK ]] || { log "no brook binary at $BROOK"; exit 2; }

trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---------------------------------------------------------------- runs
ROWS=()       # "target|size|records|msgs|mbps|ratio|cpu_per_gb|rss|client_cpu_per_gb|status"
declare -A MOCK_MBPS
FAILED_RUNS=0
RUN_N=0

run_one() { # target size large(0|1)
  local target=$1 size=$2 large=$3
  local label=$target count bootstrap extra=() out rc=0
  RUN_N=$((RUN_N + 1))
  count=$(awk -v m="$MAX_BYTES" -v s="$size" 'BEGIN {printf "%d", m / s}')
  [[ $large == 1 ]] && { extra+=(--large); label="$target, large batches"; }
  [[ $PRODUCE_BATCH -gt 0 ]] && extra+=(-B "$PRODUCE_BATCH")
  local cpu0=0 cpu1=0 hwm=""
  if [[ $target == mock ]]; then
    bootstrap=mock:1
  else
    if ! start_broker "${target#brook-}"; then
      ROWS+=("$label|$size|-|-|-|-|-|-|-|broker failed to start"); FAILED_RUNS=$((FAILED_RUNS + 1)); cleanup; return
    fi
    bootstrap=127.0.0.1:$BROKER_PORT
    cpu0=$(proc_ticks "$BROKER_PID")
  fi
  log "run $RUN_N: $label, $size B records, ${DURATION}s ..."
  out=$("$DRIVER" -b "$bootstrap" -t "bench-$RUN_N" -s "$size" -n "$count" -d "$DURATION" \
        -p "$PARTITIONS" -q "${extra[@]}" 2>"$TMP_BASE/brook-bench-driver.$$.err") || rc=$?
  local result
  result=$(grep '^RESULT ' <<<"$out" || true)
  if [[ $target != mock ]]; then
    if kill -0 "$BROKER_PID" 2>/dev/null; then
      cpu1=$(proc_ticks "$BROKER_PID")
      hwm=$(proc_hwm_kb "$BROKER_PID")
    else
      log "broker died during the run:"; tail -20 "$BROKER_DIR/broker.log" >&2; [[ $rc == 0 ]] && rc=1
    fi
    cleanup
  fi
  if [[ -z $result ]]; then
    log "driver printed no RESULT (exit $rc):"; tail -20 "$TMP_BASE/brook-bench-driver.$$.err" >&2
    ROWS+=("$label|$size|-|-|-|-|-|-|-|FAILED (exit $rc)"); FAILED_RUNS=$((FAILED_RUNS + 1)); return
  fi
  log "  $result"
  local records bytes msgs mbps failed ccpu status=ok
  records=$(field "$result" records); bytes=$(field "$result" bytes)
  msgs=$(field "$result" msgs_per_s); mbps=$(field "$result" mb_per_s)
  failed=$(field "$result" failed); ccpu=$(field "$result" client_cpu_s)
  if [[ $rc != 0 || $failed != 0 ]]; then
    status="FAILED: $failed failed deliveries (exit $rc)"; FAILED_RUNS=$((FAILED_RUNS + 1))
    tail -5 "$TMP_BASE/brook-bench-driver.$$.err" >&2
  fi
  local key="$size/$large" ratio cpu_gb="n/a (in-process)" rss="n/a" ccpu_gb
  ccpu_gb=$(awk -v c="$ccpu" -v b="$bytes" 'BEGIN {if (b > 0) printf "%.2f", c / (b / 1e9); else print "-"}')
  if [[ $target == mock ]]; then
    MOCK_MBPS[$key]=$mbps
    ratio="1.00"
  else
    ratio=$(awk -v a="$mbps" -v m="${MOCK_MBPS[$key]:-}" 'BEGIN {if (m > 0) printf "%.2f", a / m; else print "-"}')
    cpu_gb=$(awk -v t=$((cpu1 - cpu0)) -v hz="$CLK_TCK" -v b="$bytes" \
      'BEGIN {if (b > 0) printf "%.2f", (t / hz) / (b / 1e9); else print "-"}')
    rss=$(awk -v k="${hwm:-0}" 'BEGIN {if (k > 0) printf "%.0f MiB", k / 1024; else print "-"}')
  fi
  ROWS+=("$label|$size|$records|$msgs|$mbps|$ratio|$cpu_gb|$rss|$ccpu_gb|$status")
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN {exit !(l > 0.5)}'; then
  log "warning: load average is $LOAD_BEFORE — other work on this machine will skew the numbers"
fi
START=$(date +%s)
for size in $SIZES; do
  for t in $TARGETS; do run_one "$t" "$size" 0; done
done
if [[ -n $LARGE_SIZE ]]; then
  for t in $TARGETS; do run_one "$t" "$LARGE_SIZE" 1; done
fi
ELAPSED=$(( $(date +%s) - START ))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null | head -1)
[[ -n $dirty ]] && commit="$commit (+ uncommitted changes)"
rdk=$(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null || echo '?')
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)

{
  echo "### Broker ingest — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "Machine: $(nproc) × $cpu_model, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo); data dirs on \`$(df --output=source "$TMP_BASE" | tail -1)\` ($TMP_BASE). Load average before/after: $LOAD_BEFORE / $LOAD_AFTER."
  echo "Client: \`bench/rdkafka_producer_bench\` (librdkafka $rdk), acks=all, enable.idempotence=true, linger.ms=5, no compression, one producer, keyless records, $PARTITIONS partition(s), ${DURATION} s of producing per run (≤ $(awk -v m="$MAX_BYTES" 'BEGIN {printf "%.0f", m/1e9}') GB) timed to the last delivery report$([[ $PRODUCE_BATCH -gt 0 ]] && echo ", rd_kafka_produce_batch($PRODUCE_BATCH)"). Large batches: batch.size=1 MiB, linger.ms=50. Loopback only."
  echo "MB = 10⁶ bytes of record values; CPU s/GB = broker utime+stime per 10⁹ record-value bytes; peak RSS = broker VmHWM. The mock runs inside the client process, so its client CPU includes the mock broker."
  echo
  echo "| target | record size | records | msgs/s | MB/s | vs mock | broker CPU s/GB | broker peak RSS | client CPU s/GB | status |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
  for r in "${ROWS[@]}"; do
    IFS='|' read -r label size records msgs mbps ratio cpu_gb rss ccpu_gb status <<<"$r"
    echo "| $label | $(human_size "$size") | $(fmt_int "$records") | $(fmt_int "$msgs") | $mbps | $ratio | $cpu_gb | $rss | $ccpu_gb | $status |"
  done
  echo
  echo "Whole run: ${ELAPSED} s."
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
rm -f "$TMP_BASE/brook-bench-driver.$$.err"
cat "$OUT"
log "written to ${OUT#"$ROOT"/}"
[[ $FAILED_RUNS == 0 ]] || { log "$FAILED_RUNS run(s) failed"; exit 1; }
