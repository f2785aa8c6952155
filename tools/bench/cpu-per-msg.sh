#!/usr/bin/env bash
# Server CPU per accepted message, for before/after comparisons on a shared, noisy machine
# (wall-clock throughput moves with other people's load; CPU time per message much less).
# Runs one closed-loop `chat4all-bench api` phase against a spawned BIN and attaches
# `perf stat -e task-clock` to the server for the middle of the phase (seconds 1..DURATION-2).
# Usage: [PROFILE=perf.data] tools/bench/cpu-per-msg.sh BIN single|batch [DURATION_S] [BENCH]
# Prints one line: endpoint, bench msg/s, p99 ms, server CPU µs per message, verified lost/dup.
set -euo pipefail
bin=$1; endpoint=$2; dur=${3:-10}; bench=${4:-build/chat4all-bench}
out=$(mktemp -d /tmp/cpu-per-msg.XXXXXX)
window=$((dur - 3))
args=(api --endpoint "$endpoint" --duration-s "$dur" --threads 1 --spawn "$bin" --server-threads 1
      --target-msgs-per-s 0 --progress --out "$out")
[[ $endpoint == batch ]] && args+=(--batch-size 100 --batch-connections 16) || args+=(--connections 64)
"$bench" "${args[@]}" >"$out/stdout" 2>&1 &
bpid=$!
# The phase's first progress line ("[...]   1s") marks second 1 of the measured phase.
for _ in $(seq 600); do
  grep -qE '\]  +1s ' "$out/stdout" 2>/dev/null && break
  kill -0 $bpid 2>/dev/null || break
  sleep 0.1
done
spid=$(pgrep -P $bpid | head -1 || true)
if [[ -n $spid ]]; then
  if [[ -n ${PROFILE:-} ]]; then  # PROFILE=file.data: a sampled call-graph profile instead
    perf record -F 999 --call-graph dwarf,32768 -o "$PROFILE" -p "$spid" -- sleep "$window" \
      >/dev/null 2>&1 || true
  else
    perf stat -e task-clock -x, -o "$out/perf" -p "$spid" -- sleep "$window" >/dev/null 2>&1 || true
  fi
fi
wait $bpid || true
python3 - "$out" "$endpoint" "$window" <<'EOF'
import json, sys, re
out, endpoint, window = sys.argv[1], sys.argv[2], int(sys.argv[3])
r = json.load(open(out + "/result.json"))
ph = [p for p in r["phases"] if p["throughput"]][0]
tp = ph["throughput"]
msgs = sum(tp[1:1 + window])
cpu_ms = 0.0
try:
    for line in open(out + "/perf"):
        f = line.split(",")
        if len(f) > 2 and f[2].startswith("task-clock"):
            cpu_ms = float(f[0])
except FileNotFoundError:
    pass
s = ph["summary"]
lat = s.get("latency", {}) if isinstance(s.get("latency"), dict) else {}
rate = msgs / window if window else 0
print(f"{endpoint} rate={rate:,.0f} msg/s cpu_us_per_msg={cpu_ms * 1000 / max(msgs, 1):.2f} "
      f"summary={json.dumps({k: v for k, v in s.items() if not isinstance(v, (dict, list))})} out={out}")
EOF
