#!/usr/bin/env bash
# Starts a local convention — a leader, two members and a driver that keeps
# workers placed over them — runs jobs across it, kills a member (kill -9)
# and adds one, and prints a timeline: detection time, restart time, when
# the new member took work, and jobs sent / answered / failed.
# Arguments go to the demo (e.g. --seconds 20 --workers 12).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

"$root/scripts/setup.sh"
cmake -S . -B build-release -G Ninja -DCMAKE_BUILD_TYPE=Release -DTROUPE_TESTS=OFF >/dev/null
cmake --build build-release -j"$(nproc)" --target troupe troupe-cluster-demo demo_module >/dev/null
exec build-release/actors/examples/troupe-cluster-demo --troupe build-release/troupe \
  --module build-release/actors/examples/demo.so "$@"
