"""Every command and command group of ``metricstore`` has help text, and the areas stay apart."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from metricstore.cli import app
from tests.test_imports import graph, imported


def walk(command: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command under ``command`` (groups included), with the words that reach it."""
    found = [(path, command)]
    if isinstance(command, TyperGroup):
        for name, sub in sorted(command.commands.items()):
            found += walk(sub, (*path, name))
    return found


TREE = walk(typer.main.get_command(app))
PATHS = [" ".join(p) for p, _ in TREE if p]


def test_the_tree_holds_every_command() -> None:
    assert {"ingest", "entity", "sql", "series", "catalog", "history", "restatements", "explain", "verify",
            "compact", "ddl", "schedule run", "schedule list", "jobs run", "jobs runs", "demo", "serve"} <= set(PATHS)


@pytest.mark.parametrize("path", PATHS)
def test_every_command_has_help_text(path: str) -> None:
    command = dict((" ".join(p), c) for p, c in TREE)[path]
    assert (command.help or "").strip(), f"metricstore {path} has no help text"
    assert (command.short_help or command.help or "").strip()
    r = CliRunner().invoke(app, [*path.split(), "--help"])
    assert r.exit_code == 0 and "Usage" in r.output, r.output
    for param in command.params:
        if isinstance(param, TyperOption) and param.name != "help":
            assert (param.help or "").strip(), f"metricstore {path} {param.opts[0]} has no help text"


def test_command_areas_do_not_import_the_cli_or_each_other() -> None:
    edges = graph()   # tests/test_imports.py's reading: `from metricstore import cli` counts as metricstore.cli
    areas = [m for m in edges if m.startswith("metricstore.commands.")]
    assert "metricstore.commands.lineage" in areas
    for module in areas:
        bad = {m for m in edges[module] if m == "metricstore.cli" or m.startswith("metricstore.commands")}
        assert not bad, f"{module} imports {bad}"


def test_the_area_check_sees_every_spelling_of_an_import(tmp_path: Path) -> None:
    known = {"metricstore.cli": tmp_path, "metricstore.commands": tmp_path, "metricstore.commands.query": tmp_path}
    area = tmp_path / "ops.py"
    area.write_text("from metricstore import cli\nfrom metricstore.commands import query\n"
                    "def f() -> None:\n    import metricstore.cli\n")
    assert set(imported("metricstore.commands.ops", area, known)) == {"metricstore.cli", "metricstore.commands.query"}
