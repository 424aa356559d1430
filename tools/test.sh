#!/usr/bin/env bash
# Builds and runs every test suite: the dev preset (all tests), the asan preset (engine tests under
# AddressSanitizer + UndefinedBehaviorSanitizer) and the fuzz preset (every libFuzzer target for
# SAGE_FUZZ_SECONDS, default 60, under ASan+UBSan; tools/fuzz.sh). Run from anywhere; uses at most 2 parallel
# jobs by default. SAGE_SKIP_ASAN=1 / SAGE_SKIP_FUZZ=1 skip those stages.
set -euo pipefail
cd "$(dirname "$0")/.."
JOBS="${SAGE_JOBS:-2}"
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/.ccache}"
status=0

echo "== dev preset: build and all tests"
cmake --preset dev >/dev/null
cmake --build --preset dev -j "$JOBS"
ctest --preset dev -j "$JOBS" || status=1

if [ "${SAGE_SKIP_ASAN:-0}" != "1" ]; then
  echo "== asan preset: build and engine tests under ASan+UBSan"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$JOBS" --target engine_tests
  ctest --preset asan -j "$JOBS" -L engine || status=1
fi

if [ "${SAGE_SKIP_FUZZ:-0}" != "1" ]; then
  echo "== fuzz preset: every fuzz target for ${SAGE_FUZZ_SECONDS:-60}s under ASan+UBSan"
  bash tools/fuzz.sh || status=1
fi

if [ "$status" -ne 0 ]; then echo "Some tests failed."; fi
exit "$status"
