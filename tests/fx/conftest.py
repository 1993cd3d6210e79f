"""The module's store (its ``root`` fixture) opened once for all of its tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from queries import MetricStore


@pytest.fixture(scope="module")
def ms(root: Path) -> Iterator[MetricStore]:
    m = MetricStore(root)
    yield m
    m.close()
