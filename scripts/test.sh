#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds, and runs the whole test suite:
# unit, contract and end-to-end (the real binary over HTTP). Exit status 0 = all passed.
# CHAT4ALL_TEST_LABELS narrows it, e.g. CHAT4ALL_TEST_LABELS=unit scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
labels=${CHAT4ALL_TEST_LABELS:-unit|contract|e2e}
ctest --test-dir build -L "$labels" --output-on-failure -j "${CHAT4ALL_TEST_JOBS:-2}" --timeout 900
