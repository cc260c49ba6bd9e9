#!/usr/bin/env bash
# `troupe serve` with the kv module beside redis-server on this machine:
# redis-benchmark's SET and GET, with a pipeline of 16 and without, in
# interleaved rounds. Prints a markdown table of medians (req/s and p99
# latency) and Troupe÷Redis, then the CPU that the client and each server
# used (cores: CPU-seconds per second of the run). Also run by
# `perf/compare.sh kv`.
#
# A third server runs in the same rounds: troupe-resp-null, which stores
# nothing and only frames and answers commands (epoll, one thread).
# redis-benchmark is one thread; its rate against a server that does no work
# shows what the client itself can drive here, and the table gives each
# server's rate against it. The client's cost per request also depends on
# how a server waits (epoll, io_uring), so a server can pass it.
#
# Troupe runs one shard fewer than the machine has cores (at least one):
# redis-benchmark, on the same machine, needs a core of its own, as Redis's
# one thread does. `--shards 0` gives Troupe every core.
#
# Builds nothing: it needs build-release/troupe, build-release/actors/kv/kv.so
# and build-release/perf/troupe-resp-null, made by
#   cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release
#   cmake --build build-release --target troupe kv_module troupe-resp-null
# and redis-server / redis-benchmark (Debian: redis-server, redis-tools).
#
# Usage: perf/kv.sh [--runs R] [--n N] [--shards S] [--clients C] [--build DIR]
set -euo pipefail

runs=3
n=1000000
shards=""
clients=50
build=build-release

usage() { sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; }
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --n) n="$2"; shift 2 ;;
    --shards) shards="$2"; shift 2 ;;
    --clients) clients="$2"; shift 2 ;;
    --build) build="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "kv.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done

[[ -z "$shards" ]] && shards=$(( $(nproc) > 1 ? $(nproc) - 1 : 1 ))
root="$(cd "$(dirname "$0")/.." && pwd)"
build_dir="$root/$build"
[[ "$build" = /* ]] && build_dir="$build"
kv_bin="$build_dir/troupe"
kv_module="$build_dir/actors/kv/kv.so"
null_bin="$build_dir/perf/troupe-resp-null"
for tool in redis-server redis-benchmark redis-cli; do
  command -v "$tool" >/dev/null || { echo "kv.sh: $tool is not installed (Debian: redis-server, redis-tools)" >&2; exit 1; }
done
for f in "$kv_bin" "$kv_module" "$null_bin"; do
  [[ -e "$f" ]] || { echo "kv.sh: $f is missing; build it first (see the top of this script)" >&2; exit 1; }
done

work="$(mktemp -d /tmp/troupe-kv-perf.XXXXXX)"
kv_pid=""
redis_pid=""
null_pid=""
cleanup() {
  [[ -n "$kv_pid" ]] && kill "$kv_pid" 2>/dev/null && wait "$kv_pid" 2>/dev/null
  [[ -n "$redis_pid" ]] && kill "$redis_pid" 2>/dev/null && wait "$redis_pid" 2>/dev/null
  [[ -n "$null_pid" ]] && kill "$null_pid" 2>/dev/null && wait "$null_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# A port nobody listens on (bounded tries).
free_port() {
  for _ in $(seq 1 200); do
    local p=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      echo "$p"
      return 0
    fi
  done
  echo "kv.sh: no free port found" >&2
  return 1
}

# Waits (at most 10 s) until something answers PING on port $1.
wait_ready() {
  for _ in $(seq 1 200); do
    [[ "$(redis-cli -p "$1" PING 2>/dev/null)" == "PONG" ]] && return 0
    sleep 0.05
  done
  echo "kv.sh: nothing answers on port $1" >&2
  return 1
}

printf '{"shards": %s, "admin": null, "modules": ["%s"], "actors": [{"type": "kv.server", "args": {"port": 0}}]}\n' \
  "$shards" "$kv_module" >"$work/kv.json"
"$kv_bin" serve --config "$work/kv.json" >"$work/kv.log" 2>&1 &
kv_pid=$!
for _ in $(seq 1 200); do
  grep -q 'kv listening on' "$work/kv.log" && break
  sleep 0.05
done
kv_port="$(sed -n 's/.*kv listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/kv.log" | head -1)"
[[ -n "$kv_port" ]] || { echo "kv.sh: troupe serve with the kv module did not start:" >&2; cat "$work/kv.log" >&2; exit 1; }
wait_ready "$kv_port"

redis_port="$(free_port)"
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
  >"$work/redis.log" 2>&1 &
redis_pid=$!
wait_ready "$redis_port"

null_port="$(free_port)"
"$null_bin" --port "$null_port" >"$work/null.log" 2>&1 &
null_pid=$!
wait_ready "$null_port"

ticks=$(getconf CLK_TCK)
# CPU-seconds process $1 has used so far.
cpu_of() { awk -v t="$ticks" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$1/stat"; }

# One redis-benchmark run; appends "server mode test rps p99" lines to
# results and "server mode client-cores server-cores" to cpu.
bench() {
  local server="$1" port="$2" mode="$3" pid="$4"
  local pipeline=()
  [[ "$mode" == "pipelined" ]] && pipeline=(-P 16)
  redis-cli -p "$port" FLUSHALL >/dev/null
  local before
  before=$(cpu_of "$pid")
  TIMEFORMAT='%3U %3S %3R'
  { time redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -n "$n" -c "$clients" "${pipeline[@]}" \
      --csv >"$work/csv" 2>/dev/null; } 2>"$work/time"
  tr -d '"' <"$work/csv" | awk -F, -v s="$server" -v m="$mode" \
    'NR > 1 && NF >= 7 { print s, m, tolower($1), $2, $7 }' >>"$work/results"
  read -r user sys real <"$work/time"
  awk -v s="$server" -v m="$mode" -v u="$user" -v y="$sys" -v r="$real" -v b="$before" -v a="$(cpu_of "$pid")" \
    'BEGIN { printf "%s %s %.2f %.2f\n", s, m, (u + y) / r, (a - b) / r }' >>"$work/cpu"
}

echo "troupe serve --module kv.so (shards $shards) on port $kv_port," \
  "redis-server $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p') on port $redis_port;" \
  "$runs rounds of redis-benchmark -t set,get -n $n -c $clients, with -P 16 and without" >&2
for round in $(seq 1 "$runs"); do
  for mode in pipelined plain; do
    # Interleaved, and the order rotates, so that no server always goes first.
    case $(( round % 3 )) in
      1) bench troupe "$kv_port" "$mode" "$kv_pid"; bench redis "$redis_port" "$mode" "$redis_pid"
         bench null "$null_port" "$mode" "$null_pid" ;;
      2) bench redis "$redis_port" "$mode" "$redis_pid"; bench null "$null_port" "$mode" "$null_pid"
         bench troupe "$kv_port" "$mode" "$kv_pid" ;;
      0) bench null "$null_port" "$mode" "$null_pid"; bench troupe "$kv_port" "$mode" "$kv_pid"
         bench redis "$redis_port" "$mode" "$redis_pid" ;;
    esac
  done
  echo "round $round of $runs done" >&2
done

# The table: medians over the rounds.
awk '
  function median(key,   n, i, j, t, v) {
    n = split(vals[key], v, " ")
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { key = $1 " " $2 " " $3; vals[key "|rps"] = vals[key "|rps"] " " $4; vals[key "|p99"] = vals[key "|p99"] " " $5 }
  END {
    print "| workload | Troupe req/s | Redis req/s | Troupe÷Redis | Troupe p99 ms | Redis p99 ms | null server req/s | Troupe÷null | Redis÷null |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    split("set get", tests, " "); split("pipelined plain", modes, " ")
    for (m = 1; m <= 2; m++) for (t = 1; t <= 2; t++) {
      tk = "troupe " modes[m] " " tests[t]; rk = "redis " modes[m] " " tests[t]
      ck = "null " modes[m] " " tests[t]
      tr = median(tk "|rps"); rr = median(rk "|rps"); cr = median(ck "|rps")
      printf "| %s %s | %.0f | %.0f | %.2f× | %.3f | %.3f | %.0f | %.0f%% | %.0f%% |\n", toupper(tests[t]), (modes[m] == "pipelined" ? "-P 16" : "no pipeline"), tr, rr, (rr > 0 ? tr / rr : 0), median(tk "|p99"), median(rk "|p99"), cr, (cr > 0 ? 100 * tr / cr : 0), (cr > 0 ? 100 * rr / cr : 0)
    }
  }' "$work/results"

# CPU use: medians over the rounds, in cores (CPU-seconds per second).
echo
awk '
  function median(key,   n, i, j, t, v) {
    n = split(vals[key], v, " ")
    for (i = 2; i <= n; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] + 0 > t + 0; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { key = $1 " " $2; vals[key "|c"] = vals[key "|c"] " " $3; vals[key "|s"] = vals[key "|s"] " " $4 }
  END {
    print "| SET+GET run | redis-benchmark CPU against Troupe | Troupe CPU | redis-benchmark CPU against Redis | Redis CPU | redis-benchmark CPU against the null server |"
    print "|---|---:|---:|---:|---:|---:|"
    split("pipelined plain", modes, " ")
    for (m = 1; m <= 2; m++) {
      tk = "troupe " modes[m]; rk = "redis " modes[m]; ck = "null " modes[m]
      printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f |\n", (modes[m] == "pipelined" ? "-P 16" : "no pipeline"), median(tk "|c"), median(tk "|s"), median(rk "|c"), median(rk "|s"), median(ck "|c")
    }
  }' "$work/cpu"
