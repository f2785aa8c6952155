#!/usr/bin/env bash
# Starts nginx (Debian package nginx-light) as a do-nothing server answering every request
# with a fixed 202, on 127.0.0.1:PORT, with the project-local config tools/bench/nginx-202.conf
# in a fresh temporary directory; it stops after SECONDS (bounded) or on Ctrl-C / SIGTERM.
# Usage: tools/bench/nginx-202.sh [PORT (18202)] [SECONDS (600)]
# Then: build/chat4all-bench api --baseline --url http://127.0.0.1:PORT --endpoint single
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
port=${1:-18202}
secs=${2:-600}
nginx=$(command -v nginx || echo /usr/sbin/nginx)
[[ -x $nginx ]] || { echo "nginx-202: nginx is not installed (scripts/setup.sh installs nginx-light)" >&2; exit 2; }
dir=$(mktemp -d /tmp/chat4all-nginx202.XXXXXX)
chmod 755 "$dir"
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" "$here/nginx-202.conf" >"$dir/nginx.conf"
"$nginx" -t -q -p "$dir" -c "$dir/nginx.conf"
echo "nginx-202: answering 202 on http://127.0.0.1:$port for at most ${secs}s (dir $dir)"
timeout --foreground -s TERM "$secs" "$nginx" -p "$dir" -c "$dir/nginx.conf" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT INT TERM
wait $pid || true
