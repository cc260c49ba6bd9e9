#!/usr/bin/env bash
# Measures the CPU an idle `troupe serve` uses: starts it, waits for it to
# settle, reads its CPU time over SECONDS (default 10), ends it by PID.
#
#   perf/idle_cpu.sh [SECONDS] [SHARDS]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
seconds=${1:-10}
shards=${2:-0}
bin=${TROUPE_BIN:-$root/build-release/troupe}
[[ -x "$bin" ]] || { echo "idle_cpu.sh: $bin not found (build build-release first)" >&2; exit 1; }

log=$(mktemp)
"$bin" serve --shards "$shards" >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do grep -q serving "$log" && break; sleep 0.1; done
grep -q serving "$log" || { echo "idle_cpu.sh: engine did not start" >&2; cat "$log" >&2; exit 1; }
sleep 1

ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
before=$(ticks)
sleep "$seconds"
after=$(ticks)
kill -TERM "$pid"
wait "$pid" || true
awk -v used=$((after - before)) -v hz="$hz" -v s="$seconds" -v shards="$(grep -o '[0-9]* shards' "$log" | head -1)" \
  'BEGIN { printf "troupe idle-cpu %.2f %% (%s, %d ticks of 1/%d s over %d s)\n", 100 * used / hz / s, shards, used, hz, s }'
