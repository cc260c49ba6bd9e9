#!/usr/bin/env bash
# scripts/check-layers.sh can fail: in a copy of the tree, plant one wrong-way
# include, one troupe/internal/ include from actors/ and one include cycle,
# each in a fresh copy, and expect the check to exit non-zero and name the
# planted file each time. An include of a header that does not exist must
# change nothing. Whether the unchanged tree passes is the check's own job in
# CI; here it only has to run without crashing.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

# The tree as git sees it: tracked files and new ones not ignored (so build
# folders stay out), without files deleted from the work tree.
mkdir "$scratch/tree"
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  git -C "$root" ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' f; do [[ -e "$root/$f" ]] && printf '%s\0' "$f"; done |
    tar -C "$root" --null -T - -cf - | tar -C "$scratch/tree" -xf -
else
  # A source tree without git: the check reads only these.
  cp -R "$root/scripts" "$root/io" "$root/engine" "$root/actors" "$scratch/tree/"
fi

# fresh NAME: a new copy of the tree, in $scratch/NAME.
fresh() {
  rm -rf "${scratch:?}/$1"
  cp -R "$scratch/tree" "$scratch/$1"
}

# check NAME: runs the copy's check from the copy's root; sets rc and out.
check() {
  set +e
  out=$(cd "$scratch/$1" && scripts/check-layers.sh 2>&1)
  rc=$?
  set -e
}

# expect_failure NAME WHAT PATTERN...: the check fails in copy NAME and its
# output matches every PATTERN (extended regular expressions).
expect_failure() {
  local name=$1 what=$2
  shift 2
  local first=$1
  check "$name"
  [[ $rc -eq 1 ]] || fail "$what: the check exited $rc, not 1:"$'\n'"$out"
  for pattern in "$@"; do
    grep -Eq -- "$pattern" <<<"$out" || fail "$what: no line matches '$pattern':"$'\n'"$out"
  done
  echo "ok: $what"
  grep -E -- "$first" <<<"$out" | sed 's/^/    /' || true
}

# The unchanged tree: the check runs, and names none of the files planted below
# (otherwise their lines would prove nothing).
check tree
[[ $rc -eq 0 || $rc -eq 1 ]] || fail "the check crashed on the unchanged tree (exit $rc):"$'\n'"$out"
clean_rc=$rc
clean_out=$out
if grep -Eq '^(engine/core/address\.cpp|actors/examples/hello/internal_peek\.cpp|engine/core/planted_)' \
  <<<"$clean_out"; then
  fail "the unchanged tree already names a file this test plants:"$'\n'"$clean_out"
fi
echo "ok: the check runs on the unchanged tree (exit $clean_rc; $(tail -n 1 <<<"$clean_out"))"

# 1. A wrong-way include: core reaching up into the cluster layer.
fresh wrong_way
line=$(($(wc -l <"$scratch/wrong_way/engine/core/address.cpp") + 1))
echo '#include "cluster/convention.hpp"' >>"$scratch/wrong_way/engine/core/address.cpp"
expect_failure wrong_way "a wrong-way include from core to cluster fails" \
  "^engine/core/address\.cpp:$line: .*cluster/convention\.hpp"

# 2. A module including the engine's internals.
fresh actors_internal
cat >"$scratch/actors_internal/actors/examples/hello/internal_peek.cpp" <<'EOF'
#include <troupe/troupe.hpp>
#include <troupe/internal/envelope.hpp>
EOF
expect_failure actors_internal "an include of troupe/internal/ from actors/ fails" \
  "^actors/examples/hello/internal_peek\.cpp:2: .*troupe/internal/envelope\.hpp"

# 3. Two headers that include each other.
fresh cycle
printf '#pragma once\n#include "core/planted_b.hpp"\n' >"$scratch/cycle/engine/core/planted_a.hpp"
printf '#pragma once\n#include "core/planted_a.hpp"\n' >"$scratch/cycle/engine/core/planted_b.hpp"
expect_failure cycle "a two-file include cycle fails" \
  "^engine/core/planted_[ab]\.hpp:2: .*cycle.*engine/core/planted_a\.hpp.*engine/core/planted_b\.hpp"

# 4. Includes of headers that exist nowhere (a typo, a system header not
# installed): the check still runs and reports what it reported before.
fresh missing
cat >>"$scratch/missing/engine/core/address.cpp" <<'EOF'
#include "troupe/no_such_header.hpp"
#include <no_such_system_header.h>
EOF
check missing
# The same verdict and the same violations (the summary counts includes).
violations() { grep -v '^check-layers: ' <<<"$1" || true; }
[[ $rc -eq $clean_rc && "$(violations "$out")" == "$(violations "$clean_out")" ]] ||
  fail "an include of a missing header changed the result (exit $rc, was $clean_rc):"$'\n'"$out"
echo "ok: an include of a header that does not exist changes nothing"
