#!/usr/bin/env bash
# `brook loadtest produce` vs `brook perf produce`, side by side on one broker: the load test's
# own cost (a clock read and a store per record, a latency histogram fed from the delivery
# reports) must leave it at ≥ 90% of perf's throughput with the same settings.
#
#   scripts/bench-loadtest.sh          # build (release), run, print both and the ratio
#
# One `brook broker` (--flush os: the client is measured, not the disk) on a free loopback port.
# Each round runs perf then loadtest (alternating which goes first), each to a topic of its own:
# N records of SIZE bytes, acks=all, idempotent, linger 5 ms, no compression, keyless, both
# reading a delivery report per record. The ratio is of the medians over the rounds.
#
# Environment knobs: BENCH_RECORDS [5000000], BENCH_SIZE [100], BENCH_REPEAT [7] (shorter runs are
# mostly noise on a shared machine),
# BENCH_SKIP_BUILD [0], BENCH_BUILD_PATH [.build], BENCH_CONFIG [release], BENCH_TMP [/tmp].
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
RECORDS=${BENCH_RECORDS:-5000000}
SIZE=${BENCH_SIZE:-100}
REPEAT=${BENCH_REPEAT:-7}
BUILD_PATH=${BENCH_BUILD_PATH:-.build}
CONFIG=${BENCH_CONFIG:-release}
TMP_BASE=${BENCH_TMP:-/tmp}
BROOK=$ROOT/$BUILD_PATH/$CONFIG/brook
PARTITIONS=1
# shellcheck source=bench-common.sh
source "$ROOT/scripts/bench-common.sh"

if [[ ${BENCH_SKIP_BUILD:-0} != 1 ]]; then
  log "building brook ($CONFIG) ..."
  swift build -c "$CONFIG" --product brook --build-path "$BUILD_PATH" >&2
fi
[[ -x $BROOK ]] || { log "missing $BROOK"; exit 2; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
start_broker os

PERF=()
LOAD=()
run_perf() {
  local out
  out=$("$BROOK" perf produce --bootstrap "127.0.0.1:$BROKER_PORT" --topic "perf-$1" --records "$RECORDS" \
    --record-size "$SIZE" --acks all --linger-ms 5 2>/dev/null)
  PERF+=("$(field "$(grep '^RESULT ' <<<"$out")" msgs_per_s)")
  log "  perf produce:     ${PERF[-1]} records/s"
}
run_load() {
  local out
  out=$("$BROOK" loadtest produce --bootstrap "127.0.0.1:$BROKER_PORT" --topic "load-$1" --num-records "$RECORDS" \
    --record-size "$SIZE" --throughput -1 --producer-props acks=all linger.ms=5 enable.idempotence=true)
  LOAD+=("$(tail -1 <<<"$out" | awk -F'records sent, ' '{split($2, a, " "); printf "%d", a[1]}')")
  log "  loadtest produce: ${LOAD[-1]} records/s   ($(tail -1 <<<"$out"))"
}
for r in $(seq "$REPEAT"); do
  log "round $r/$REPEAT ($RECORDS records of $SIZE B)"
  if (( r % 2 )); then run_perf "$r"; run_load "$r"; else run_load "$r"; run_perf "$r"; fi
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR] = $1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
P=$(median "${PERF[@]}")
L=$(median "${LOAD[@]}")
RATIO=$(awk -v l="$L" -v p="$P" 'BEGIN {printf "%.3f", l / p}')
echo "perf produce     median $(fmt_int "$P") records/s  (runs: ${PERF[*]})"
echo "loadtest produce median $(fmt_int "$L") records/s  (runs: ${LOAD[*]})"
echo "RESULT ratio=$RATIO records=$RECORDS size=$SIZE repeat=$REPEAT"
awk -v r="$RATIO" 'BEGIN {exit !(r >= 0.9)}' || { log "loadtest produce is below 90% of perf produce"; exit 1; }
