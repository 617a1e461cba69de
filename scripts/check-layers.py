#!/usr/bin/env python3
"""Checks the layering of src/: modules name only modules of their own layer or below,
and no two files import each other, directly or through others.

Layers, bottom to top (README "Layout"):
  0 clock, engine   the sans-IO engine (and the clock it is handed)
  1 auth, hooks, cluster   token verification, backend calls, the Redis transport; name no dialect
  2 protocol        the client dialects
  3 net             sockets, HTTP, WebSocket, SockJS, the shard state
  4 runtime, config, main, bin   bootstrap, tasks, the mesh; settings

Known debt: the engine's files still import each other (engine/mod.rs declares what
its submodules use, and they implement `Engine`); a loop inside engine/ is reported as
a warning, any other loop, or one that reaches outside engine/, fails.

Every `crate::`, `super::` and `self::` path outside test code counts (use lines and
paths written inline); a path resolves to the deepest module file it names. Test code
(`#[cfg(test)]` items) is left out. Exit status 1 and one line per violation when the
rules are broken.

Usage: scripts/check-layers.py [SRC_DIR]
"""

import os
import re
import sys

LAYERS = {
    "clock": 0,
    "engine": 0,
    "auth": 1,
    "hooks": 1,
    "cluster": 1,
    "protocol": 2,
    "net": 3,
    "runtime": 4,
    "config": 4,
    "main": 4,
    "bin": 4,
    "lib": 4,
}


def strip_literals(text):
    """Blanks out comments, strings and char literals, keeping line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif re.match(r'b?r(#*)"', text[i:i + 40]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + m.end())
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"' or (c == "b" and text.startswith('b"', i) and (i == 0 or not text[i - 1].isalnum())):
            j = i + (2 if c == "b" else 1)
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'])'", text[i:])
            if m:
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def strip_tests(code):
    """Removes every `#[cfg(test)]` item (a block or a `;`-ended line)."""
    while True:
        at = code.find("#[cfg(test)]")
        if at < 0:
            return code
        brace = code.find("{", at)
        semi = code.find(";", at)
        if semi >= 0 and (brace < 0 or semi < brace):
            end = semi + 1
        else:
            depth, j = 0, brace
            while j < len(code):
                if code[j] == "{":
                    depth += 1
                elif code[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            end = j + 1
        code = code[:at] + code[end:]


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']."""
    tree = tree.replace(" ", "").replace("\n", "")
    m = re.match(r"^(.*?)\{(.*)\}$", tree)
    if not m:
        return [tree]
    prefix, inner = m.group(1), m.group(2)
    parts, depth, cur = [], 0, ""
    for ch in inner:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "{"
        depth -= ch == "}"
        cur += ch
    parts.append(cur)
    return [p for part in parts if part for p in expand(prefix + part)]


def module_of(path, src):
    rel = os.path.relpath(path, src)[:-3].split(os.sep)
    if rel[-1] == "mod":
        rel = rel[:-1]
    if rel and rel[0] == "bin":
        return ["bin"] + rel[1:]
    return rel


def check(src):
    """The violations (failing) and warnings (known loops) in the tree at `src`, and
    the number of files read."""
    files = {}
    for root, _, names in os.walk(src):
        for name in names:
            if name.endswith(".rs"):
                path = os.path.join(root, name)
                files[tuple(module_of(path, src))] = path
    if ("bin",) not in files:
        files.pop(("bin",), None)

    def resolve(parts):
        for k in range(len(parts), 0, -1):
            if tuple(parts[:k]) in files:
                return tuple(parts[:k])
        return None

    edges = {m: set() for m in files}
    for mod, path in files.items():
        if mod[0] == "bin":
            continue
        code = strip_tests(strip_literals(open(path, encoding="utf-8").read()))
        # The module itself: `self::` names it, `super::` its parent.
        here = [] if mod in (("lib",), ("main",)) else list(mod)
        paths = []
        for use in re.findall(r"\buse\s+([^;]+);", code):
            paths += expand(use)
        paths += re.findall(r"(?<![\w:])((?:crate|super|self)(?:::\w+)+)", code)
        # Paths that start with a child module's name (`talker::Talker` in protocol).
        children = {m[-1] for m in files if len(m) == len(here) + 1 and list(m[:-1]) == here}
        for child in children:
            paths += ["self::" + p for p in re.findall(r"(?<![\w:])(%s(?:::\w+)+)" % child, code)]
        for p in paths:
            parts = [x for x in re.split(r"::", p.split(" as ")[0]) if x]
            if not parts:
                continue
            if parts[0] == "crate":
                target = parts[1:]
            elif parts[0] in ("super", "self"):
                base = list(here)
                while parts and parts[0] in ("super", "self"):
                    if parts[0] == "super":
                        base = base[:-1]
                    parts = parts[1:]
                target = base + parts
            else:
                continue
            t = resolve(target)
            if t and t != mod:
                edges[mod].add(t)

    problems = []
    for mod, targets in sorted(edges.items()):
        for t in sorted(targets):
            if LAYERS.get(t[0], 4) > LAYERS.get(mod[0], 4):
                problems.append(f"layer: {'::'.join(mod)} names {'::'.join(t)}, a layer above it")
    # Cycles: strongly connected components of more than one file.
    index, low, stack, on, sccs = {}, {}, [], set(), []
    counter = [0]

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
                sccs.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    warnings = []
    for comp in sccs:
        names = sorted("::".join(c) for c in comp)
        line = "import loop: " + ", ".join(names)
        (warnings if all(c[0] == "engine" for c in comp) else problems).append(line)
    return problems, warnings, len(files)


def self_test():
    """The checker must catch what it is for: an upward name, a loop, and a loop hidden
    behind a child-module path; and pass a clean tree."""
    import tempfile

    def tree(layout):
        root = tempfile.mkdtemp()
        for path, text in layout.items():
            os.makedirs(os.path.dirname(os.path.join(root, path)), exist_ok=True)
            with open(os.path.join(root, path), "w", encoding="utf-8") as f:
                f.write(text)
        return root

    base = {"lib.rs": "pub mod engine;\npub mod net;\n", "engine/mod.rs": "pub struct E;\n",
            "net/mod.rs": "pub mod a;\npub mod b;\n", "net/a.rs": "use crate::engine::E;\n",
            "net/b.rs": "use super::a;\n"}
    clean, _, _ = check(tree(base))
    upward, _, _ = check(tree({**base, "engine/mod.rs": "use crate::net::a;\n"}))
    looped, _, _ = check(tree({**base, "net/a.rs": "use super::b::X;\n"}))
    child, _, _ = check(tree({**base, "net/mod.rs": "pub mod a;\npub mod b;\nfn f() { a::g(); }\n",
                              "net/a.rs": "use super::X;\n"}))
    tested, _, _ = check(tree({**base, "net/a.rs": "#[cfg(test)]\nmod tests { use super::super::b; }\n",
                               "net/b.rs": "use super::a;\n"}))
    assert clean == [] and tested == [], (clean, tested)
    assert any(p.startswith("layer: engine names net::a") for p in upward), upward
    assert looped == ["import loop: net::a, net::b"], looped
    assert child == ["import loop: net, net::a"], child


def main():
    self_test()
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "src")
    problems, warnings, count = check(os.path.normpath(src))
    for w in warnings:
        print("warning (known, engine/ only): " + w)
    for p in problems:
        print(p)
    if problems:
        sys.exit(1)
    print(f"layers: {count} files, no upward names, no import loops outside engine/")


if __name__ == "__main__":
    main()
