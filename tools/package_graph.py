"""Print the package graph: which top-level package imports which, and every pair of packages
(top-level or one level down) that import each other. Uses grimp, which import-linter installs.

    .venv/bin/python tools/package_graph.py
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = ("app", "sandbox", "handlers", "bot", "storage", "integrations")


def unit(module: str, depth: int) -> str:
    return ".".join(module.split(".")[:depth])


def edges(graph: grimp.ImportGraph, depth: int) -> Counter[tuple[str, str]]:
    out: Counter[tuple[str, str]] = Counter()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            a, b = unit(importer, depth), unit(imported, depth)
            if a != b:
                out[a, b] += 1
    return out


def main() -> int:
    sys.path.insert(0, str(ROOT))
    packages = [p for p in CANDIDATES if (ROOT / p / "__init__.py").exists()]
    graph = grimp.build_graph(*packages, cache_dir=None)
    top = edges(graph, 1)
    print("package -> package (direct imports)")
    for (a, b), n in sorted(top.items(), key=lambda kv: (packages.index(kv[0][0]), kv[0][1])):
        print(f"  {a:<13} -> {b:<13} {n:>4}")
    both = []
    for depth in (1, 2):
        pairs = edges(graph, depth)
        both += sorted({tuple(sorted(pair)) for pair in pairs if pair[::-1] in pairs})
    print(f"packages that import each other (cycles, top level and one level down): {len(both)}")
    for a, b in both:
        print(f"  {a} <-> {b}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
