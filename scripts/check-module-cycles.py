#!/usr/bin/env python3
"""Fails when the modules of a workspace crate import each other in a circle.

A module is one source file. An edge A -> B is a path `crate::...` or `super::...` in A (in a
`use`, inline, or in a doc comment's link) that names B or an item of B, or a call
`self.f(..)`/`engine.f(..)` of a method that only B defines (a type's `impl` blocks may be
spread over modules); items re-exported with `pub use` are followed to the module defining
them, and `mod` declarations are not imports.
The same check runs a second time on the crate's top-level parts (a folder of `src/` with its
`x.rs`, or a file directly in `src/`): the parts must import each other one way too. Prints
every circle found (the strongly connected components of more than one node) and exits 1 if
there is any.

    python3 scripts/check-module-cycles.py [crate_dir ...]   # default: every workspace crate
"""
import os
import re
import sys

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"


def strip_comments(text):
    # Unit tests (a `#[cfg(test)] mod tests` block, last in its file) are not the module's
    # imports.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests\b", text)[0]
    # A doc link names a module as much as an import does: keep the paths of `[...]` links in
    # doc comments, drop the rest of every comment.
    links = " ".join(
        " ".join(re.findall(r"\[`?((?:crate|super|self)(?:::%s)+)" % IDENT, line))
        for line in re.findall(r"//[/!][^\n]*", text)
    )
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(\\.|[^"\\])*"', '""', text) + "\n" + links


def module_files(src):
    out = {}
    for root, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, f), src)[:-3].split(os.sep)
            if rel[-1] == "mod":
                rel = rel[:-1]
            if rel in (["lib"], ["main"]):
                rel = []
            out[tuple(rel)] = os.path.join(root, f)
    return out


def expand_use(tree):
    """`a::{b::C, d}` -> [a::b::C, a::d] (nested braces allowed)."""
    tree = tree.replace(" ", "").replace("\n", "")
    depth, start = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1 : i], tree[i + 1 :]
                parts, d, cur = [], 0, ""
                for ch in inner:
                    if ch == "," and d == 0:
                        parts.append(cur)
                        cur = ""
                        continue
                    d += ch == "{"
                    d -= ch == "}"
                    cur += ch
                parts.append(cur)
                out = []
                for p in parts:
                    if p and p != "self":
                        out.extend(expand_use(prefix + p + rest))
                    elif p == "self":
                        out.append(prefix.rstrip(":"))
                return out
    return [re.sub(r"\bas\b.*$", "", tree)]


def absolute(path, module):
    segs = path.split("::")
    if segs[0] == "crate":
        return segs[1:]
    base = list(module)
    while segs and segs[0] in ("super", "self"):
        if segs.pop(0) == "super":
            base = base[:-1]
    return base + segs


def check(crate_dir):
    src = os.path.join(crate_dir, "src")
    modules = module_files(src)
    texts = {m: strip_comments(open(f).read()) for m, f in modules.items()}
    uses = {}
    reexports = {}
    for m, text in texts.items():
        paths = []
        for stmt in re.finditer(r"\b(pub(\([a-z]+\))?\s+)?use\s+([^;]+);", text):
            for p in expand_use(stmt.group(3)):
                if p.startswith(("crate::", "super::", "self::")) or (
                    stmt.group(1) and p.split("::")[0] in {k[-1] for k in modules if k and k[:-1] == m}
                ):
                    full = absolute(p if p.startswith(("crate", "super", "self")) else "self::" + p, m)
                    if stmt.group(1):
                        reexports[tuple(m) + (full[-1],)] = full
                    paths.append(full)
        for inline in re.finditer(r"\b((?:crate|super)(?:::%s)+)" % IDENT, text):
            paths.append(absolute(inline.group(1), m))
        uses[m] = paths

    def resolve(path, seen=0):
        for n in range(len(path), -1, -1):
            if tuple(path[:n]) in modules:
                head = tuple(path[:n])
                if n < len(path) and head + (path[n],) in reexports and seen < 10:
                    return resolve(reexports[head + (path[n],)] + path[n + 1 :], seen + 1)
                return head
        return None

    edges = {m: set() for m in modules}
    for m, paths in uses.items():
        for p in paths:
            target = resolve(p)
            if target is not None and target != m and target != ():
                edges[m].add(target)
    # A type's methods may be defined in many modules (`impl CohortEngine` blocks): a call
    # `self.f(...)` or `engine.f(...)` of a method defined in one module only is an import of
    # that module too.
    defined = {}
    for m, text in texts.items():
        # Inherent impls only: a trait's methods are the trait's, wherever implemented.
        for block in re.finditer(r"\bimpl(?:<[^>]*>)?\s+%s(?:<[^>]*>)?\s*\{" % IDENT, text):
            depth, i = 1, block.end()
            while depth and i < len(text):
                depth += text[i] == "{"
                depth -= text[i] == "}"
                i += 1
            for fn in re.finditer(r"\bfn\s+(%s)" % IDENT, text[block.end() : i]):
                defined.setdefault(fn.group(1), set()).add(m)
    for m, text in texts.items():
        for call in re.finditer(r"\b(?:self|engine)\s*\.\s*(%s)\s*\(" % IDENT, text):
            owners = defined.get(call.group(1), set())
            if len(owners) == 1 and m not in owners and () not in owners:
                edges[m].add(next(iter(owners)))

    name = lambda m: "::".join(m) or "lib"
    ok = True
    for comp in circles(edges):
        ok = False
        members = sorted(comp)
        print(f"{crate_dir}: circle among modules {', '.join(name(m) for m in members)}")
        for a in members:
            for b in sorted(edges[a] & set(comp)):
                print(f"    {name(a)} -> {name(b)}")
    # The top-level parts: a module belongs to the first segment of its path.
    parts = {m[:1] for m in modules if m}
    part_edges = {p: set() for p in parts}
    why = {}
    for a, targets in edges.items():
        for b in targets:
            if a and b and a[:1] != b[:1]:
                part_edges[a[:1]].add(b[:1])
                why.setdefault((a[:1], b[:1]), (a, b))
    for comp in circles(part_edges):
        ok = False
        members = sorted(comp)
        print(f"{crate_dir}: circle among parts {', '.join(name(m) for m in members)}")
        for a in members:
            for b in sorted(part_edges[a] & set(comp)):
                x, y = why[(a, b)]
                print(f"    {name(a)} -> {name(b)}   (e.g. {name(x)} -> {name(y)})")
    return ok


def circles(edges):
    """The strongly connected components of more than one node (Tarjan)."""
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
            if len(comp) > 1:
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            visit(v)
    return comps


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = sys.argv[1:] or [
        os.path.join(root, d)
        for d in sorted(os.listdir(root))
        if os.path.isfile(os.path.join(root, d, "Cargo.toml")) and os.path.isdir(os.path.join(root, d, "src"))
    ]
    ok = all([check(c) for c in crates])
    if not ok:
        sys.exit("module circles found (each module must import the others one way)")
    print("modules ok: no circles")


if __name__ == "__main__":
    main()
