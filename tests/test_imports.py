"""No import cycle between the modules of ``store``, ``ingest``, ``queries`` and ``metricstore``.

What counts as an import: every ``import`` and ``from ... import`` statement in a module, wherever it
stands: at module level, inside a function (an import deferred to call time is the usual way a cycle
is hidden, not removed) and under ``if TYPE_CHECKING:`` (a type-only import is still a dependency:
the module cannot be read, checked or changed without the other). ``from pkg import name`` is an edge
to the module ``pkg.name`` when that is a module of ours, else to ``pkg`` (its ``__init__``). The
parent packages that Python imports on the way (``store/__init__.py`` for ``store.log``) are not
edges: only the module a statement names is.

A cycle is a strongly connected component of that graph with more than one module (or a module that
imports itself); the test names every one, each with one path around it.

Also: importing the command line (and every package of ours) imports no pandas, and a command
that only reads the store starts without the write side.
"""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("store", "ingest", "queries", "metricstore")


def modules() -> dict[str, Path]:
    """Every module of the four packages, by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def imported(name: str, path: Path, known: dict[str, Path]) -> Iterator[str]:
    """The modules of ours that ``name`` (at ``path``) imports, each once per statement."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in known:
                    yield alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from . import x, from ..y import z
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                if f"{target}.{alias.name}" in known:
                    yield f"{target}.{alias.name}"
                elif target in known:
                    yield target


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: set(imported(name, path, known)) for name, path in known.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with a cycle in them (Tarjan), each sorted, smallest first."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found, key=lambda c: (len(c), c))


def loop(component: list[str], edges: dict[str, set[str]]) -> list[str]:
    """One path around a cycle, from its first module back to it (breadth first, inside the component)."""
    start, inside = component[0], set(component)
    paths = {w: [start, w] for w in sorted(edges[start] & inside)}
    queue = list(paths)
    while start not in paths:
        v = queue.pop(0)
        for w in sorted(edges[v] & inside):
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return paths[start]


def test_no_import_cycle_between_modules() -> None:
    edges = graph()
    found = cycles(edges)
    report = "\n".join(f"- {len(c)} modules: {', '.join(c)}; e.g. {' -> '.join(loop(c, edges))}" for c in found)
    assert not found, f"{len(found)} import cycle(s):\n{report}"


def test_the_cycle_finder_finds_cycles() -> None:
    """The finder itself: a two-module cycle, a three-module one, a self-import, and a tree with none."""
    edges = {"a": {"b"}, "b": {"a", "c"}, "c": set(), "d": {"e"}, "e": {"f"}, "f": {"d"}, "g": {"g"}, "h": {"c"}}
    assert cycles(edges) == [["g"], ["a", "b"], ["d", "e", "f"]]
    assert loop(["d", "e", "f"], edges) == ["d", "e", "f", "d"]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []


def test_a_command_does_not_import_pandas() -> None:
    """pandas takes a third of a second to import and no command of ours uses it; pyarrow imports it,
    where it is installed, the first time ``pa.array`` is given a Python object (a module-level
    constant once made every ``metricstore`` command pay for it)."""
    if importlib.util.find_spec("pandas") is None:
        pytest.skip("pandas is not installed here: nothing could import it")
    code = "import sys, metricstore.cli, queries, ingest, store; ingest.READERS; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_a_read_command_starts_without_the_write_side() -> None:
    """Loading ``ingest`` whole (its readers, HTTP client, scheduler) took a quarter of every
    command's start; a read needs only its settings. The package loads its public names on first
    use, with every built-in reader, and a lookup of formats loads the readers without it."""
    code = ("import sys; from metricstore.options import settings; import metricstore.cli, queries; settings(None); "
            "print(' '.join(m for m in sys.modules if m.startswith('ingest')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    loaded = set(done.stdout.split())
    assert "ingest.config" in loaded
    assert not loaded & {"ingest.readers", "ingest.pipeline", "ingest.canonical", "ingest.scheduler", "ingest.http"}
    shipped = "['csv', 'ecb', 'json', 'mapped', 'parquet', 'sec-companyfacts', 'sec-fsds']"
    for code in ("import ingest; print(sorted(ingest.READERS))",
                 "from ingest.readers import formats; print(sorted(formats()))"):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == shipped, code
