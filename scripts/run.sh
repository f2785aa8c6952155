#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine, builds, and runs the server on the embedded default
# (SQLite, embedded log, in-process fan-out) with data under ./var/data.
# Extra arguments go to `chat4all serve`, e.g. --listen 127.0.0.1:9000 --seed-demo-users.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/build.sh
exec build/chat4all serve --data-dir "${CHAT4ALL_STORAGE_DATA_DIR:-var/data}" "$@"
