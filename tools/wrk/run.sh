#!/usr/bin/env bash
# First throughput figure for POST /v1/messages with wrk (until chat4all-bench exists):
# starts a fresh server on the embedded default, creates users and conversations, runs wrk,
# then checks that every accepted message was stored (count via the metrics endpoint).
# Usage: tools/wrk/run.sh [connections] [seconds] [server threads] [batch size, 0 = single]
set -euo pipefail
cd "$(dirname "$0")/../.."
conns=${1:-64}; secs=${2:-10}; threads=${3:-1}; batch=${4:-0}
port=${CHAT4ALL_WRK_PORT:-18731}
dir=$(mktemp -d /tmp/chat4all-wrk.XXXXXX)
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -rf "$dir"' EXIT
CHAT4ALL_LOGGING_LEVEL=warn CHAT4ALL_SERVER_THREADS=$threads \
  build/chat4all serve --listen 127.0.0.1:$port --data-dir "$dir" &
pid=$!
base=http://127.0.0.1:$port
for _ in $(seq 50); do curl -sf $base/healthz >/dev/null && break; sleep 0.1; done
H='Content-Type: application/json'
ids=()
for u in alice bob carol dave; do
  ids+=($(curl -sf -X POST $base/auth/register -H "$H" -d "{\"username\":\"$u\",\"password\":\"password-$u\"}" | jq .user_id))
done
token=$(curl -sf -X POST $base/auth/token -H "$H" -d '{"username":"alice","password":"password-alice"}' | jq -r .access_token)
convs=()
for other in "${ids[@]:1}"; do
  convs+=($(curl -sf -X POST $base/v1/conversations -H "$H" -H "Authorization: Bearer $token" -d "{\"type\":\"private\",\"member_ids\":[$other]}" | jq .id))
done
convs+=($(curl -sf -X POST $base/v1/conversations -H "$H" -H "Authorization: Bearer $token" -d "{\"type\":\"group\",\"name\":\"all\",\"member_ids\":[${ids[1]},${ids[2]},${ids[3]}]}" | jq .id))
wrk -t1 -c"$conns" -d"${secs}s" --latency -s tools/wrk/post_message.lua $base -- "$token" "$(IFS=,; echo "${convs[*]}")" "$batch"
# Zero loss: wait (bounded) until the router stored every accepted message.
for _ in $(seq 120); do
  m=$(curl -s $base/metrics)
  acc=$(grep -E '^chat4all_messages_accepted_total ' <<<"$m" | awk '{print $2}')
  sto=$(grep -E '^chat4all_messages_stored_total ' <<<"$m" | awk '{print $2}')
  [[ "$acc" == "$sto" ]] && break
  sleep 0.5
done
echo "accepted=$acc stored=$sto"
[[ "$acc" == "$sto" ]]
