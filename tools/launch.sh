#!/usr/bin/env bash
# Builds SAGE Workbench and starts it on the bundled model.
# Until the Qt workbench window exists, this runs the command-line front end (sage-cli) on the bundled
# model: model summary, then a streamed greedy completion of a sample prompt. Extra arguments are passed
# to `sage-cli generate`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/.ccache}"
cmake --preset release >/dev/null
cmake --build --preset release -j "${SAGE_JOBS:-2}" --target sage-cli
CLI=build/release/app/cli/sage-cli
MODEL="${SAGE_MODEL:-resources/models/sage-mini-coder}"
if [ ! -f "$MODEL/config.json" ]; then
  echo "The bundled model is not in $MODEL yet; using the golden test checkpoint tests/data/golden/loop2_moe (random weights, token ids only)." >&2
  MODEL=tests/data/golden/loop2_moe
  "$CLI" info --model "$MODEL"
  exec "$CLI" generate --model "$MODEL" --tokens 1,5,9,13 --max-tokens 24 "$@"
fi
"$CLI" info --model "$MODEL"
exec "$CLI" generate --model "$MODEL" --prompt "def fibonacci(n):" --max-tokens 64 "$@"
