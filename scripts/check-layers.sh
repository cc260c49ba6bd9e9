#!/usr/bin/env bash
# Checks that the layers point one way, io ← core ← remote ← cluster ← server
# (io/, engine/core/, engine/remote/, engine/cluster/, engine/server/; each
# layer's public headers in its include/ folder), from the #include lines
# alone: no build needed, well under a second.
#
#   scripts/check-layers.sh [ROOT]    ROOT is the repository root (default: .)
#
# A file fails the check when it
#   1. includes a header of a higher layer, public or private;
#   2. lives in engine/server/ and includes another layer's private header
#      (the server uses the other layers through their public headers only);
#   3. lives in actors/ and includes troupe/internal/..., a private engine
#      header (core/, remote/, cluster/, server/) or a private io header;
#   4. is a public header (in an include/ folder) and includes a private one;
#   5. is on an include cycle between files of engine/ and io/.
# An include that names no file of the tree is a system or third-party header
# and is left alone, unless its name is a layer's path (core/..., remote/...,
# cluster/..., server/..., troupe/internal/...). Each failure is one line, file:line: reason; exit 1.
# Exit 0 with one summary line when there are none; exit 2 on bad usage.
set -euo pipefail
if ! command -v python3 >/dev/null; then
  echo "check-layers: python3 is needed (Debian: apt-get install python3)" >&2
  exit 2
fi
exec python3 - "$@" <<'PY'
import os
import re
import sys
from collections import deque

LAYERS = ["io", "core", "remote", "cluster", "server"]
RANK = {name: i for i, name in enumerate(LAYERS)}

# Where each layer's public headers live; its private files are the rest of
# its folder. The server has no public headers.
PUBLIC_DIRS = [
    ("io/include", "io"),
    ("engine/core/include", "core"),
    ("engine/remote/include", "remote"),
    ("engine/cluster/include", "cluster"),
]
PRIVATE_DIRS = [
    ("io", "io"),
    ("engine/core", "core"),
    ("engine/remote", "remote"),
    ("engine/cluster", "cluster"),
    ("engine/server", "server"),
]
# Where an include is looked for after the including file's own folder:
# the public include folders, then engine/ (private headers are named by
# their layer path, "core/shard.hpp"), then io/ and the root, so that a
# private header reached by any path is still recognised.
SEARCH = [d for d, _ in PUBLIC_DIRS] + ["engine", "io", "."]
SOURCE_SUFFIXES = (".hpp", ".h", ".hh", ".ipp", ".cpp", ".cc", ".cxx")
SCANNED = ["io", "engine", "actors"]
# A private header named by its layer path, even when there is no such file.
PRIVATE_PREFIX = re.compile(r"^(core|remote|cluster|server)/")
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*([<"])([^>"\n]+)[>"]', re.M)


def usage(message):
    print(f"check-layers: {message}", file=sys.stderr)
    print("usage: scripts/check-layers.sh [ROOT]", file=sys.stderr)
    sys.exit(2)


def strip_comments(text):
    """The text with comments and string literals blanked, newlines kept, so
    that an #include in a comment does not count and line numbers hold."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        two = text[i:i + 2]
        if two == "//":
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif two == "/*":
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "R" and text.startswith('R"', i) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'R"([^()\\ \n]{0,16})\(', text[i:])
            if not m:
                out.append(c)
                i += 1
                continue
            end = text.find(")" + m.group(1) + '"', i + m.end())
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or (c == "'" and not (i > 0 and text[i - 1].isalnum())):
            # A string or character literal; a ' after a digit or letter is a
            # digit separator (1'000) or part of a prefix, not a literal.
            # An #include's "name" is read before this runs, from the line.
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def includes(text):
    """(line, delimiter, name) for each #include outside comments."""
    found = []
    code = strip_comments(text)
    code_lines = code.split("\n")
    for lineno, line in enumerate(text.split("\n"), 1):
        m = INCLUDE.match(line)
        if not m:
            continue
        # The directive itself must be code: blanking leaves '#' in place
        # for a real directive and blanks it inside a comment.
        stripped = code_lines[lineno - 1] if lineno - 1 < len(code_lines) else ""
        if "#" not in stripped:
            continue
        found.append((lineno, m.group(1), m.group(2).strip()))
    return found


def under(path, folder):
    return folder == "." or path == folder or path.startswith(folder + "/")


def classify(path):
    """(layer, kind) of a file of the tree: kind is 'public', 'private' or
    'actors'; (None, None) for a file outside the layers (tests, perf)."""
    for folder, layer in PUBLIC_DIRS:
        if under(path, folder):
            return layer, "public"
    for folder, layer in PRIVATE_DIRS:
        if under(path, folder):
            return layer, "private"
    if under(path, "actors"):
        return None, "actors"
    return None, None


def main():
    args = sys.argv[1:]
    if len(args) > 1 or (args and args[0].startswith("-")):
        usage("expected at most one argument, the repository root")
    root = os.path.abspath(args[0] if args else ".")
    if not os.path.isdir(os.path.join(root, "engine")) or not os.path.isdir(os.path.join(root, "io")):
        usage(f"{root} has no engine/ and io/: run it from the repository root")

    files = []
    for top in SCANNED:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, top)):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for f in sorted(filenames):
                if f.endswith(SOURCE_SUFFIXES):
                    files.append(os.path.relpath(os.path.join(dirpath, f), root))
    present = set(files)

    def resolve(includer, delim, name):
        """The tree file an include names, or None (a system header)."""
        candidates = []
        if delim == '"':
            candidates.append(os.path.dirname(includer))
        candidates += SEARCH
        for d in candidates:
            p = os.path.normpath(os.path.join(d, name))
            if p in present:
                return p
        return None

    violations = []
    graph = {}  # file -> [(line, included file)] within engine/ and io/
    n_includes = 0
    for path in files:
        try:
            with open(os.path.join(root, path), encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError as e:
            violations.append((path, 0, f"cannot be read: {e.strerror}"))
            continue
        layer, kind = classify(path)
        for line, delim, name in includes(text):
            n_includes += 1
            target = resolve(path, delim, name)
            if target is not None:
                t_layer, t_kind = classify(target)
            elif PRIVATE_PREFIX.match(name):
                t_layer, t_kind = PRIVATE_PREFIX.match(name).group(1), "private"
            elif name.startswith("troupe/internal/"):
                t_layer, t_kind = "core", "public"
            else:
                continue  # a system or third-party header, or a missing one
            missing = "" if target is not None else " (no such file in the tree)"
            shown = f"{delim}{name}{'>' if delim == '<' else delim}"
            where = f"{t_kind} header of {t_layer}" if t_layer else "file of actors/"

            def fail(reason):
                violations.append((path, line, f"{reason}{missing}"))

            # 1. Arrows point one way.
            if layer and t_layer and RANK[t_layer] > RANK[layer]:
                fail(f"{layer} includes {shown}, a {where}: a higher layer")
            # 2. The server sees the other layers through public headers.
            if layer == "server" and t_kind == "private" and t_layer != "server":
                fail(f"server includes {shown}, a {where}: the server uses the other layers "
                     "through their public headers only")
            # 3. Modules see the public API only.
            if kind == "actors":
                if name.startswith("troupe/internal/") or (target or "").startswith(
                        "engine/core/include/troupe/internal/"):
                    fail(f"actors/ includes {shown}: modules may not include troupe/internal/")
                elif t_kind == "private":
                    fail(f"actors/ includes {shown}, a {where}: modules include public headers only")
            # 4. What is public includes only what is public.
            if kind == "public" and t_kind == "private":
                fail(f"public header includes {shown}, a {where}: a public header may "
                     "include public headers only")
            in_graph = lambda p: under(p, "engine") or under(p, "io")
            if target is not None and in_graph(path) and in_graph(target):
                graph.setdefault(path, []).append((line, target))

    # 5. Cycles: the strongly connected components of the include graph
    # (Tarjan's algorithm, iterative), then one shortest cycle through each
    # file of a component until every file of it has been named.
    index, low, on_stack, stack, comps = {}, {}, set(), [], []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            edges = graph.get(v, [])
            if i < len(edges):
                work.append((v, i + 1))
                w = edges[i][1]
                if w not in index:
                    work.append((w, 0))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                comps.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])

    def shortest_cycle(v, members):
        """Files of a shortest cycle from v back to v inside members."""
        prev = {v: None}
        queue = deque([v])
        while queue:
            u = queue.popleft()
            for _, w in graph.get(u, []):
                if w == v:
                    path = [u]
                    while prev[path[-1]] is not None:
                        path.append(prev[path[-1]])
                    return list(reversed(path))
                if w in members and w not in prev:
                    prev[w] = u
                    queue.append(w)
        return [v]

    n_cycles = 0
    for comp in comps:
        members = set(comp)
        self_loop = any(w == comp[0] for _, w in graph.get(comp[0], []))
        if len(comp) == 1 and not self_loop:
            continue
        named = set()
        for v in sorted(comp):
            if v in named:
                continue
            cycle = shortest_cycle(v, members)
            named.update(cycle)
            n_cycles += 1
            # Reported at the include that closes the cycle back to its first file.
            last = cycle[-1]
            line = next(l for l, w in graph[last] if w == cycle[0])
            ring = " -> ".join(cycle + [cycle[0]])
            violations.append((last, line, f"include cycle: {ring}"))

    for path, line, reason in sorted(set(violations)):
        print(f"{path}:{line}: {reason}")
    layers = " ← ".join(LAYERS)
    if violations:
        print(f"check-layers: {len(set(violations))} violations in {len(files)} files "
              f"(layers: {layers})", file=sys.stderr)
        sys.exit(1)
    print(f"check-layers: {len(files)} files, {n_includes} includes: the layers point one way "
          f"({layers}), no include cycles")


main()
PY
