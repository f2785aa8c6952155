#!/usr/bin/env bash
# Installs every Debian 12 package the build and the tests need. Idempotent and quiet
# when everything is already there. Run as root or with sudo available.
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git ca-certificates curl
  libboost1.81-dev libboost-json1.81-dev libboost-url1.81-dev
  libsqlite3-dev sqlite3 libssl-dev libsodium-dev
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev
  libgtest-dev libgmock-dev
  libpq-dev librdkafka-dev libhiredis-dev
  postgresql redis-server maven openjdk-17-jre-headless
  libcurl4-openssl-dev libmagic-dev
  python3 python3-venv wrk clang-format procps jq nginx-light chromium
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Node.js and npm run the JavaScript test clients (tus-js-client): Debian's packages, unless
# a node with npm is on the machine already (a NodeSource nodejs bundles npm and conflicts
# with Debian's npm package).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  for p in nodejs npm; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
fi

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  export DEBIAN_FRONTEND=noninteractive
  "${sudo_cmd[@]}" apt-get update -qq
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test-side Python packages (PyPI) in a project-local, git-ignored venv. The e2e suites use
# the standard library; only the third-party WebSocket client check
# (tests/e2e/ws_websockets_client.py, run by test_websocket.py) needs `websockets`.
venv="$(cd "$(dirname "$0")/.." && pwd)/.venv"
if ! "$venv/bin/python" -c 'import websockets' >/dev/null 2>&1; then
  echo "setup: creating $venv with websockets"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "websockets==15.0.1"
fi
