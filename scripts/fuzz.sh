#!/usr/bin/env bash
# Builds the request-decoder fuzzer with libFuzzer and runs it for a bounded time.
#   scripts/fuzz.sh [SECONDS]   (default 60)
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
swift build --scratch-path .build-fuzz --product BrookFuzz \
  -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING -Xswiftc -parse-as-library >/dev/null
corpus=.build-fuzz/corpus
mkdir -p "$corpus"
# Seed with valid frames of every API so the fuzzer starts from real shapes.
python3 scripts/fuzz_seeds.py "$corpus"
bin=$(swift build --scratch-path .build-fuzz --product BrookFuzz --show-bin-path)/BrookFuzz
"$bin" -max_total_time="$secs" -rss_limit_mb=4096 -timeout=10 -print_final_stats=1 -artifact_prefix=.build-fuzz/ "$corpus" 2>&1 | tail -15
echo "fuzz: ran ${secs}s without a crash"
