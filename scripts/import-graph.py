#!/usr/bin/env python3
"""The import graph of a crate's source files: which file names which, the circles, and the big files.

    ./scripts/import-graph.py [src] [--max-lines 700] [--modules] [--check]

Reads every `.rs` file under the crate's source folder (default `src`), expands its `use crate::…` and
`use super::…` statements (braces included) and its inline `crate::a::b` paths, and resolves each to the
file that defines the module it names (`a/b.rs` or `a/b/mod.rs`, else the nearest parent). A `mod.rs`
declaring or re-exporting (`pub use`) its own child is not an arrow; one using a child's items is, and so
is a child reaching up to its `mod.rs`.

Prints the strongly connected components of more than one file (import circles), the files over
`--max-lines`, and with `--modules` the arrows between top-level modules. `--check` exits 1 when there is
a circle or a file over the limit, so CI can hold the layout (docs/ARCHITECTURE.md).
"""

import argparse
import re
import sys
from pathlib import Path

USE = re.compile(r"(\bpub(?:\([a-z]+\))?\s+)?\buse\s+((?:crate|super|self)(?:::[^;]*?)?);", re.S)
INLINE = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'"(?:\\.|[^"\\])*"')


def expand(tree):
    """`a::{b, c::{d, e}}` into `a::b`, `a::c::d`, `a::c::e` (as lists of segments)."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    depth, start = 0, None
    for i, ch in enumerate(tree):
        if ch == "{":
            if depth == 0:
                start = i
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                prefix, inner = tree[:start].rstrip(":"), tree[start + 1:i]
                parts, level, last = [], 0, 0
                for j, c in enumerate(inner):
                    level += c == "{"
                    level -= c == "}"
                    if c == "," and level == 0:
                        parts.append(inner[last:j])
                        last = j + 1
                parts.append(inner[last:])
                out = []
                for part in filter(None, parts):
                    for sub in expand(part):
                        out.append(prefix.split("::") + ([] if sub == ["self"] else sub))
                return out
    return [tree.split("::")]


def module_of(path, root):
    """The module path (segments) a file defines."""
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return parts


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("src", nargs="?", default="src")
    parser.add_argument("--max-lines", type=int, default=700)
    parser.add_argument("--modules", action="store_true")
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    root = Path(args.src)
    files = sorted(p for p in root.rglob("*.rs"))
    by_module = {tuple(module_of(p, root)): p for p in files if p.name != "main.rs"}

    def resolve(segments):
        for n in range(len(segments), -1, -1):
            if tuple(segments[:n]) in by_module:
                return by_module[tuple(segments[:n])]
        return None

    # What each `mod.rs` re-exports from its children (`pub use child::{A, B}`): an import of `a::A`
    # is an arrow to the child that defines `A`.
    reexports = {}
    for path in files:
        if path.name not in ("mod.rs", "lib.rs"):
            continue
        here = tuple(module_of(path, root))
        for m in re.finditer(r"\bpub(?:\([a-z]+\))?\s+use\s+(\w+)::(\{[^;]*\}|\w+)(?:\s+as\s+\w+)?;", path.read_text()):
            child = here + (m.group(1),)
            if child in by_module:
                for name in re.findall(r"\w+", m.group(2)):
                    reexports[here + (name,)] = by_module[child]

    edges = {p: set() for p in files}
    for path in files:
        text = STRING.sub('""', COMMENT.sub("", path.read_text()))
        # Tests may reach anything; the layout is about the code that ships.
        text = text.split("#[cfg(test)]")[0]
        here = module_of(path, root)
        # `super` is one level up from the module the file defines, whether it is `a/b.rs` or `a/b/mod.rs`.
        found = [(bool(m.group(1)), seg) for m in USE.finditer(text) for seg in expand(m.group(2))]
        text = USE.sub("", text)
        found += [(False, [m.group(1)] + m.group(2).strip(":").split("::")) for m in INLINE.finditer(text)]
        text = re.sub(r"\b(pub(\([a-z]+\))?\s+)?use\s+[^;]*;", "", text)
        if path.name in ("mod.rs", "lib.rs"):
            # A parent names its children without a prefix: `auth::login` in a routing table.
            children = [m[-1] for m in by_module if len(m) == len(here) + 1 and list(m[:-1]) == here]
            for child in children:
                if re.search(rf"(?<![:\w]){child}::\w", text):
                    found.append((False, ["self", child]))
        for reexport, segments in found:
            segments = [s for s in segments if s]
            if not segments:
                continue
            if segments[0] == "crate":
                target = segments[1:]
            else:
                base = list(here)
                while segments and segments[0] in ("super", "self"):
                    if segments.pop(0) == "super":
                        base = base[:-1]
                target = base + segments
            dest = None
            for n in range(len(target), 0, -1):
                if tuple(target[:n]) in reexports:
                    dest = reexports[tuple(target[:n])]
                    break
                if tuple(target[:n]) in by_module:
                    break
            dest = dest or resolve(target)
            if dest is None or dest == path:
                continue
            # A parent re-exporting its own child is structure, not an import arrow; a parent that uses a
            # child's items (a routing table naming handlers) does depend on it.
            if reexport and path.name in ("mod.rs", "lib.rs") and module_of(dest, root)[:-1] == here:
                continue
            edges[path].add(dest)

    # Tarjan's strongly connected components.
    index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in files:
        if v not in index:
            visit(v)
    circles = [sorted(str(p.relative_to(root)) for p in c) for c in comps if len(c) > 1]
    big = [(len(p.read_text().splitlines()), str(p.relative_to(root))) for p in files]
    big = sorted((n, p) for n, p in big if n > args.max_lines)

    print(f"{root}: {len(files)} files, {sum(len(e) for e in edges.values())} file-to-file imports")
    print(f"import circles: {len(circles)}")
    for circle in circles:
        print(f"  {len(circle)} files: {', '.join(circle)}")
    print(f"files over {args.max_lines} lines: {len(big)}")
    for n, p in big:
        print(f"  {n:5} {p}")
    if args.modules:
        top = {}
        for src, dests in edges.items():
            a = (module_of(src, root) or ["(root)"])[0]
            for dest in dests:
                b = (module_of(dest, root) or ["(root)"])[0]
                if a != b:
                    top.setdefault(a, set()).add(b)
        print("top-level module arrows:")
        for a in sorted(top):
            print(f"  {a} -> {', '.join(sorted(top[a]))}")
    if args.check and (circles or big):
        sys.exit(1)


if __name__ == "__main__":
    main()
