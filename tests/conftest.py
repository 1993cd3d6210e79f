"""Shared fixtures: real stores in temporary folders, the real CLI in a subprocess."""

from __future__ import annotations

import atexit
import csv
import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ingest import Catalog, RunReport, ingest_paths
from queries import MetricStore
from store import Store

# the views' files the sessions of the tests keep (queries/views_cache.py): in a folder of this run,
# not the user's cache, and removed with it
os.environ["METRICSTORE_CACHE_DIR"] = tempfile.mkdtemp(prefix="metricstore-test-cache-")
atexit.register(shutil.rmtree, os.environ["METRICSTORE_CACHE_DIR"], True)

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
SHARED_DATA = SHARED / "data"
CATALOG = ROOT / "data" / "catalog"

CANONICAL_HEADER = ["entity", "metric", "segment", "dims", "period", "period_start", "period_end", "value", "value_high", "unit",
                    "kind", "qualifier", "reported_at", "source", "source_ref", "note", "authority", "op", "supersedes"]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.create(tmp_path / "store")


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return Catalog.load(CATALOG)


def write_csv(path: Path, rows: list[dict[str, object]], header: list[str] | None = None) -> Path:
    header = header or CANONICAL_HEADER
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    return path


def fact(**kw: object) -> dict[str, object]:
    """A canonical row with sensible defaults."""
    row: dict[str, object] = {"entity": "acme", "metric": "revenue", "period": "FY2024", "value": "100",
                              "unit": "USD m", "reported_at": "2025-02-01", "source": "acme-10k-2024"}
    row.update(kw)
    return row


@pytest.fixture
def ingest_rows(tmp_path: Path, store: Store, catalog: Catalog) -> Callable[..., RunReport]:
    counter = iter(range(10_000))

    def run(rows: list[dict[str, object]], *, skip_invalid: bool = False) -> RunReport:
        path = write_csv(tmp_path / f"batch{next(counter)}.csv", rows)
        return ingest_paths(store, [path], catalog=catalog, skip_invalid=skip_invalid)

    return run


@pytest.fixture
def ms(store: Store) -> MetricStore:
    m = MetricStore(store)
    yield m
    m.close()


def run_cli(*args: str, store: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run ``metricstore ARGS`` as a user would, in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    if store is not None:
        full_env["METRICSTORE_STORE"] = str(store)
    return subprocess.run([sys.executable, "-m", "metricstore", *args], capture_output=True, text=True,
                          env=full_env, cwd=ROOT, timeout=timeout)


def store_files(root: Path) -> dict[str, bytes]:
    """Every file under a store, by relative path, with its bytes (to prove nothing changed)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and "_lock" not in p.parts}


def needs_shared(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not present: {path} (tests on real filings run where ../shared/data exists)")
    return path


@contextmanager
def http_server(handler: type[http.server.BaseHTTPRequestHandler], host: str = "127.0.0.1") -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 (a free port) serving ``handler``; yields its base URL."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
