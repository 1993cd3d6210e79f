"""A real ``metricstore serve`` process on 127.0.0.1 over a store built from data/seed."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ingest import Catalog, ingest_paths
from store import Store
from tests.conftest import CATALOG, ROOT

pytest.importorskip("buenavista", reason="the serve extra is not installed (pip install '.[serve]')")
pytest.importorskip("psycopg", reason="the serve extra is not installed (pip install '.[serve]')")

from queries.serve import hash_password  # noqa: E402

USER, PASSWORD = "analyst", "correct horse battery"
TIMEOUT_S = 2.0
MAX_CONNECTIONS = 6


@dataclass
class Served:
    store: Store
    port: int
    proc: subprocess.Popen[str]
    log: Path

    def dsn(self, *, database: str = "metricstore", user: str = USER, password: str = PASSWORD) -> str:
        return (f"host=127.0.0.1 port={self.port} dbname={database} user={user} password='{password}' "
                "sslmode=disable connect_timeout=10")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_listening(port: int, proc: subprocess.Popen[str], log: Path, deadline_s: float = 60) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"serve exited {proc.returncode}: {log.read_text()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"serve did not listen on {port}: {log.read_text()}")


def start(args: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    fh = log.open("w")
    return subprocess.Popen([sys.executable, "-m", "metricstore", "serve", *args], stdout=fh, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT, env={**os.environ, **(env or {})})


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The seed store, served with a users file, a 2 s statement timeout and a cap of 6 sessions."""
    folder = tmp_path_factory.mktemp("serve")
    store = Store.create(folder / "store")
    seed = sorted((ROOT / "data" / "seed").glob("*.csv"))
    ingest_paths(store, list(seed), catalog=Catalog.load(CATALOG))
    users = folder / "users"
    users.write_text(f"# who may connect\n{USER}:{hash_password(PASSWORD)}\n")
    port = free_port()
    log = folder / "serve.log"
    proc = start(["--store", str(store.root), "--port", str(port), "--users", str(users),
                  "--timeout", str(TIMEOUT_S), "--max-connections", str(MAX_CONNECTIONS)], log)
    try:
        wait_listening(port, proc, log)
        yield Served(store, port, proc, log)
    finally:
        stop(proc)
