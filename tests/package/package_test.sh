#!/usr/bin/env bash
# The installed engine as a CMake package: installs the build into a
# temporary prefix; builds tests/package/module against it with
# find_package(troupe), runs the installed `troupe serve --module` on the
# result and checks that the module loads, its actor type spawns, and the
# engine stops cleanly; then builds tests/package/embedder (the README's
# first example on troupe::troupe, two linked engines on troupe::remote)
# and runs both.
#
#   package_test.sh BUILD_DIR [CMAKE] [CXX_COMPILER] [COMPILER_LAUNCHER]
set -u

build_dir=${1:?usage: package_test.sh BUILD_DIR [CMAKE] [CXX_COMPILER] [COMPILER_LAUNCHER]}
cmake=${2:-cmake}
cxx=${3:-}
launcher=${4:-}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

work=$(mktemp -d "${TMPDIR:-/tmp}/troupe-package-test.XXXXXX")
prefix=$work/prefix
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
  fi
  rm -rf "$work"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# Runs a step quietly; on failure shows its output and stops.
step() {
  local what=$1
  shift
  if ! "$@" >"$work/step.log" 2>&1; then
    cat "$work/step.log" >&2
    fail "$what"
  fi
}

step "cmake --install $build_dir --prefix $prefix" "$cmake" --install "$build_dir" --prefix "$prefix"
for f in bin/troupe include/troupe/troupe.hpp include/troupe/io/reactor.hpp \
         lib/cmake/troupe/troupeConfig.cmake lib/cmake/troupe/troupeConfigVersion.cmake; do
  [[ -e $prefix/$f ]] || fail "the install has no $f"
done

configure=("$cmake" -S "$here/module" -B "$work/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix")
[[ -n $cxx ]] && configure+=(-DCMAKE_CXX_COMPILER="$cxx")
[[ -n $launcher ]] && configure+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
step "configuring the module project with find_package(troupe)" "${configure[@]}"
step "building the module" "$cmake" --build "$work/build"
module=$work/build/greeter.so
[[ -f $module ]] || fail "troupe_add_module(greeter ...) made no $module"

# --module loads the module; the configuration spawns its actor type.
cat >"$work/serve.json" <<JSON
{"actors": [{"type": "greeter.hello", "name": "greeter"}]}
JSON
log=$work/serve.log
"$prefix/bin/troupe" serve --shards 1 --module "$module" --config "$work/serve.json" >"$log" 2>&1 &
pid=$!

# Waits up to 10 s for the log to show $1; fails at once if the engine exits.
wait_for_log() {
  for _ in $(seq 100); do
    grep -qF -- "$1" "$log" && return 0
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; fail "troupe serve exited before logging: $1"; }
    sleep 0.1
  done
  cat "$log" >&2
  fail "troupe serve did not log within 10 s: $1"
}
wait_for_log "loaded module 'greeter' from $module: 1 actor types"
wait_for_log "spawned greeter.hello 'greeter' at"

kill -TERM "$pid"
for _ in $(seq 200); do
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
kill -0 "$pid" 2>/dev/null && { cat "$log" >&2; fail "troupe serve did not stop within 20 s of SIGTERM"; }
wait "$pid"
status=$?
pid=
if [[ $status -ne 0 ]]; then
  cat "$log" >&2
  fail "troupe serve exited with status $status after SIGTERM"
fi
grep -qF "received SIGTERM" "$log" || { cat "$log" >&2; fail "troupe serve did not log its stop"; }
echo "PASS: greeter.so, built against the installed engine, loads into troupe serve"

# An embedder: the README's first example (a main that runs the engine),
# built against the installed package with troupe::troupe, and a program
# that links two engines with troupe::remote.
for f in lib/libtroupe_core.a lib/libtroupe_remote.a lib/libtroupe_cluster.a \
         include/troupe/remote.hpp include/troupe/convention.hpp; do
  [[ -e $prefix/$f ]] || fail "the install has no $f"
done
embed=("$cmake" -S "$here/embedder" -B "$work/embed" -G Ninja -DCMAKE_PREFIX_PATH="$prefix"
       -DCOUNTER_SOURCE="$here/../../actors/examples/hello/counter.cpp")
[[ -n $cxx ]] && embed+=(-DCMAKE_CXX_COMPILER="$cxx")
[[ -n $launcher ]] && embed+=(-DCMAKE_CXX_COMPILER_LAUNCHER="$launcher")
step "configuring the embedder project with find_package(troupe)" "${embed[@]}"
step "building the embedder against troupe::troupe and troupe::remote" "$cmake" --build "$work/embed"
out=$(timeout 60 "$work/embed/counter" 2>&1) || fail "the embedded counter failed: $out"
[[ $out == *"total = 5050"* ]] || fail "the embedded counter printed '$out', not 'total = 5050'"
out=$(timeout 60 "$work/embed/linked" 2>&1) || fail "the linked embedder failed: $out"
[[ $out == *"echo: hi"* ]] || fail "the linked embedder printed '$out', not 'echo: hi'"
echo "PASS: the README's counter and a two-engine program, built against the installed engine, run"
