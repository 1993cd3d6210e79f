"""The modules of ``store/`` depend one way: no import cycle between any two of them (an import
inside a function counts; one under ``if TYPE_CHECKING:`` does not, it never runs)."""

from __future__ import annotations

import ast
from pathlib import Path

STORE = Path(__file__).resolve().parents[2] / "store"


def _imports(path: Path) -> set[str]:
    """The ``store`` modules a module imports (``store.x``, ``from store import x``)."""
    tree = ast.parse(path.read_text())
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped |= {id(n) for child in node.body for n in ast.walk(child)}
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("store.")}
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "store":
                out |= {f"store.{a.name}" for a in node.names if (STORE / f"{a.name}.py").exists()}
            elif node.module.startswith("store."):
                out.add(node.module)
    return out


def test_no_import_cycle_between_store_modules() -> None:
    graph = {f"store.{p.stem}": _imports(p) for p in STORE.glob("*.py") if p.stem != "__init__"}
    state: dict[str, int] = {}       # 1: on the path, 2: done
    path: list[str] = []

    def visit(mod: str) -> None:
        state[mod] = 1
        path.append(mod)
        for dep in sorted(graph.get(mod, set())):
            if state.get(dep) == 1:
                raise AssertionError("import cycle: " + " -> ".join(path[path.index(dep):] + [dep]))
            if dep not in state:
                visit(dep)
        path.pop()
        state[mod] = 2

    for mod in sorted(graph):
        if mod not in state:
            visit(mod)
    assert "store.log" in graph["store.store"] and "store.store" not in graph["store.compaction"]
