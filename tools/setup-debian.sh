#!/usr/bin/env bash
# Installs every Debian 12 package SAGE Workbench needs to build, run, test and regenerate its data.
# Run as root or with sudo available. Safe to run again.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git clang-14 libclang-rt-14-dev
  qt6-base-dev qt6-base-dev-tools libqt6opengl6-dev libqt6charts6-dev qt6-charts-dev libqt6svg6-dev libgl-dev
  libsentencepiece-dev sentencepiece nlohmann-json3-dev libjemalloc-dev
  python3 python3.11 python3-numpy python3-torch python3-sentencepiece python3-matplotlib libopenblas0-pthread
  xvfb xauth poppler-utils
)
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "All Debian packages are installed."
fi
