#!/usr/bin/env python3
"""Licence gate: everything we ship must be under a permissive licence.

Walks `cargo metadata` from the workspace members through normal and build
dependencies (dev-dependencies are not shipped: `mikrotik-rs`, AGPL, may be one)
and fails, naming the crate, its version and its licence, when a crate's SPDX
expression cannot be satisfied with the licences below.
"""

import json
import re
import subprocess
import sys

PERMISSIVE = {
    "0BSD",
    "Apache-2.0",
    "Apache-2.0 WITH LLVM-exception",
    "BSD-2-Clause",
    "BSD-3-Clause",
    "BSL-1.0",
    "CC0-1.0",
    "CDLA-Permissive-2.0",
    "ISC",
    "MIT",
    "MIT-0",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "Zlib",
}


def tokens(expr):
    # Old crates write "MIT/Apache-2.0" for "MIT OR Apache-2.0".
    expr = expr.replace("/", " OR ")
    return re.findall(r"\(|\)|[^\s()]+", expr)


def satisfiable(expr):
    """True if the SPDX expression can be met with PERMISSIVE licences only."""
    toks = tokens(expr)
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def atom():
        if peek() == "(":
            take()
            ok = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced parentheses in {expr!r}")
            return ok
        name = take()
        if peek() == "WITH":
            take()
            name = f"{name} WITH {take()}"
        return name in PERMISSIVE

    def conjunction():
        ok = atom()
        while peek() == "AND":
            take()
            ok = atom() and ok
        return ok

    def disjunction():
        ok = conjunction()
        while peek() == "OR":
            take()
            ok = conjunction() or ok
        return ok

    ok = disjunction()
    if pos != len(toks):
        raise ValueError(f"cannot parse licence expression {expr!r}")
    return ok


def main():
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--all-features", "--locked"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    packages = {p["id"]: p for p in meta["packages"]}
    nodes = {n["id"]: n for n in meta["resolve"]["nodes"]}
    shipped, stack = set(), list(meta["workspace_members"])
    while stack:
        pkg = stack.pop()
        if pkg in shipped:
            continue
        shipped.add(pkg)
        for dep in nodes[pkg]["deps"]:
            if any(k["kind"] != "dev" for k in dep["dep_kinds"]):
                stack.append(dep["pkg"])
    bad = []
    for pkg in sorted(shipped, key=lambda i: packages[i]["name"]):
        p = packages[pkg]
        licence = p.get("license")
        try:
            ok = licence is not None and satisfiable(licence)
        except (ValueError, IndexError) as e:
            ok, licence = False, f"{licence} ({e})"
        if not ok:
            bad.append(f"{p['name']} {p['version']}: licence {licence or 'not declared'}")
    if bad:
        print("crates we ship without a permissive licence:", *bad, sep="\n  ")
        return 1
    print(f"licences: {len(shipped)} shipped crates, all permissive")
    return 0


if __name__ == "__main__":
    sys.exit(main())
