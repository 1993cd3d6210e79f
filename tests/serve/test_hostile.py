"""``metricstore serve`` against hostile clients: every write and escape the sandbox refuses, sent over
the wire; a flood of wrong passwords; more connections than the cap. The server stays up and serves."""

from __future__ import annotations

import socket
import struct
import threading
import time
from pathlib import Path

import psycopg
import pytest

from queries.serve.server import LOGIN_TIMEOUT_S
from tests.conftest import store_files
from tests.reliability.test_sql_sandbox import attempts
from tests.serve.conftest import MAX_CONNECTIONS, PASSWORD, USER, Served

#: statements drivers send that the server accepts and ignores (there is nothing to commit and no
#: setting a client may change): they must change nothing either
IGNORED = {"a transaction", "turn external access back on", "widen allowed directories", "unlock the configuration",
           "reset a setting"}


@pytest.fixture(scope="module")
def outside(served: Served) -> Path:
    """A file beside the store that no query may read."""
    secret = served.store.root.parent / "outside-wire" / "secret.csv"
    secret.parent.mkdir(exist_ok=True)
    secret.write_text("token\nhunter2\n")
    return secret


@pytest.mark.parametrize("protocol", ["extended", "simple"])
def test_every_refused_write_and_escape_over_the_wire(served: Served, outside: Path, protocol: str) -> None:
    before = store_files(served.store.root)
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        cur = conn.cursor() if protocol == "extended" else psycopg.ClientCursor(conn)
        for name, sql in attempts(served.store.root, outside):
            if name in IGNORED:
                cur.execute(sql)
            else:
                with pytest.raises(psycopg.Error) as caught:
                    cur.execute(sql)
                assert caught.value.sqlstate in ("42501", "42000", "22023"), (name, caught.value.sqlstate, caught.value)
                assert "hunter2" not in str(caught.value), name
            # the session goes on, as locked as before
            with pytest.raises(psycopg.Error, match="disabled by configuration|not allowed"):
                cur.execute(f"SELECT * FROM read_csv('{outside}')")
            cur.execute("SELECT count(*) FROM facts")
            assert cur.fetchone() is not None, name
    assert store_files(served.store.root) == before, "the store's files changed"
    assert sorted(p.name for p in outside.parent.iterdir()) == ["secret.csv"], "a file appeared outside"


def test_a_flood_of_wrong_passwords(served: Served) -> None:
    failures: list[str] = []
    attempts_each, threads = 10, MAX_CONNECTIONS

    def guess(i: int) -> None:
        for k in range(attempts_each):
            try:
                psycopg.connect(served.dsn(password=f"guess {i}-{k}")).close()
                failures.append("a wrong password was let in")
            except psycopg.OperationalError as exc:
                if "password authentication failed" not in str(exc) and "too many connections" not in str(exc):
                    failures.append(str(exc))

    started = time.monotonic()
    workers = [threading.Thread(target=guess, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=300)
    assert not failures, failures[:3]
    # the rightful user still gets in at once, and the log names users, never passwords
    with psycopg.connect(served.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM growth").fetchone()[0] > 0  # type: ignore[index]
    time.sleep(0.3)
    log = served.log.read_text()
    assert log.count(f"failed login: user '{USER}'") >= attempts_each, log[-2000:]
    assert "guess " not in log and PASSWORD not in log
    assert served.proc.poll() is None, f"the server died after {time.monotonic() - started:.0f} s"


@pytest.mark.slow     # half a minute: `make test-slow` (CI runs it)
def test_200_connections_past_the_cap_are_refused_cleanly(served: Served) -> None:
    """200 sockets that send a startup message and wait: the cap's worth wait for a password, the
    rest get SQLSTATE 53300 and are closed; the server then serves the next client."""
    startup = b"user\x00" + USER.encode() + b"\x00database\x00metricstore\x00\x00"
    packet = struct.pack("!ii", len(startup) + 8, 196608) + startup
    socks: list[socket.socket] = []
    answers: list[bytes] = []
    started = time.monotonic()
    try:
        for _ in range(200):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=30)
            s.sendall(packet)
            socks.append(s)
        for s in socks:
            answers.append(s.recv(1024))
    finally:
        for s in socks:
            s.close()
    asked = sum(a.startswith(b"R") for a in answers)           # AuthenticationCleartextPassword
    refused = [a for a in answers if a.startswith(b"E")]
    # a socket that has not logged in within the login timeout is closed and gives its slot back
    rounds = 1 + int((time.monotonic() - started) // LOGIN_TIMEOUT_S)
    assert asked <= MAX_CONNECTIONS * rounds and asked + len(refused) == 200, (asked, rounds)
    assert all(b"53300" in a for a in refused)
    time.sleep(1)
    with psycopg.connect(served.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert served.proc.poll() is None
