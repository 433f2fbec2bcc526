#!/usr/bin/env python3
"""Cache keys for scripts/clang-tidy.sh: one line "FILE KEY" per translation unit read on stdin.

A unit's key is a SHA-256 of the clang-tidy version and options (argv[4]), the .clang-tidy file,
the unit's compile command (with the repository and build paths left out, so clones share keys)
and the content of every file the unit includes, as the build's depfile (OBJECT.d) lists them. KEY is
"-" (never cached) when the unit has no depfile or the depfile is older than the unit or one of
its includes (edited since the last build: the list of includes may be stale).

Usage: tidy_cache_keys.py REPO BUILD_DIR COMPILE_COMMANDS SALT < files
"""
import hashlib
import json
import os
import shlex
import sys


def main():
    repo, build_dir, db, salt = sys.argv[1:5]
    entries = {}
    with open(db, encoding="utf-8") as f:
        for e in json.load(f):
            path = os.path.normpath(os.path.join(e["directory"], e["file"]))
            entries[os.path.relpath(path, repo)] = e
    with open(os.path.join(repo, ".clang-tidy"), "rb") as f:
        config = hashlib.sha256(f.read()).hexdigest()
    memo = {}

    def content(path):
        if path not in memo:
            try:
                with open(path, "rb") as f:
                    memo[path] = (hashlib.sha256(f.read()).hexdigest(), os.path.getmtime(path))
            except OSError:
                memo[path] = ("missing", float("inf"))
        return memo[path]

    def neutral(text):
        return text.replace(build_dir, "@build").replace(repo, "@repo")

    for unit in sys.stdin.read().split():
        e = entries.get(unit)
        key = "-"
        if e is not None:
            args = e.get("arguments") or shlex.split(e["command"])
            # CMake's generators write the depfile beside the object: OBJECT.d.
            obj = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "-o"), None)
            dep = os.path.join(e["directory"], obj + ".d") if obj else ""
            if dep and os.path.exists(dep):
                with open(dep, encoding="utf-8", errors="replace") as f:
                    text = f.read().replace("\\\n", " ")
                deps = sorted({os.path.normpath(os.path.join(e["directory"], d))
                               for d in text.split(":", 1)[-1].split()})
                deps.append(os.path.join(repo, unit))
                made = os.path.getmtime(dep)
                h = hashlib.sha256()
                h.update(f"{salt}\n{config}\n{neutral(' '.join(args))}\n".encode())
                fresh = True
                for d in deps:
                    digest, mtime = content(d)
                    fresh = fresh and mtime <= made
                    h.update(f"{neutral(d)} {digest}\n".encode())
                if fresh:
                    key = h.hexdigest()
        print(unit, key)


if __name__ == "__main__":
    main()
