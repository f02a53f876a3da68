#!/usr/bin/env bash
# Brook's Swift client vs librdkafka, side by side against the same Brook broker.
#
#   scripts/bench-client.sh            # build, run everything, print + write bench/client-results-latest.md
#
# Starts one embedded broker (`brook broker`, release build, --flush os by default: the client
# is what is measured, not the disk) on a fresh data dir and a free loopback port. For each
# record size (100 B, 1 KiB) it then runs, one after the other:
#   producer  bench/rdkafka_producer_bench (librdkafka)  vs  `brook perf produce`
#             N records, acks=all, idempotent, linger 5 ms, no compression, keyless, each to a
#             topic of its own; Brook once reading a delivery report per record (as librdkafka's
#             driver does with its callback) and once without (`--delivery-reports false`: the
#             log end offsets must then have moved by exactly N)
#   consumer  bench/rdkafka_consumer_bench (librdkafka)  vs  `brook perf consume`
#             both read the topic librdkafka produced, from the beginning, N records
# Each client runs under /usr/bin/time, whose maximum resident set size is the peak RSS
# reported; msgs/s and MB/s are each tool's own RESULT line (timed from the first record to
# the last acknowledgement / record read).
#
# Environment knobs (defaults in brackets):
#   BENCH_SIZES ["100 1024"]         record sizes
#   BENCH_RECORDS_100 [2000000]      records per producer run for 100 B records
#   BENCH_RECORDS_1024 [500000]      records per producer run for 1 KiB records (others: 5e8/size)
#   BENCH_FLUSH [os]                 the broker's --flush policy (os or fsync)
#   BENCH_PARTITIONS [1]             partitions of each topic (broker --default-partitions)
#   BENCH_BATCH_SIZE [unset]         batch.size for both producers (unset: each client's own
#                                    default — librdkafka 1,000,000 bytes, Brook 65,536)
#   BENCH_REPEAT [1]                 run each pair this many times (alternating) and keep all rows
#   BENCH_SKIP_BUILD [0]             1: use the existing binaries
#   BENCH_BUILD_PATH [.build]        swift build --build-path
#   BENCH_TMP [/tmp]                 where the broker's data dir goes
#   BENCH_OUT [bench/client-results-latest.md]
# Only loopback addresses are used. Exit status is non-zero if any run failed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

SIZES=${BENCH_SIZES:-"100 1024"}
FLUSH=${BENCH_FLUSH:-os}
PARTITIONS=${BENCH_PARTITIONS:-1}
REPEAT=${BENCH_REPEAT:-1}
BUILD_PATH=${BENCH_BUILD_PATH:-.build}
TMP_BASE=${BENCH_TMP:-/tmp}
OUT=${BENCH_OUT:-$ROOT/bench/client-results-latest.md}
PRODUCER=$ROOT/$BUILD_PATH/bench/rdkafka_producer_bench
CONSUMER=$ROOT/$BUILD_PATH/bench/rdkafka_consumer_bench
BROOK=$ROOT/$BUILD_PATH/release/brook
# shellcheck source=bench-common.sh
source "$ROOT/scripts/bench-common.sh"

records_for() { # size
  case $1 in
    100) echo "${BENCH_RECORDS_100:-2000000}" ;;
    1024) echo "${BENCH_RECORDS_1024:-500000}" ;;
    *) awk -v s="$1" 'BEGIN {printf "%d", 5e8 / s}' ;;
  esac
}

# ---------------------------------------------------------------- build
if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  [[ -f /usr/include/librdkafka/rdkafka.h ]] || { log "librdkafka-dev missing: apt-get install -y librdkafka-dev"; exit 2; }
  mkdir -p "$(dirname "$PRODUCER")"
  log "building the C drivers ..."
  cc -O2 -Wall -o "$PRODUCER" bench/rdkafka_producer_bench.c -lrdkafka
  cc -O2 -Wall -o "$CONSUMER" bench/rdkafka_consumer_bench.c -lrdkafka
  log "building brook (release) ..."
  swift build -c release --product brook --build-path "$BUILD_PATH" >&2
fi
for b in "$PRODUCER" "$CONSUMER" "$BROOK"; do [[ -x $b ]] || { log "missing $b"; exit 2; }; done

trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

# ---------------------------------------------------------------- runs
ROWS=()   # "role|client|size|records|msgs|mbps|rss_kib|cpu_s|status"
FAILED_RUNS=0

# run_client role client size cmd...: runs cmd under /usr/bin/time, appends a row
run_client() {
  local role=$1 client=$2 size=$3; shift 3
  local tfile="$TMP_BASE/brook-bench-time.$$" efile="$TMP_BASE/brook-bench-err.$$" out rc=0
  log "$role, $client, $(human_size "$size") ..."
  out=$(/usr/bin/time -f '%M' -o "$tfile" "$@" 2>"$efile") || rc=$?
  local result rss status=ok
  result=$(grep '^RESULT ' <<<"$out" || true)
  rss=$(tail -1 "$tfile" 2>/dev/null || echo 0)
  if [[ -z $result || $rc != 0 ]]; then
    status="FAILED (exit $rc)"; FAILED_RUNS=$((FAILED_RUNS + 1)); tail -5 "$efile" >&2
  fi
  [[ -n $result ]] && log "  $result"
  ROWS+=("$role|$client|$size|$(field "$result" records)|$(field "$result" msgs_per_s)|$(field "$result" mb_per_s)|$rss|$(field "$result" client_cpu_s)|$status")
  rm -f "$tfile" "$efile"
}

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
if awk -v l="${LOAD_BEFORE%% *}" 'BEGIN {exit !(l > 0.5)}'; then
  log "warning: load average is $LOAD_BEFORE — other work on this machine will skew the numbers"
fi
START=$(date +%s)
start_broker "$FLUSH" || exit 1
BOOT=127.0.0.1:$BROKER_PORT
BROKER_CPU0=$(proc_ticks "$BROKER_PID")
for size in $SIZES; do
  n=$(records_for "$size")
  for rep in $(seq "$REPEAT"); do
    rt="rdk-$size-$rep"; bt="brook-$size-$rep"
    run_client producer librdkafka "$size" "$PRODUCER" -b "$BOOT" -t "$rt" -s "$size" -n "$n" -a all -l 5 -i true -q \
      ${BENCH_BATCH_SIZE:+--batch-size "$BENCH_BATCH_SIZE"}
    run_client producer Brook "$size" "$BROOK" perf produce --bootstrap "$BOOT" --topic "$bt" --records "$n" \
      --record-size "$size" --acks all --linger-ms 5 --idempotence true ${BENCH_BATCH_SIZE:+--batch-size "$BENCH_BATCH_SIZE"}
    # The same without reading a report per record (checked by the log end offsets instead).
    run_client producer "Brook, no reports" "$size" "$BROOK" perf produce --bootstrap "$BOOT" --topic "$bt-nr" \
      --records "$n" --record-size "$size" --acks all --linger-ms 5 --idempotence true --delivery-reports false \
      ${BENCH_BATCH_SIZE:+--batch-size "$BENCH_BATCH_SIZE"}
    # librdkafka's producer sent one warm-up record before the measured ones.
    run_client consumer librdkafka "$size" "$CONSUMER" -b "$BOOT" -t "$rt" -n $((n + 1))
    run_client consumer Brook "$size" "$BROOK" perf consume --bootstrap "$BOOT" --topic "$rt" --records $((n + 1))
  done
done
BROKER_HWM=$(proc_hwm_kb "$BROKER_PID")
ELAPSED=$(( $(date +%s) - START ))
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
cleanup

# ---------------------------------------------------------------- report
commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=$(git -C "$ROOT" status --porcelain -- Sources Package.swift 2>/dev/null | head -1)
[[ -n $dirty ]] && commit="$commit (+ uncommitted changes)"
rdk=$(dpkg-query -W -f='${Version}' librdkafka1 2>/dev/null || echo '?')
cpu_model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
declare -A RDK_MSGS
for r in "${ROWS[@]}"; do
  IFS='|' read -r role client size _ msgs _ _ _ _ <<<"$r"
  [[ $client == librdkafka && -n $msgs ]] && RDK_MSGS[$role/$size]=$msgs
done
{
  echo "### Client — $(date -u '+%Y-%m-%d %H:%M UTC'), commit $commit"
  echo
  echo "Machine: $(nproc) × $cpu_model. Load average before/after: $LOAD_BEFORE / $LOAD_AFTER (other engineers' builds share the 2 cores)."
  echo "Broker: \`brook broker --flush $FLUSH\` (release), $PARTITIONS partition(s) per topic, loopback; broker peak RSS $(awk -v k="${BROKER_HWM:-0}" 'BEGIN {printf "%.0f", k / 1024}') MiB."
  echo "Producers: acks=all, idempotent, linger 5 ms, batch.size ${BENCH_BATCH_SIZE:-as each client defaults}, no compression, keyless records, one payload reused; librdkafka $rdk (\`bench/rdkafka_producer_bench\`) vs \`brook perf produce\`. Consumers: every partition assigned, from the beginning, no group; \`bench/rdkafka_consumer_bench\` vs \`brook perf consume\`, both reading the topic librdkafka wrote."
  echo "MB = 10⁶ bytes of record values. Peak RSS = the client process's maximum resident set (/usr/bin/time). Whole run ${ELAPSED} s."
  echo
  echo "| role | client | record size | records | msgs/s | MB/s | vs librdkafka | peak RSS | client CPU s | status |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
  for r in "${ROWS[@]}"; do
    IFS='|' read -r role client size records msgs mbps rss cpu status <<<"$r"
    ratio=$(awk -v a="$msgs" -v m="${RDK_MSGS[$role/$size]:-}" 'BEGIN {if (m > 0 && a != "") printf "%.2f", a / m; else print "-"}')
    echo "| $role | $client | $(human_size "$size") | $(fmt_int "$records") | $(fmt_int "$msgs") | ${mbps:--} | $ratio | $(awk -v k="$rss" 'BEGIN {printf "%.0f MiB", k / 1024}') | ${cpu:--} | $status |"
  done
} >"$OUT.tmp"
mv "$OUT.tmp" "$OUT"
cat "$OUT"
log "written to ${OUT#"$ROOT"/}"
[[ $FAILED_RUNS == 0 ]] || { log "$FAILED_RUNS run(s) failed"; exit 1; }
