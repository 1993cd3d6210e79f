"""The packages type-check: ``mypy --strict`` (configured in pyproject.toml) reports no error."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (it is in the `test` extra: pip install -e '.[test]')")
def test_mypy_strict_passes() -> None:
    # the settings (strict, the packages, the untyped libraries) are pyproject.toml's [tool.mypy];
    # .mypy_cache (git-ignored) keeps a run after the first one quick
    run = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, f"mypy found errors:\n{run.stdout}{run.stderr}"
