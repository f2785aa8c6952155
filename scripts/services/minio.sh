#!/usr/bin/env bash
# A project-local MinIO (S3-compatible object store) for tests and local cluster runs.
#
#   scripts/services/minio.sh install  # build MinIO from its Go module (pinned) once, cached
#   scripts/services/minio.sh start    # install if needed, start, wait until ready, create the bucket
#   scripts/services/minio.sh stop     # SIGTERM, SIGKILL after 10 s
#   scripts/services/minio.sh status   # exit 0 when running and ready, 3 when stopped
#   scripts/services/minio.sh url      # http://127.0.0.1:<port>
#   scripts/services/minio.sh env      # the CHAT4ALL_TEST_S3_* variables the tests read
#
# MinIO is built with `go install github.com/minio/minio@<pinned version>` into
# <repo>/.cache/minio/bin (git-ignored), with Go's module and build caches in <repo>/.cache/go
# and <repo>/.cache/go-build (a rebuild is fast; nothing is written outside the project).
# It listens on 127.0.0.1:${CHAT4ALL_MINIO_PORT:-29400} (console
# on the next port) only, keeps its data in <repo>/var/services/minio/data (git-ignored) and
# runs with the project's test credentials below (override them for anything but tests).
# `start` creates the bucket ${CHAT4ALL_MINIO_BUCKET:-chat4all} with a SigV4-signed PUT (curl's
# --aws-sigv4) so the project, not a console click, owns it.
#
# Environment: CHAT4ALL_MINIO_PORT, CHAT4ALL_MINIO_BUCKET, CHAT4ALL_MINIO_ACCESS_KEY,
# CHAT4ALL_MINIO_SECRET_KEY, CHAT4ALL_MINIO_START_TIMEOUT (seconds, default 60).
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
version=v0.0.0-20260212201848-7aac2a2c5b7c # github.com/minio/minio, 2026-02-12
port=${CHAT4ALL_MINIO_PORT:-29400}
console_port=$((port + 1))
bucket=${CHAT4ALL_MINIO_BUCKET:-chat4all}
access_key=${CHAT4ALL_MINIO_ACCESS_KEY:-chat4all-test}
secret_key=${CHAT4ALL_MINIO_SECRET_KEY:-chat4all-test-secret}
region=us-east-1
start_timeout=${CHAT4ALL_MINIO_START_TIMEOUT:-60}
bindir=$repo/.cache/minio/bin
binary=$bindir/minio
stamp=$bindir/minio.version
if [[ $port == 29400 ]]; then base=$repo/var/services/minio; else base=$repo/var/services/minio-$port; fi
pidfile=$base/minio.pid
logfile=$base/minio.log
lockfile=$base/.lock

die() {
  echo "minio.sh: $*" >&2
  exit 1
}

find_go() {
  if command -v go >/dev/null 2>&1; then command -v go; elif [[ -x /usr/local/go/bin/go ]]; then echo /usr/local/go/bin/go; else return 1; fi
}

cmd_install() {
  if [[ -x $binary && -s $stamp && $(cat "$stamp") == "$version" ]]; then return 0; fi
  local go
  go=$(find_go) || die "Go is needed to build MinIO (go install github.com/minio/minio@$version)"
  mkdir -p "$bindir"
  echo "minio: building github.com/minio/minio@$version (first time only; several minutes)" >&2
  # Every Go cache inside the project (git-ignored): a fresh clone as root in CI writes nothing
  # outside it; -modcacherw keeps the module cache deletable.
  GOPATH=$repo/.cache/go GOMODCACHE=$repo/.cache/go/pkg/mod GOCACHE=$repo/.cache/go-build \
    GOBIN=$bindir GOFLAGS="-buildvcs=false -modcacherw" CGO_ENABLED=0 \
    "$go" install "github.com/minio/minio@$version" ||
    die "go install github.com/minio/minio@$version failed"
  echo "$version" >"$stamp"
}

ready() { curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/minio/health/ready" 2>/dev/null; }

alive() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
  [[ -n $st && $st != Z ]]
}

server_pid() {
  local pid
  [[ -s $pidfile ]] || return 1
  pid=$(cat "$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] && alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "minio server" || return 1
  echo "$pid"
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; }

s3() { curl -sS --max-time 10 --aws-sigv4 "aws:amz:$region:s3" --user "$access_key:$secret_key" "$@"; }

create_bucket() {
  local code
  code=$(s3 -o /dev/null -w '%{http_code}' -X PUT "http://127.0.0.1:$port/$bucket") || return 1
  [[ $code == 200 || $code == 409 ]] || die "creating bucket $bucket answered HTTP $code"
}

cmd_start() {
  cmd_install
  if server_pid >/dev/null && ready; then
    create_bucket
    return 0
  fi
  port_busy && die "port $port is already in use by another process (set CHAT4ALL_MINIO_PORT)"
  mkdir -p "$base/data"
  rm -f "$pidfile"
  # setsid + 9>&-: the server outlives this script and must not hold the start/stop lock.
  MINIO_ROOT_USER=$access_key MINIO_ROOT_PASSWORD=$secret_key MINIO_BROWSER=off \
    MINIO_UPDATE=off MINIO_API_REQUESTS_DEADLINE=5m \
    setsid "$binary" server --quiet --address "127.0.0.1:$port" \
    --console-address "127.0.0.1:$console_port" "$base/data" \
    9>&- </dev/null >>"$logfile" 2>&1 &
  echo $! >"$pidfile"
  local start=$SECONDS
  until ready; do
    server_pid >/dev/null || die "exited during start; last log lines:
$(tail -n 20 "$logfile" 2>/dev/null)"
    ((SECONDS - start < start_timeout)) || die "not ready after ${start_timeout}s (see $logfile)"
    sleep 0.2
  done
  create_bucket
  echo "minio: running on 127.0.0.1:$port (pid $(server_pid || echo '?'), bucket $bucket, log $logfile)" >&2
}

cmd_stop() {
  local pid deadline
  pid=$(server_pid) || {
    rm -f "$pidfile"
    return 0
  }
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + 10))
  while alive "$pid"; do
    if ((SECONDS >= deadline)); then
      echo "minio.sh: shutdown took over 10 s: killing $pid" >&2
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.05
  done
  rm -f "$pidfile"
}

cmd_status() {
  local pid
  if pid=$(server_pid) && ready; then
    echo "running on 127.0.0.1:$port (pid $pid)"
    return 0
  fi
  echo "stopped"
  return 3
}

cmd_env() {
  echo "CHAT4ALL_TEST_S3_ENDPOINT=http://127.0.0.1:$port"
  echo "CHAT4ALL_TEST_S3_BUCKET=$bucket"
  echo "CHAT4ALL_TEST_S3_REGION=$region"
  echo "CHAT4ALL_TEST_S3_ACCESS_KEY=$access_key"
  echo "CHAT4ALL_TEST_S3_SECRET_KEY=$secret_key"
}

main() {
  local cmd=${1:-}
  case $cmd in
    install | start | stop)
      mkdir -p "$base"
      exec 9>"$lockfile"
      flock -w 900 9 || die "timed out waiting for $lockfile"
      "cmd_$cmd"
      ;;
    status) cmd_status ;;
    url) echo "http://127.0.0.1:$port" ;;
    env) cmd_env ;;
    *)
      echo "usage: $0 install|start|stop|status|url|env" >&2
      exit 2
      ;;
  esac
}

main "$@"
