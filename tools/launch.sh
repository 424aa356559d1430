#!/usr/bin/env bash
# Builds SAGE Workbench (release preset: sage-workbench and sage-cli) and opens the workbench window on the
# bundled model with a sample prompt. While the bundled model is not in resources/models/ yet, it opens a
# small random-weight test checkpoint instead (token-id prompts). Extra arguments go to sage-workbench
# (see sage-workbench --help); SAGE_MODEL=DIR picks another model folder.
# Without a display (no $DISPLAY / $WAYLAND_DISPLAY) it renders the window offscreen after a short
# generation and saves build/workbench.png instead.
set -euo pipefail
cd "$(dirname "$0")/.."
export CCACHE_DIR="${CCACHE_DIR:-$PWD/build/.ccache}"
cmake --preset release >/dev/null
cmake --build --preset release -j "${SAGE_JOBS:-2}" --target sage-workbench sage-cli
APP=build/release/app/workbench/sage-workbench
MODEL="${SAGE_MODEL:-resources/models/sage-mini-coder}"
ARGS=()
if [ ! -f "$MODEL/config.json" ]; then
  echo "The bundled model is not in $MODEL yet; opening the golden test checkpoint tests/data/golden/loop2_moe (random weights, token-id prompts)." >&2
  MODEL=tests/data/golden/loop2_moe
  ARGS+=(--tokens 1,5,9,13)
fi
if [ -z "${DISPLAY:-}" ] && [ -z "${WAYLAND_DISPLAY:-}" ] && [ -z "${QT_QPA_PLATFORM:-}" ]; then
  echo "No display found: rendering the window offscreen to build/workbench.png." >&2
  exec env QT_QPA_PLATFORM=offscreen "$APP" --model "$MODEL" "${ARGS[@]}" --generate 48 --screenshot build/workbench.png "$@"
fi
exec "$APP" --model "$MODEL" "${ARGS[@]}" "$@"
