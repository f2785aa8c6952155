#!/usr/bin/env bash
# Configures and builds the project into ./build (or $CHAT4ALL_BUILD_DIR).
# Extra arguments go to cmake's configure step, e.g. -DCHAT4ALL_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir=${CHAT4ALL_BUILD_DIR:-build}
jobs=${CHAT4ALL_JOBS:-$(nproc)}
if [[ ! -f "$build_dir/build.ninja" || $# -gt 0 ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE="${CHAT4ALL_BUILD_TYPE:-RelWithDebInfo}" "$@" >/dev/null
fi
ninja -C "$build_dir" -j "$jobs" | grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking)' || true
test "${PIPESTATUS[0]}" -eq 0
