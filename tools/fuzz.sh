#!/usr/bin/env bash
# Builds the fuzz preset (clang 14, libFuzzer, ASan+UBSan, engine only) and runs every fuzz target for
# SAGE_FUZZ_SECONDS seconds (default 60) from its seed corpus in tests/fuzz/corpus/<target>/. Fails when
# any target reports a crash, a sanitizer finding, a leak, a timeout or an out-of-memory; the input that
# caused it is saved as build/fuzz/findings/<target>/crash-... (reproduce: build/fuzz/tests/fuzz/fuzz_<target> FILE).
# Writes build/fuzz/stats.tsv (target, seconds, executions, executions/s, corpus entries, result).
#
#   SAGE_FUZZ_SECONDS=60    time per target
#   SAGE_FUZZ_TARGETS="a b" run only these targets
#   SAGE_FUZZ_JOBS=2        build parallelism
#
# To add a target N: tests/fuzz/fuzz_N.cpp, the line "N <max_len>" in tests/fuzz/targets.txt, seeds in
# tests/fuzz/corpus/N/.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${SAGE_FUZZ_SECONDS:-60}"
JOBS="${SAGE_FUZZ_JOBS:-${SAGE_JOBS:-2}}"
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/.ccache}"

# "name:max_len" from tests/fuzz/targets.txt (shared with tests/fuzz/CMakeLists.txt).
TARGETS=()
while read -r name maxlen; do
  case "$name" in ''|\#*) continue ;; esac
  TARGETS+=("$name:$maxlen")
done <tests/fuzz/targets.txt
if [ -n "${SAGE_FUZZ_TARGETS:-}" ]; then
  selected=()
  for t in "${TARGETS[@]}"; do
    for want in $SAGE_FUZZ_TARGETS; do [ "${t%%:*}" = "$want" ] && selected+=("$t"); done
  done
  TARGETS=("${selected[@]}")
fi

echo "== fuzz preset: build the engine and the fuzz targets"
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz -j "$JOBS" --target fuzz_all

BUILD=build/fuzz
STATS="$BUILD/stats.tsv"
printf "target\tseconds\texecutions\texec_per_s\tcorpus\tresult\n" >"$STATS"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:allocator_may_return_null=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
status=0
for entry in "${TARGETS[@]}"; do
  name="${entry%%:*}"
  maxlen="${entry##*:}"
  work="$BUILD/corpus/$name"
  findings="$BUILD/findings/$name"
  log="$BUILD/logs/$name.log"
  mkdir -p "$work" "$findings" "$(dirname "$log")"
  echo "== fuzz_$name for ${SECONDS_PER_TARGET}s (max_len $maxlen)"
  set +e
  # New inputs go to the first folder (the working corpus); the seeds are only read.
  "$BUILD/tests/fuzz/fuzz_$name" "$work" "tests/fuzz/corpus/$name" \
    -max_total_time="$SECONDS_PER_TARGET" -max_len="$maxlen" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
    -timeout=10 -print_final_stats=1 -artifact_prefix="$findings/" >"$log" 2>&1
  rc=$?
  set -e
  # -a: the log quotes fuzzer inputs, which may make it look binary to grep. A missing count is not an error.
  execs=$(grep -ao 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1 || true)
  corpus=$(find "$work" -type f | wc -l)
  result=ok
  if [ "$rc" -ne 0 ]; then
    result="FAILED (exit $rc)"
    status=1
    echo "fuzz_$name found a problem; last lines of $log:"
    tail -n 40 "$log"
    ls "$findings"
  fi
  execs=${execs:-0}
  printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$name" "$SECONDS_PER_TARGET" "$execs" \
    "$((execs / (SECONDS_PER_TARGET > 0 ? SECONDS_PER_TARGET : 1)))" "$corpus" "$result" | tee -a "$STATS"
done
echo "== fuzz statistics ($STATS)"
column -t -s $'\t' "$STATS" 2>/dev/null || cat "$STATS"
exit "$status"
