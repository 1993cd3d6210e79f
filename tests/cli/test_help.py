"""Every command and command group of ``metricstore`` has help text, and the areas stay apart."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.core import TyperGroup, TyperOption
from typer.testing import CliRunner

from metricstore.cli import app
from tests.conftest import ROOT


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
            "compact", "ddl", "schedule run", "schedule list", "jobs run", "jobs runs", "demo"} <= set(PATHS)


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
    for module in sorted((ROOT / "metricstore" / "commands").glob("*.py")):
        imported = {n.module for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(ast.parse(module.read_text())) if isinstance(n, ast.Import)
                     for a in n.names}
        bad = {m for m in imported if m and (m == "metricstore.cli" or m.startswith("metricstore.commands"))}
        assert not bad, f"{Path(module).name} imports {bad}"
