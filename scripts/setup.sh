#!/usr/bin/env bash
# Installs the Debian packages Troupe's build and tests need. Idempotent:
# when everything is already installed it does nothing.
#
#   scripts/setup.sh          build + tests
#   scripts/setup.sh --perf   also the perf peers (CAF, Erlang, redis-server) and gnuplot
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config ccache clang-format clang-tidy
  liburing-dev libboost-context-dev nlohmann-json3-dev catch2
  libspdlog-dev libfmt-dev libcli11-dev
  clang libclang-rt-14-dev libssl-dev libhttp-parser-dev
  redis-tools etcd-server etcd-client libcurl4-openssl-dev iproute2 python3
)
if [[ "${1:-}" == "--perf" ]]; then
  packages+=(libcaf-dev erlang-base gnuplot-nox redis-server)
elif [[ $# -gt 0 ]]; then
  echo "setup.sh: unknown argument '$1' (expected nothing or --perf)" >&2
  exit 2
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "setup.sh: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
