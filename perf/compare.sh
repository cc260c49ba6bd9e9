#!/usr/bin/env bash
# Runs the Troupe comparison benchmarks against CAF and Erlang/OTP and
# summarises them.
#
#   perf/compare.sh [--runs R] [--filter REGEX] [--no-build] [--no-caf]
#                   [--no-erlang] [--out DIR]
#
# Builds build-release/ (unless --no-build), then for each round 1..R runs
# every selected row once per system, interleaved (troupe, caf, erlang), so
# slow drifts of the machine hit all systems alike. --filter selects the rows
# whose name or job (e.g. restart-latency) matches REGEX. Reports the median,
# min and max per system and row in DIR/compare.md (also printed), the raw
# per-run values in DIR/compare.json and a ratio chart in DIR/compare.png.
# DIR defaults to perf/results.
#
# Binaries can be overridden through the environment:
#   TROUPE_PERF  (default build-release/perf/troupe-perf)
#   TROUPE_BASE_PERF  another troupe-perf (an older commit's, say): run with
#                the same arguments in the same rounds, as a "base" column
#                with a Troupe÷base ratio
#   CAF_PERF     (default build-release/perf/peers/caf/caf-perf)
#   ERLANG_RUN   (default perf/peers/erlang/run.sh)
# A peer whose binary (or erl) is missing is skipped with a note. A single
# run that fails, prints no usable value or exceeds 180 s (COMPARE_TIMEOUT)
# counts as missing. A system without a workload for a row (CAF has no
# supervisor restarts) is not run for it and its cell reads n/a.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

# `compare.sh kv [kv.sh options]`: the key-value server beside redis-server.
if [[ "${1:-}" == "kv" ]]; then
  shift
  cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build build-release --target troupe kv_module troupe-resp-null
  exec "$root/perf/kv.sh" "$@"
fi

usage() {
  sed -n '2,23p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

runs=3
filter=""
do_build=1
use_caf=1
use_erlang=1
out_dir="$root/perf/results"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) [[ $# -ge 2 ]] || usage; runs=$2; shift 2 ;;
    --filter) [[ $# -ge 2 ]] || usage; filter=$2; shift 2 ;;
    --no-build) do_build=0; shift ;;
    --no-caf) use_caf=0; shift ;;
    --no-erlang) use_erlang=0; shift ;;
    --out) [[ $# -ge 2 ]] || usage; out_dir=$2; shift 2 ;;
    -h|--help) usage ;;
    *) echo "compare.sh: unknown argument $1" >&2; usage ;;
  esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --runs must be a positive integer" >&2; exit 2; }

run_timeout=${COMPARE_TIMEOUT:-180} # seconds per single run
# COMPARE_SETTLE (default 1): seconds of rest before each single run.

troupe_bin=${TROUPE_PERF:-$root/build-release/perf/troupe-perf}
caf_bin=${CAF_PERF:-$root/build-release/perf/peers/caf/caf-perf}
erlang_run=${ERLANG_RUN:-$root/perf/peers/erlang/run.sh}

note() { echo "compare.sh: $*" >&2; }

# -- comparison rows ----------------------------------------------------------
#
# A job is one invocation per system; a row is one number taken from a job's
# output, selected by its unit (the spawn and restart-latency jobs yield two
# rows each). Empty args: the system has no such workload (n/a).
#   job | troupe args | caf args | erlang args

jobs=(
  "pingpong-same|--workload pingpong --shards 1|--workload pingpong --workers 1|--workload pingpong --workers 1"
  "pingpong-cross|--workload pingpong-cross --shards 2|--workload pingpong --workers 2|--workload pingpong --workers 2"
  "fanin-k1|--workload fanin-k1 --shards 2|--workload fanin-k1 --workers 2|--workload fanin-k1 --workers 2"
  "fanin-k2|--workload fanin-k2 --shards 2|--workload fanin-k2 --workers 2|--workload fanin-k2 --workers 2"
  "fanin-k8|--workload fanin-k8 --shards 2|--workload fanin-k8 --workers 2|--workload fanin-k8 --workers 2"
  "ring|--workload ring --shards 1|--workload ring --workers 1|--workload ring --workers 1"
  "spawn|--workload spawn --shards 2|--workload spawn --workers 2|--workload spawn --workers 2"
  "skynet|--workload skynet --shards 2|--workload skynet --workers 2|--workload skynet --workers 2"
  "restart-fresh|--workload restart-fresh --shards 2||--workload restart-fresh --workers 2"
  "restart-fresh-exit|--workload restart-fresh-exit --shards 2||--workload restart-fresh --workers 2"
  "restart-sustained|--workload restart-sustained --shards 2 --n 50000||--workload restart-sustained --workers 2 --n 50000"
  "restart-sustained-exit|--workload restart-sustained-exit --shards 2 --n 50000||--workload restart-sustained --workers 2 --n 50000"
  "restart-latency|--workload restart-latency --shards 2||--workload restart-latency --workers 2"
  "restart-latency-exit|--workload restart-latency-exit --shards 2||--workload restart-latency --workers 2"
  "remote-pingpong|--workload remote-pingpong --shards 2 --n 50000|--workload remote-pingpong --workers 2 --n 50000|--workload remote-pingpong --workers 2 --n 50000"
  "remote-pipeline|--workload remote-pipeline --shards 2 --n 4000000|--workload remote-pipeline --workers 2 --n 4000000|--workload remote-pipeline --workers 2 --n 4000000"
)

#   row name | job | unit
rows=(
  "pingpong same shard|pingpong-same|rt/s"
  "pingpong cross shard|pingpong-cross|rt/s"
  "fanin K=1|fanin-k1|msg/s"
  "fanin K=2|fanin-k2|msg/s"
  "fanin K=8|fanin-k8|msg/s"
  "ring 503|ring|hops/s"
  "spawn|spawn|spawn/s"
  "bytes per idle actor|spawn|bytes/actor"
  "skynet 1M|skynet|actors/s"
  "restart fresh, throw|restart-fresh|restarts/s"
  "restart fresh, fail_with|restart-fresh-exit|restarts/s"
  "restart sustained, throw|restart-sustained|restarts/s"
  "restart sustained, fail_with|restart-sustained-exit|restarts/s"
  "crash→answer p50, throw|restart-latency|us-p50"
  "crash→answer p99, throw|restart-latency|us-p99"
  "crash→answer p50, fail_with|restart-latency-exit|us-p50"
  "crash→answer p99, fail_with|restart-latency-exit|us-p99"
  "remote pingpong, 2 engines|remote-pingpong|rt/s"
  "remote pipeline, 2 engines|remote-pipeline|msg/s"
)

# Rows where a smaller value is better. Their ratios stay Troupe÷peer like
# every other row, so below 1 is Troupe's advantage there.
lower_is_better() {
  case "$1" in
    bytes/actor | us-p50 | us-p99) return 0 ;;
    *) return 1 ;;
  esac
}

# Unit as shown in the table.
display_unit() {
  case "$1" in
    us-p50 | us-p99) echo "µs" ;;
    *) echo "$1" ;;
  esac
}

# job_args JOB SYSTEM -> the system's arguments for JOB ("" = no such workload).
job_args() {
  local j job targs cargs eargs
  for j in "${jobs[@]}"; do
    IFS='|' read -r job targs cargs eargs <<<"$j"
    [[ "$job" == "$1" ]] || continue
    case "$2" in
      troupe | base) echo "$targs" ;;
      caf) echo "$cargs" ;;
      erlang) echo "$eargs" ;;
    esac
    return 0
  done
}

# measures ROW SYSTEM: whether the system has a workload for ROW.
measures() {
  local r rname rjob
  for r in "${rows[@]}"; do
    IFS='|' read -r rname rjob _ <<<"$r"
    if [[ "$rname" == "$1" ]]; then
      [[ -n "$(job_args "$rjob" "$2")" ]]
      return
    fi
  done
  return 1
}

selected_rows=()
for r in "${rows[@]}"; do
  IFS='|' read -r name rjob _ <<<"$r"
  if [[ -z "$filter" ]] || grep -Eq -- "$filter" <<<"$name" ||
    grep -Eq -- "$filter" <<<"$rjob"; then
    selected_rows+=("$r")
  fi
done
if [[ ${#selected_rows[@]} -eq 0 ]]; then
  note "no row matches --filter '$filter'"
  exit 2
fi

job_selected() {
  local r
  for r in "${selected_rows[@]}"; do
    IFS='|' read -r _ rjob _ <<<"$r"
    [[ "$rjob" == "$1" ]] && return 0
  done
  return 1
}

# -- build --------------------------------------------------------------------

if [[ $do_build -eq 1 ]]; then
  cmake -S . -B build-release -DCMAKE_BUILD_TYPE=Release
  if ! cmake --build build-release -j2 --target troupe-perf caf-perf; then
    note "building troupe-perf and caf-perf together failed; building troupe-perf alone"
    cmake --build build-release -j2 --target troupe-perf
  fi
fi

# -- systems ------------------------------------------------------------------

if [[ ! -x "$troupe_bin" ]]; then
  note "engine binary not found: $troupe_bin (build it or set TROUPE_PERF)"
  exit 1
fi
systems=(troupe)
base_bin=${TROUPE_BASE_PERF:-}
if [[ -n "$base_bin" ]]; then
  if [[ -x "$base_bin" ]]; then
    systems+=(base)
  else
    note "TROUPE_BASE_PERF is not an executable: $base_bin"
    exit 1
  fi
fi
caf_note=""
erlang_note=""
if [[ $use_caf -eq 0 ]]; then
  caf_note="CAF skipped (--no-caf)"
elif [[ ! -x "$caf_bin" ]]; then
  caf_note="CAF skipped: $caf_bin not found"
  use_caf=0
else
  systems+=(caf)
fi
if [[ $use_erlang -eq 0 ]]; then
  erlang_note="Erlang skipped (--no-erlang)"
elif ! command -v erl >/dev/null || ! command -v erlc >/dev/null; then
  erlang_note="Erlang skipped: erl/erlc not found"
  use_erlang=0
elif [[ ! -x "$erlang_run" ]]; then
  erlang_note="Erlang skipped: $erlang_run not found"
  use_erlang=0
else
  systems+=(erlang)
fi
for n in "$caf_note" "$erlang_note"; do
  if [[ -n "$n" ]]; then note "$n"; fi
done

# -- running ------------------------------------------------------------------

work=$(mktemp -d "${TMPDIR:-/tmp}/troupe-compare.XXXXXX")
trap 'rm -rf "$work"' EXIT
raw="$work/raw.tsv" # round, row, system, value ("" = missing)
: >"$raw"

# run_system SYSTEM "ARGS" -> output lines on stdout; returns non-zero when
# the run failed or timed out (its output is still printed).
run_system() {
  local sys=$1 args=$2 rc=0
  local -a argv
  read -r -a argv <<<"$args"
  # Let the machine settle first: the previous run may have freed a
  # gigabyte that the kernel is still reclaiming on the cores we measure.
  sleep "${COMPARE_SETTLE:-1}"
  case "$sys" in
    troupe) timeout -k 10 "$run_timeout" "$troupe_bin" "${argv[@]}" --runs 1 2>"$work/stderr" || rc=$? ;;
    base) timeout -k 10 "$run_timeout" "$base_bin" "${argv[@]}" --runs 1 2>"$work/stderr" || rc=$? ;;
    caf) timeout -k 10 "$run_timeout" "$caf_bin" "${argv[@]}" --runs 1 2>"$work/stderr" || rc=$? ;;
    erlang) timeout -k 10 "$run_timeout" "$erlang_run" "${argv[@]}" --runs 1 2>"$work/stderr" || rc=$? ;;
  esac
  return $rc
}

for ((round = 1; round <= runs; round++)); do
  for j in "${jobs[@]}"; do
    IFS='|' read -r job targs cargs eargs <<<"$j"
    job_selected "$job" || continue
    for sys in "${systems[@]}"; do
      case "$sys" in
        troupe | base) args=$targs ;;
        caf) args=$cargs ;;
        erlang) args=$eargs ;;
      esac
      if [[ -z "$args" ]]; then
        # No such workload on this system: nothing to run, its cells read n/a.
        for r in "${selected_rows[@]}"; do
          IFS='|' read -r rname rjob runit <<<"$r"
          [[ "$rjob" == "$job" ]] || continue
          printf '[%d/%d] %-22s %-7s n/a\n' "$round" "$runs" "$rname" "$sys" >&2
        done
        continue
      fi
      rc=0
      output=$(run_system "$sys" "$args") || rc=$?
      if [[ $rc -ne 0 ]]; then
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then
          note "round $round $job $sys: timed out after ${run_timeout}s"
        else
          note "round $round $job $sys: exit status $rc"
        fi
        sed 's/^/    /' "$work/stderr" | tail -n 5 >&2
      fi
      for r in "${selected_rows[@]}"; do
        IFS='|' read -r rname rjob runit <<<"$r"
        [[ "$rjob" == "$job" ]] || continue
        value=""
        if [[ $rc -eq 0 ]]; then
          # Line format: "<system> <workload> <value> <unit>".
          value=$(awk -v s="${sys/base/troupe}" -v u="$runit" \
            '$1 == s && $4 == u && $3 ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ { print $3; exit }' \
            <<<"$output")
          [[ -n "$value" ]] || note "round $round $rname $sys: no '$runit' value in output"
        fi
        printf '%s\t%s\t%s\t%s\n' "$round" "$rname" "$sys" "$value" >>"$raw"
        printf '[%d/%d] %-22s %-7s %s %s\n' "$round" "$runs" "$rname" "$sys" \
          "${value:-missing}" "$runit" >&2
      done
    done
  done
done

# -- statistics ---------------------------------------------------------------

# stats.tsv: row, system, count, median, min, max, values (comma-separated,
# one per round, "null" when missing). Empty stats fields when no value.
awk -F'\t' -v rounds="$runs" '
  { key = $2 SUBSEP $3; vals[key, $1] = $4; keys[key] = 1 }
  END {
    for (key in keys) {
      split(key, kp, SUBSEP)
      n = 0; list = ""
      for (r = 1; r <= rounds; r++) {
        v = ((key, r) in vals) ? vals[key, r] : ""
        list = list (r > 1 ? "," : "") (v == "" ? "null" : v)
        if (v != "") a[++n] = v + 0
      }
      # insertion sort; n is the number of rounds
      for (i = 2; i <= n; i++) {
        x = a[i]
        for (k = i - 1; k >= 1 && a[k] > x; k--) a[k + 1] = a[k]
        a[k + 1] = x
      }
      if (n == 0) { med = ""; mn = ""; mx = "" }
      else {
        med = (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
        med = sprintf("%.15g", med); mn = sprintf("%.15g", a[1])
        mx = sprintf("%.15g", a[n])
      }
      printf "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", kp[1], kp[2], n, med, mn, mx, list
    }
  }' "$raw" >"$work/stats.tsv"

# stat ROW SYSTEM FIELD  (FIELD: 3 count, 4 median, 5 min, 6 max, 7 values)
stat() {
  awk -F'\t' -v r="$1" -v s="$2" -v f="$3" '$1 == r && $2 == s { print $f; exit }' \
    "$work/stats.tsv"
}

# Human-readable number: 3 significant digits with k/M/G (latencies in µs
# of 1000 and more in whole µs).
human() {
  awk -v v="$1" -v u="$2" 'BEGIN {
    if (v == "") { print "—"; exit }
    if (u == "bytes/actor") { printf "%.0f\n", v; exit }
    if (u ~ /^us-p/ && v >= 1000) { printf "%.0f\n", v; exit }
    a = v < 0 ? -v : v
    if (a >= 1e9) printf "%.3gG\n", v / 1e9
    else if (a >= 1e6) printf "%.3gM\n", v / 1e6
    else if (a >= 1e3) printf "%.3gk\n", v / 1e3
    else printf "%.3g\n", v
  }'
}

ratio() {
  awk -v a="$1" -v b="$2" 'BEGIN {
    if (a == "" || b == "" || b + 0 == 0) print ""; else printf "%.3f\n", a / b
  }'
}

fmt_ratio() {
  if [[ -n "$1" ]]; then printf '%.2f×' "$1"; else printf '—'; fi
}

cell() { # ROW SYSTEM UNIT
  local med mn mx n
  if ! measures "$1" "$2"; then
    echo "n/a"
    return
  fi
  if [[ " ${systems[*]} " != *" $2 "* ]]; then
    echo "skipped"
    return
  fi
  med=$(stat "$1" "$2" 4)
  n=$(stat "$1" "$2" 3)
  if [[ -z "$med" ]]; then
    : >"$work/missing_note"
    echo "missing"
    return
  fi
  mn=$(stat "$1" "$2" 5)
  mx=$(stat "$1" "$2" 6)
  local extra=""
  if [[ "$n" -gt 1 ]]; then
    extra="$(human "$mn" "$3")–$(human "$mx" "$3")"
  fi
  if [[ "$n" -lt "$runs" ]]; then
    extra="${extra:+$extra, }$((runs - n)) of $runs missing"
    : >"$work/missing_note" # a flag file; this runs in a subshell
  fi
  echo "$(human "$med" "$3")${extra:+ ($extra)}"
}

mkdir -p "$out_dir"
md="$out_dir/compare.md"
json="$out_dir/compare.json"
png="$out_dir/compare.png"
ratios="$work/ratios.tsv"
: >"$ratios"

generated=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null | tr -d '"\\' || true)
cores=$(nproc 2>/dev/null || echo "?")
kernel=$(uname -sr | tr -d '"\\')
commit=$(git rev-parse --short HEAD 2>/dev/null || echo "none")

{
  echo "# Troupe vs CAF vs Erlang"
  echo
  echo "Generated $generated on ${cpu:-unknown CPU} ($cores cores, $kernel), commit $commit."
  echo "Median of $runs interleaved round(s); min–max in parentheses."
  if [[ -n "$caf_note" ]]; then echo "$caf_note."; fi
  if [[ -n "$erlang_note" ]]; then echo "$erlang_note."; fi
  echo
  if [[ -n "$base_bin" ]]; then
    echo "Base: $base_bin, run in the same rounds with the same arguments."
    echo
    echo "| row | Troupe (median) | base | CAF | Erlang | Troupe÷base | Troupe÷CAF | Troupe÷Erlang |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  else
    echo "| row | Troupe (median) | CAF | Erlang | Troupe÷CAF | Troupe÷Erlang |"
    echo "|---|---:|---:|---:|---:|---:|"
  fi
} >"$md"

idx=0
for r in "${selected_rows[@]}"; do
  IFS='|' read -r rname _ runit <<<"$r"
  t=$(stat "$rname" troupe 4)
  c=$(stat "$rname" caf 4)
  e=$(stat "$rname" erlang 4)
  rc_=$(ratio "$t" "$c")
  re_=$(ratio "$t" "$e")
  label="$rname ($(display_unit "$runit"))"
  chart_label=$rname
  if lower_is_better "$runit"; then
    label="$rname ($(display_unit "$runit"), lower is better)"
    chart_label="$rname (<1 better)"
  fi
  if [[ -n "$base_bin" ]]; then
    rb_=$(ratio "$t" "$(stat "$rname" base 4)")
    printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" \
      "$(cell "$rname" troupe "$runit")" "$(cell "$rname" base "$runit")" \
      "$(cell "$rname" caf "$runit")" "$(cell "$rname" erlang "$runit")" \
      "$(fmt_ratio "$rb_")" "$(fmt_ratio "$rc_")" "$(fmt_ratio "$re_")" >>"$md"
  else
    printf '| %s | %s | %s | %s | %s | %s |\n' "$label" \
      "$(cell "$rname" troupe "$runit")" "$(cell "$rname" caf "$runit")" \
      "$(cell "$rname" erlang "$runit")" "$(fmt_ratio "$rc_")" "$(fmt_ratio "$re_")" >>"$md"
  fi
  printf '%d\t%s\t%s\t%s\n' "$idx" "$chart_label" "${rc_:-NaN}" "${re_:-NaN}" >>"$ratios"
  idx=$((idx + 1))
done

{
  echo
  echo "Higher is better for every row except **bytes per idle actor** and"
  echo "**crash→answer p50/p99**, where lower is better. Ratios are always"
  echo "Troupe÷peer of the medians: above 1 Troupe is faster, except for those"
  echo "rows, where below 1 means Troupe uses less memory per actor or answers"
  echo "sooner after a crash."
  echo
  echo "Rows: pingpong same shard = Troupe 1 shard / CAF 1 worker / Erlang +S 1;"
  echo "pingpong cross shard, fanin, spawn, bytes per idle actor, skynet and the"
  echo "restart rows = 2 shards / 2 workers / +S 2; ring 503 = 1 shard / 1 worker"
  echo "/ +S 1. The restart rows are a one_for_one supervisor restarting a"
  echo "crashed child (an OTP supervisor and gen_server on Erlang); CAF has no"
  echo "such workload (n/a)."
  if [[ -f "$work/missing_note" ]]; then
    echo
    echo "Some runs failed or timed out (${run_timeout} s limit); medians use the runs"
    echo "that completed (see compare.json, where missing runs are null)."
  fi
} >>"$md"

# -- raw values as JSON -------------------------------------------------------

{
  printf '{\n'
  printf '  "generated": "%s",\n' "$generated"
  printf '  "host": {"cpu": "%s", "cores": "%s", "kernel": "%s"},\n' "$cpu" "$cores" "$kernel"
  printf '  "commit": "%s",\n' "$commit"
  printf '  "rounds": %d,\n' "$runs"
  printf '  "rows": [\n'
  first_row=1
  for r in "${selected_rows[@]}"; do
    IFS='|' read -r rname _ runit <<<"$r"
    [[ $first_row -eq 1 ]] || printf ',\n'
    first_row=0
    lower=false
    if lower_is_better "$runit"; then lower=true; fi
    printf '    {"row": "%s", "unit": "%s", "lower_is_better": %s, "systems": {' \
      "$rname" "$runit" "$lower"
    first_sys=1
    for sys in troupe base caf erlang; do
      [[ $sys != base || -n "$base_bin" ]] || continue
      [[ $first_sys -eq 1 ]] || printf ', '
      first_sys=0
      if [[ " ${systems[*]} " != *" $sys "* ]] || ! measures "$rname" "$sys"; then
        printf '"%s": null' "$sys"
        continue
      fi
      med=$(stat "$rname" "$sys" 4)
      printf '"%s": {"values": [%s], "median": %s, "min": %s, "max": %s}' "$sys" \
        "$(stat "$rname" "$sys" 7)" "${med:-null}" \
        "$(v=$(stat "$rname" "$sys" 5); echo "${v:-null}")" \
        "$(v=$(stat "$rname" "$sys" 6); echo "${v:-null}")"
    done
    printf '}}'
  done
  printf '\n  ]\n}\n'
} >"$json"

# -- chart --------------------------------------------------------------------

chart_written=0
if ! command -v gnuplot >/dev/null; then
  note "gnuplot not found; no chart written"
elif ! awk -F'\t' '$3 != "NaN" || $4 != "NaN" { found = 1 } END { exit !found }' "$ratios"; then
  note "no peer values to compare; no chart written"
  rm -f "$png"
else
  # y range: all ratios and 1, with some room for the value labels.
  read -r ymin ymax < <(awk -F'\t' '
    BEGIN { lo = 1; hi = 1 }
    { for (i = 3; i <= 4; i++) if ($i != "NaN") { if ($i < lo) lo = $i; if ($i > hi) hi = $i } }
    END {
      lo /= 1.6; hi *= 1.6
      if (lo > 0.5) lo = 0.5
      if (hi < 2) hi = 2
      print lo, hi
    }' "$ratios")
  has_caf=$(awk -F'\t' '$3 != "NaN" { f = 1 } END { print f + 0 }' "$ratios")
  has_erlang=$(awk -F'\t' '$4 != "NaN" { f = 1 } END { print f + 0 }' "$ratios")
  if gnuplot -e "datafile='$ratios'; outfile='$png'; ymin=$ymin; ymax=$ymax; has_caf=$has_caf; has_erlang=$has_erlang" \
      "$root/perf/plot.gp"; then
    chart_written=1
  else
    note "gnuplot failed; no chart written"
  fi
fi

cat "$md"
echo
if [[ $chart_written -eq 1 ]]; then
  note "wrote $md, $json and $png"
else
  note "wrote $md and $json"
fi
