#!/usr/bin/env bash
# Erlang/OTP peer for the Troupe comparison benchmarks.
#
#   run.sh --workload NAME --workers W [--n N] [--runs R] [--json]
#
# Compiles perf.erl (when the .beam is missing or stale) into a build
# directory, by default $TMPDIR/troupe-perf-erlang-$UID (override with
# ERLANG_PERF_BUILD), then runs it on a node with W schedulers (+S W:W).
# Prints "erlang <workload> <value> <unit>" per run, or JSON with --json.
#
# The remote workloads (remote-pingpong, remote-pipeline) run on two nodes,
# two OS processes talking distributed Erlang over 127.0.0.1. For them this
# script starts a private epmd on a free port (ERL_EPMD_PORT; the system's
# epmd on 4369 is neither used nor started) and this node with a long name
# @127.0.0.1 and a random cookie; perf.erl starts the second node itself
# (the `peer` module, a child process of this node's VM that halts when it
# loses this node). On exit, also on SIGTERM or SIGINT, the node and the epmd
# are ended by their PIDs.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 --workload NAME --workers W [--n N] [--runs R] [--json]" >&2
  echo "workloads: pingpong fanin-k1 fanin-k2 fanin-k8 ring spawn skynet" >&2
  echo "           restart-fresh restart-sustained restart-latency" >&2
  echo "           remote-pingpong remote-pipeline" >&2
  exit 2
}

workload=""
workers=""
n="default"
runs=1
format="text"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --workload) [[ $# -ge 2 ]] || usage; workload=$2; shift 2 ;;
    --workers) [[ $# -ge 2 ]] || usage; workers=$2; shift 2 ;;
    --n) [[ $# -ge 2 ]] || usage; n=$2; shift 2 ;;
    --runs) [[ $# -ge 2 ]] || usage; runs=$2; shift 2 ;;
    --json) format="json"; shift ;;
    -h|--help) usage ;;
    *) echo "run.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ -n "$workload" ]] || usage
[[ "$workers" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --workers must be a positive integer" >&2; exit 2; }
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --runs must be a positive integer" >&2; exit 2; }
[[ "$n" == "default" || "$n" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: --n must be a positive integer" >&2; exit 2; }

command -v erl >/dev/null && command -v erlc >/dev/null || {
  echo "run.sh: erl/erlc not found" >&2
  exit 127
}

build=${ERLANG_PERF_BUILD:-${TMPDIR:-/tmp}/troupe-perf-erlang-$(id -u)}
mkdir -p "$build"
if [[ ! -f "$build/perf.beam" || "$here/perf.erl" -nt "$build/perf.beam" ]]; then
  # Compile to a private name and move it into place, so concurrent callers
  # never load a half-written module.
  tmp=$(mktemp -d "$build/compile.XXXXXX")
  erlc -o "$tmp" "$here/perf.erl"
  mv -f "$tmp/perf.beam" "$build/perf.beam"
  rmdir "$tmp"
fi

# +P: room for the 1M idle processes of `spawn` and the 1.1M of `skynet`
# on top of the default limit of 2^20.
case "$workload" in
  remote-*) ;;
  *)
    exec erl -noshell -noinput +S "$workers:$workers" +P 4194304 -pa "$build" \
      -run perf main "$workload" "$n" "$runs" "$format"
    ;;
esac

# -- remote workloads: two nodes ---------------------------------------------

command -v epmd >/dev/null || {
  echo "run.sh: epmd not found" >&2
  exit 127
}

epmd_pid=""
erl_pid=""

# stop_pid PID: SIGTERM, then SIGKILL after 5 s; reaps it.
stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cleanup() {
  if [[ -n "$erl_pid" ]]; then stop_pid "$erl_pid"; fi
  if [[ -n "$epmd_pid" ]]; then stop_pid "$epmd_pid"; fi
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# A private epmd, listening on 127.0.0.1 only. A port that is taken makes it
# exit at once; then another one is tried.
epmd_port=""
for ((try = 0; try < 20; try++)); do
  port=$((20000 + RANDOM % 40000))
  epmd -port "$port" -address 127.0.0.1 </dev/null >/dev/null 2>&1 &
  epmd_pid=$!
  for ((i = 0; i < 40; i++)); do
    kill -0 "$epmd_pid" 2>/dev/null || break
    if epmd -port "$port" -names >/dev/null 2>&1; then
      epmd_port=$port
      break
    fi
    sleep 0.05
  done
  # Still alive: it is ours that answered.
  if [[ -n "$epmd_port" ]] && kill -0 "$epmd_pid" 2>/dev/null; then break; fi
  epmd_port=""
  stop_pid "$epmd_pid"
  epmd_pid=""
done
[[ -n "$epmd_port" ]] || {
  echo "run.sh: could not start a private epmd" >&2
  exit 1
}

cookie=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
rc=0
ERL_EPMD_PORT=$epmd_port erl -noshell -noinput +S "$workers:$workers" \
  +P 4194304 -pa "$build" \
  -name "troupe_perf_a_$$@127.0.0.1" -setcookie "$cookie" -start_epmd false \
  -kernel inet_dist_use_interface '{127,0,0,1}' \
  -run perf main "$workload" "$n" "$runs" "$format" </dev/null &
erl_pid=$!
wait "$erl_pid" || rc=$?
erl_pid=""
exit "$rc"
