#!/usr/bin/env bash
# A project-local PostgreSQL 15 (Debian's binaries) for tests and local cluster runs.
#
#   scripts/services/postgres.sh start    # init on first use, start, wait until it accepts connections
#   scripts/services/postgres.sh stop
#   scripts/services/postgres.sh status   # exit 0 when running, 3 when stopped
#   scripts/services/postgres.sh url      # the libpq connection string for the chat4all role
#
# Listens on 127.0.0.1:${CHAT4ALL_PG_PORT:-25432} only (plus a unix socket inside the data
# directory, mode 0700). Data, socket, log and the generated password live in
# <repo>/var/services/postgres (git-ignored). fsync stays on: the tests exercise the real
# durability path. Every command is idempotent; `start` is silent when already running.
#
# PostgreSQL refuses to run as root: under uid 0 the server and its tools run as the Debian
# `postgres` system user (runuser) and the server's directories are chowned to it.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
port=${CHAT4ALL_PG_PORT:-25432}
bin=/usr/lib/postgresql/15/bin
base=$repo/var/services/postgres
pgdata=$base/data
sockdir=$base/run
logfile=$base/log/postgres.log
pwfile=$base/password
lockfile=$base/.lock
role=chat4all
db=chat4all

if [[ $(id -u) -eq 0 ]]; then
  run_user=postgres
  as_server() { runuser -u postgres -- "$@"; }
else
  run_user=$(id -un)
  as_server() { "$@"; }
fi

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}

[[ -x $bin/pg_ctl ]] || die "PostgreSQL 15 not found in $bin (apt-get install postgresql-15)"

is_running() {
  [[ -f $pgdata/PG_VERSION ]] && as_server "$bin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1
}

psql_admin() {
  as_server "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$port" -U "$run_user" \
    -d postgres "$@"
}

init_cluster() {
  mkdir -p "$pgdata" "$sockdir" "$(dirname "$logfile")"
  chmod 0700 "$pgdata" "$sockdir"
  if [[ $(id -u) -eq 0 ]]; then
    chown postgres: "$pgdata" "$sockdir" "$(dirname "$logfile")"
  fi
  [[ -f $pgdata/PG_VERSION ]] && return 0
  # The superuser is the OS user that runs the server, reachable only through the unix
  # socket (peer authentication); the application role uses a password over loopback TCP.
  as_server "$bin/initdb" -D "$pgdata" -U "$run_user" -E UTF8 --locale=C.UTF-8 \
    --auth-local=peer --auth-host=reject >/dev/null
  cat >"$base/pg_hba.conf.tmp" <<EOF
# TYPE  DATABASE  USER        ADDRESS        METHOD
local   all       $run_user                  peer
local   all       $role                      scram-sha-256
host    all       $role       127.0.0.1/32   scram-sha-256
EOF
  as_server tee "$pgdata/pg_hba.conf" <"$base/pg_hba.conf.tmp" >/dev/null
  rm -f "$base/pg_hba.conf.tmp"
  echo "include_if_exists = 'chat4all.conf'" | as_server tee -a "$pgdata/postgresql.conf" >/dev/null
}

write_settings() {
  # Rewritten on every start so that CHAT4ALL_PG_PORT and the paths always apply.
  as_server tee "$pgdata/chat4all.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
unix_socket_permissions = 0700
password_encryption = 'scram-sha-256'
fsync = on
synchronous_commit = on
max_connections = 200
logging_collector = off
log_min_messages = warning
log_line_prefix = '%m [%p] %u@%d '
EOF
}

ensure_role_and_db() {
  if [[ ! -s $pwfile ]]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$pwfile")
  fi
  local pw
  pw=$(cat "$pwfile")
  psql_admin <<EOF
SELECT format('CREATE ROLE %I LOGIN', '$role')
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$role') \gexec
ALTER ROLE $role WITH LOGIN PASSWORD '$pw';
SELECT format('CREATE DATABASE %I OWNER %I', '$db', '$role')
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$db') \gexec
EOF
}

wait_ready() {
  local i
  for ((i = 0; i < 120; i++)); do
    if pg_isready -q -h 127.0.0.1 -p "$port" -d postgres; then return 0; fi
    sleep 0.25
  done
  return 1
}

cmd_start() {
  if is_running; then
    wait_ready || die "running but not accepting connections on 127.0.0.1:$port (see $logfile)"
    return 0
  fi
  init_cluster
  write_settings
  if [[ $(id -u) -eq 0 ]]; then chown postgres: "$(dirname "$logfile")"; fi
  # 9>&-: the server must not inherit the lock descriptor (it would hold the lock forever).
  as_server "$bin/pg_ctl" -D "$pgdata" -l "$logfile" -w -t 60 start >/dev/null 9>&- ||
    die "failed to start; last log lines:
$(tail -n 20 "$logfile" 2>/dev/null)"
  wait_ready || die "not accepting connections on 127.0.0.1:$port after 30 s (see $logfile)"
  ensure_role_and_db
  echo "postgres: running on 127.0.0.1:$port (data $pgdata, log $logfile)" >&2
}

cmd_stop() {
  is_running || return 0
  as_server "$bin/pg_ctl" -D "$pgdata" -m fast -w -t 60 stop >/dev/null
}

cmd_status() {
  if is_running; then
    echo "running on 127.0.0.1:$port (data $pgdata)"
    return 0
  fi
  echo "stopped"
  return 3
}

cmd_url() {
  [[ -s $pwfile ]] || die "not initialised yet: run '$0 start' first"
  echo "postgresql://$role:$(cat "$pwfile")@127.0.0.1:$port/$db"
}

main() {
  local cmd=${1:-}
  case $cmd in
    start | stop)
      mkdir -p "$base"
      # Serialises concurrent start/stop calls (two test runs starting at once).
      exec 9>"$lockfile"
      flock -w 120 9 || die "timed out waiting for $lockfile"
      "cmd_$cmd"
      ;;
    status) cmd_status ;;
    url) cmd_url ;;
    *)
      echo "usage: $0 start|stop|status|url" >&2
      exit 2
      ;;
  esac
}

main "$@"
