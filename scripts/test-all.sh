#!/usr/bin/env bash
# Brook's single test command (also what CI runs through .ci/run):
#   1. scripts/setup-peers.sh            kcat, librdkafka-dev, .venv with confluent-kafka/kafka-python/pytest
#   2. scripts/gen_protocol.py --check   generated protocol code is up to date
#   3. swift build --build-tests
#   4. swift test                        Swift Testing + XCTest
#   5. scripts/fuzz.sh                   request-decoder fuzzing, BROOK_FUZZ_SECONDS (default 60; 0 = off)
#   6. pytest tests/interop              real peers against the real broker binary
# and closes with ONE line:  brook: N passed, M failed
# N and M add up the Swift tests and the interop tests; a stage that fails without test counts
# (setup, generator check, build, fuzz, a crashed runner) adds one to M. Exit status is non-zero
# if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
LOGDIR="$ROOT/.build/test-all"
mkdir -p "$LOGDIR"
: "${BROOK_FUZZ_SECONDS:=60}"
: "${BROOK_SWIFT_TEST_TIMEOUT:=1800}"
: "${BROOK_INTEROP_TIMEOUT:=1200}"

passed=0
failed=0
stage_failures=()
stage_times=()
t_all=$SECONDS

banner() { printf '\n==== %s ====\n' "$*"; }
stage_fail() { stage_failures+=("$1"); failed=$((failed + 1)); }
timed() { # timed NAME START
    stage_times+=("$1 $((SECONDS - $2))s")
}

# ---- 1. peers ---------------------------------------------------------------------------------
banner "setup peers"
t=$SECONDS
peers_ok=1
if ! scripts/setup-peers.sh 2>&1 | tee "$LOGDIR/setup-peers.log"; then
    stage_fail "setup-peers"
    peers_ok=0
fi
timed setup-peers $t

# ---- 2. generated protocol code ----------------------------------------------------------------
banner "gen_protocol --check"
t=$SECONDS
if ! python3 scripts/gen_protocol.py --check 2>&1 | tee "$LOGDIR/gen-check.log"; then
    stage_fail "gen_protocol --check"
fi
timed gen-check $t

# ---- 3. build ----------------------------------------------------------------------------------
banner "swift build --build-tests"
t=$SECONDS
built=1
swift build --build-tests >"$LOGDIR/build.log" 2>&1
rc=$?
grep -aE 'error:|Build complete' "$LOGDIR/build.log" | tail -n 60
if [[ $rc -ne 0 ]]; then
    echo "swift build --build-tests FAILED (exit $rc); last lines:"
    tail -n 40 "$LOGDIR/build.log"
    stage_fail "swift build --build-tests"
    built=0
fi
BIN_DIR=$(swift build --show-bin-path 2>/dev/null || echo "$ROOT/.build/debug")
if [[ $built -eq 1 && ! -x "$BIN_DIR/brook" ]]; then
    swift build --product brook 2>&1 | tail -5 || true
fi
timed build $t

# ---- 4. swift test -----------------------------------------------------------------------------
parse_swift_tests() { # parse_swift_tests LOG -> sets sw_pass sw_fail sw_found
    local log=$1 st_total="" st_failed=0 xc_total="" xc_failed=""
    sw_found=0
    # Swift Testing: "✔ Test run with 123 tests in 10 suites passed after 3.2 seconds."
    #                "✘ Test run with 123 tests in 10 suites failed after 3.2 seconds with 5 issues."
    local line
    line=$(grep -aE 'Test run with [0-9]+ tests?' "$log" | tail -n1 || true)
    if [[ -n "$line" ]]; then
        st_total=$(sed -E 's/.*Test run with ([0-9]+) tests?.*/\1/' <<<"$line")
        # Failing tests (not suites, not the run): "✘ Test name() failed after ..."
        st_failed=$(grep -aE 'Test .* failed after' "$log" | grep -avE 'Test run with|Suite ' | wc -l)
        if [[ $st_failed -eq 0 ]] && grep -qE 'failed' <<<"$line"; then st_failed=1; fi
        ((st_failed > st_total)) && st_failed=$st_total
        sw_found=1
    fi
    # XCTest: the last "Executed N tests, with M failures" is the grand total.
    line=$(grep -aE 'Executed [0-9]+ tests?, with [0-9]+ failures?' "$log" | tail -n1 || true)
    if [[ -n "$line" ]]; then
        xc_total=$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$line")
        xc_failed=$(sed -E 's/.*with ([0-9]+) failures?.*/\1/' <<<"$line")
        sw_found=1
    fi
    sw_pass=$(( ${st_total:-0} - st_failed + ${xc_total:-0} - ${xc_failed:-0} ))
    sw_fail=$(( st_failed + ${xc_failed:-0} ))
}

if [[ $built -eq 1 ]]; then
    banner "swift test"
    t=$SECONDS
    timeout --signal=TERM --kill-after=30 "$BROOK_SWIFT_TEST_TIMEOUT" swift test 2>&1 | tee "$LOGDIR/swift-test.log"
    rc=${PIPESTATUS[0]}
    parse_swift_tests "$LOGDIR/swift-test.log"
    passed=$((passed + sw_pass))
    failed=$((failed + sw_fail))
    echo "swift test: exit $rc, $sw_pass passed, $sw_fail failed"
    if [[ $sw_found -eq 0 ]]; then
        stage_fail "swift test (exit $rc, no summary line: crashed or timed out)"
    elif [[ $rc -ne 0 && $sw_fail -eq 0 ]]; then
        stage_fail "swift test (exit $rc)"
    fi
    timed swift-test $t
fi

# ---- 5. fuzzing --------------------------------------------------------------------------------
if [[ -x scripts/fuzz.sh || -f scripts/fuzz.sh ]] && [[ "$BROOK_FUZZ_SECONDS" != 0 ]]; then
    banner "fuzz (${BROOK_FUZZ_SECONDS}s)"
    t=$SECONDS
    if ! bash scripts/fuzz.sh "$BROOK_FUZZ_SECONDS" 2>&1 | tee "$LOGDIR/fuzz.log"; then
        stage_fail "fuzz (scripts/fuzz.sh failed; it hides its build output, rebuild BrookFuzz by hand to see why)"
    fi
    timed fuzz $t
fi

# ---- 6. interop --------------------------------------------------------------------------------
banner "interop (pytest tests/interop)"
t=$SECONDS
if [[ $peers_ok -eq 1 && $built -eq 1 && -x "$BIN_DIR/brook" ]]; then
    junit="$LOGDIR/interop-junit.xml"
    rm -f "$junit"
    BROOK_BIN="$BIN_DIR/brook" timeout --signal=TERM --kill-after=30 "$BROOK_INTEROP_TIMEOUT" \
        "$ROOT/.venv/bin/python" -m pytest tests/interop -c tests/interop/pytest.ini --rootdir tests/interop \
        -q --junitxml="$junit" 2>&1 | tee "$LOGDIR/interop.log"
    rc=${PIPESTATUS[0]}
    counts=$("$ROOT/.venv/bin/python" - "$junit" <<'PY' 2>/dev/null
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
t = sum(int(s.get("tests", 0)) for s in suites)
f = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
sk = sum(int(s.get("skipped", 0)) for s in suites)
print(t, f, sk)
PY
    ) || counts=""
    if [[ -z "$counts" ]]; then
        # Fall back on pytest's own summary: "== 3 failed, 40 passed, 1 error in 12.3s =="
        last=$(grep -aE '(passed|failed|error)' "$LOGDIR/interop.log" | grep -aE ' in [0-9.]+s' | tail -n1 || true)
        ip=$(grep -oE '[0-9]+ passed' <<<"$last" | grep -oE '[0-9]+' || echo 0)
        if_=$(( $(grep -oE '[0-9]+ failed' <<<"$last" | grep -oE '[0-9]+' || echo 0) + $(grep -oE '[0-9]+ errors?' <<<"$last" | grep -oE '[0-9]+' || echo 0) ))
        isk=$(grep -oE '[0-9]+ skipped' <<<"$last" | grep -oE '[0-9]+' || echo 0)
        it=$((ip + if_ + isk))
    else
        read -r it if_ isk <<<"$counts"
        ip=$((it - if_ - isk))
    fi
    # Interop tests must never skip: a skip counts as a failure.
    passed=$((passed + ip))
    failed=$((failed + if_ + isk))
    echo "interop: exit $rc, $ip passed, $if_ failed, $isk skipped (counted as failed)"
    if [[ $it -eq 0 ]]; then
        stage_fail "interop (exit $rc, no tests ran)"
    elif [[ $rc -ne 0 && $((if_ + isk)) -eq 0 ]]; then
        stage_fail "interop (exit $rc)"
    fi
else
    echo "interop NOT run: peers_ok=$peers_ok built=$built binary=$BIN_DIR/brook"
    stage_fail "interop (not run)"
fi
timed interop $t

# ---- summary -----------------------------------------------------------------------------------
banner "summary"
echo "stage times: ${stage_times[*]}; total $((SECONDS - t_all))s"
if ((${#stage_failures[@]})); then
    printf 'failed stage: %s\n' "${stage_failures[@]}"
fi
echo "brook: $passed passed, $failed failed"
[[ $failed -eq 0 && ${#stage_failures[@]} -eq 0 ]]
