#!/usr/bin/env bash
# Erlang/OTP peer for the Troupe comparison benchmarks.
#
#   run.sh --workload NAME --workers W [--n N] [--runs R] [--json]
#
# Compiles perf.erl (when the .beam is missing or stale) into a build
# directory, by default $TMPDIR/troupe-perf-erlang-$UID (override with
# ERLANG_PERF_BUILD), then runs it on a node with W schedulers (+S W:W).
# Prints "erlang <workload> <value> <unit>" per run, or JSON with --json.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
  echo "usage: $0 --workload NAME --workers W [--n N] [--runs R] [--json]" >&2
  echo "workloads: pingpong fanin-k1 fanin-k2 fanin-k8 ring spawn skynet" >&2
  echo "           restart-fresh restart-sustained restart-latency" >&2
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
exec erl -noshell -noinput +S "$workers:$workers" +P 4194304 -pa "$build" \
  -run perf main "$workload" "$n" "$runs" "$format"
