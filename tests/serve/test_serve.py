"""``metricstore serve`` with real clients (psycopg 3, psql) against a real server process."""

from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import errors

from ingest import Catalog, ingest_paths
from queries import VIEWS, MetricStore
from queries.serve import verify_password
from store import Store
from tests.conftest import CATALOG, ROOT, fact, run_cli, write_csv
from tests.serve.conftest import MAX_CONNECTIONS, PASSWORD, TIMEOUT_S, USER, Served, free_port, start, stop, wait_listening

SLOW = "SELECT sum(a.range * b.range) FROM range(200000) a, range(200000) b"


def local(served: Served, sql: str, params: list[Any] | None = None, **point: str) -> list[tuple[Any, ...]]:
    with MetricStore(served.store) as ms:
        return ms.sql(sql, params, **point).rows()


def test_every_view_over_the_extended_protocol(served: Served) -> None:
    served_rows: dict[str, int] = {}
    with psycopg.connect(served.dsn()) as conn:
        for view in VIEWS:
            cur = conn.execute(f"SELECT * FROM {view}")
            rows = cur.fetchall()
            assert cur.description is not None
            expected = local(served, f"SELECT * FROM {view}")
            assert len(rows) == len(expected), view
            served_rows[view] = len(rows)
            with MetricStore(served.store) as ms:
                assert [d.name for d in cur.description] == ms.sql(f"SELECT * FROM {view} LIMIT 0").columns
    assert served_rows["facts"] > 0 and served_rows["growth"] > 0, served_rows    # not two empty answers


def test_parameters_are_bound_in_both_protocols(served: Served) -> None:
    sql = "SELECT period, value, fy FROM growth WHERE entity = %s AND metric = %s AND value > %s AND fy >= %s ORDER BY period, value"
    args = ["xiaomi", "revenue", 1.5, 2023]
    expected = local(served, sql.replace("%s", "?"), args)
    assert expected
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        assert conn.execute(sql, args).fetchall() == expected              # Parse/Bind/Execute
        simple = psycopg.ClientCursor(conn)                               # one Query message
        simple.execute(sql, args)
        assert simple.fetchall() == expected
        # a value that would be SQL if it were pasted into the text is only a value
        assert conn.execute("SELECT count(*) FROM facts WHERE entity = %s", ["x' OR '1'='1"]).fetchone() == (0,)


def test_as_of_by_set_and_by_database_name(served: Served) -> None:
    day = "2025-03-18"
    expected = local(served, "SELECT count(*) FROM facts", as_of=day)[0][0]
    now = local(served, "SELECT count(*) FROM facts")[0][0]
    assert 0 < expected < now
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        conn.execute(f"SET as_of = '{day}'")
        assert conn.execute("SELECT count(*) FROM facts").fetchone() == (expected,)
        assert conn.execute("SHOW as_of").fetchone() == (day,)
        conn.execute("RESET as_of")
        assert conn.execute("SELECT count(*) FROM facts").fetchone() == (now,)
        conn.execute("SET as_recorded TO '2000-01-01'")
        assert conn.execute("SELECT count(*) FROM facts").fetchone() == (0,)
        with pytest.raises(psycopg.Error, match="as_of"):
            conn.execute("SET as_of = 'not a date'")
    with psycopg.connect(served.dsn(database=f"asof_{day}")) as conn:
        assert conn.execute("SELECT count(*) FROM facts").fetchone() == (expected,)
    with pytest.raises(psycopg.OperationalError, match="asof_yesterday"):
        psycopg.connect(served.dsn(database="asof_yesterday"))


def test_wrong_password_and_unknown_user_are_refused_and_logged_without_the_password(served: Served) -> None:
    for user, password in ((USER, "wrong password 1"), ("mallory", PASSWORD)):
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(served.dsn(user=user, password=password))
    time.sleep(0.2)
    log = served.log.read_text()
    assert "failed login: user 'mallory'" in log and "failed login: user 'analyst'" in log
    assert "wrong password 1" not in log and PASSWORD not in log


@pytest.mark.parametrize("sql", [
    "CREATE TABLE t AS SELECT 1",
    "INSERT INTO facts SELECT * FROM facts",
    "COPY (SELECT 1) TO 'out.csv'",
    "ATTACH ':memory:' AS other",
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT 1; SELECT 2",
    "SET enable_external_access = true; SELECT 1",
    "INSTALL httpfs",
])
def test_writes_and_file_access_are_refused_and_the_server_goes_on(served: Served, sql: str) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        with pytest.raises(psycopg.Error) as caught:
            conn.execute(sql)
        assert caught.value.sqlstate in ("42501", "42000"), caught.value
        assert "read-only" in str(caught.value) or "SELECT" in str(caught.value) or "access" in str(caught.value).lower()
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() is not None
    with psycopg.connect(served.dsn()) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def _raw(port: int, payload: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(payload)
        s.shutdown(socket.SHUT_WR)
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass


def test_random_and_truncated_bytes_then_a_good_client(served: Served) -> None:
    rng = random.Random(26)
    startup = b"user\x00analyst\x00database\x00metricstore\x00\x00"
    good = struct.pack("!ii", len(startup) + 8, 196608) + startup
    password = b"p" + struct.pack("!i", len(PASSWORD) + 5) + PASSWORD.encode() + b"\x00"
    payloads = [bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300))) for _ in range(20)]
    payloads += [good[:5], good[:-3], struct.pack("!ii", 0x7FFFFFFF, 196608), good + password[:4],
                 good + password + b"Q" + struct.pack("!i", 0x7FFFFFF0), good + password + b"Q\x00\x00\x00\x09SEL",
                 good + password + b"P" + struct.pack("!i", 6) + b"\x00\x00", good + password + b"B\x00\x00\x00\x05\x01"]
    for payload in payloads:
        _raw(served.port, payload)
    with psycopg.connect(served.dsn()) as conn:
        assert conn.execute("SELECT count(*) FROM growth").fetchone()[0] > 0  # type: ignore[index]
    assert served.proc.poll() is None


def test_a_query_over_the_timeout_is_cancelled(served: Served) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled, match="statement timeout"):
            conn.execute(SLOW)
        assert time.monotonic() - started < TIMEOUT_S + 8
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_a_cancel_request_stops_the_running_query(served: Served) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        threading.Timer(0.5, conn.cancel_safe).start()
        started = time.monotonic()
        with pytest.raises(errors.QueryCanceled) as caught:
            conn.execute(SLOW)
        assert "statement timeout" not in str(caught.value)     # the cancel stopped it, before the timeout
        assert time.monotonic() - started < TIMEOUT_S
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_connections_are_capped(served: Served) -> None:
    conns = [psycopg.connect(served.dsn()) for _ in range(MAX_CONNECTIONS)]
    try:
        with pytest.raises(psycopg.OperationalError, match="too many connections"):
            psycopg.connect(served.dsn())
        conns.pop().close()
        time.sleep(0.3)
        with psycopg.connect(served.dsn()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        for c in conns:
            c.close()
        time.sleep(1)   # the server ends a session when it reads the client's Terminate


def test_catalog_queries_of_browsing_tools(served: Served) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")}
        assert set(VIEWS) <= tables
        columns = conn.execute("SELECT column_name, data_type FROM information_schema.columns "
                               "WHERE table_name = %s ORDER BY ordinal_position", ["growth"]).fetchall()
        assert ("yoy_pct", "DOUBLE") in columns
        # what psql's \dv and \d send (pg_catalog, PostgreSQL operators and casts)
        views = {r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.relkind IN ('v','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' "
            "AND pg_catalog.pg_get_userbyid(c.relowner) IS NOT NULL AND pg_catalog.pg_table_is_visible(c.oid)")}
        assert set(VIEWS) <= views
        found = conn.execute("SELECT c.oid FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(growth)$' "
                             "COLLATE pg_catalog.default").fetchall()
        assert len(found) == 1
        attrs = conn.execute("SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a "
                             "WHERE a.attrelid = %s AND a.attnum > 0 ORDER BY a.attnum", [found[0][0]]).fetchall()
        assert ("entity", "character varying") in attrs and ("yoy_pct", "double precision") in attrs
        assert conn.execute("SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = 'main'").fetchone() == ("main",)
        # the constructs of the JDBC driver's getTables/getColumns (DBeaver, Metabase): comments joined
        # from pg_description, regex on schema names, pg_get_expr of defaults, column numbers by window
        listed = conn.execute(
            "SELECT n.nspname, c.relname, CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'r' THEN 'TABLE' END AS kind, "
            "d.description FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c "
            "LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0) "
            "WHERE c.relnamespace = n.oid AND c.relname LIKE '%' AND c.relkind = 'v' "
            "AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY 3, 1, 2").fetchall()
        assert {(r[1], r[2]) for r in listed} >= {(v, "VIEW") for v in VIEWS}
        cols = conn.execute(
            "SELECT * FROM (SELECT n.nspname, c.relname, a.attname, a.atttypid, t.typtype, "
            "row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, "
            "pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc, dsc.description "
            "FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) "
            "JOIN pg_catalog.pg_attribute a ON (a.attrelid = c.oid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) "
            "LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid = def.adrelid AND a.attnum = def.adnum) "
            "LEFT JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid) "
            "WHERE c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped AND c.relname LIKE 'growth') c "
            "WHERE true ORDER BY nspname, relname, attnum").fetchall()
        assert [r[2] for r in cols][:3] == ["entity", "metric", "segment"] and ("period_end", 1082) in {(r[2], r[3]) for r in cols}


def test_a_new_commit_is_seen_by_the_next_query(served: Served, tmp_path: Any) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        before = conn.execute("SELECT count(*) FROM facts WHERE entity = 'acme'").fetchone()
        path = write_csv(tmp_path / "acme.csv", [fact(entity="acme", value="123")])
        ingest_paths(served.store, [path], catalog=Catalog.load(CATALOG))
        after = conn.execute("SELECT count(*) FROM facts WHERE entity = 'acme'").fetchone()
        assert before is not None and after is not None and after[0] == before[0] + 1


def test_psql_lists_and_describes_the_views(served: Served) -> None:
    psql = shutil.which("psql")
    if psql is None:
        pytest.skip("psql is not installed (Debian's postgresql-client)")
    env = {**os.environ, "PGPASSWORD": PASSWORD, "PGSSLMODE": "disable"}
    base = [psql, "-h", "127.0.0.1", "-p", str(served.port), "-U", USER, "-d", "metricstore", "-X", "-v", "ON_ERROR_STOP=1"]
    out = subprocess.run([*base, "-c", r"\dv", "-c", r"\d growth", "-c", "SET as_of = '2025-03-18'", "-A", "-t",
                          "-c", "SELECT count(*) FROM facts"], capture_output=True, text=True, env=env, timeout=60)
    assert out.returncode == 0, out.stderr
    for view in VIEWS:
        assert f"| {view}" in out.stdout or f"|{view}|" in out.stdout, view
    assert "yoy_pct" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == str(local(served, "SELECT count(*) FROM facts", as_of="2025-03-18")[0][0])
    bad = subprocess.run([*base, "-c", "SELECT 1"], capture_output=True, text=True,
                         env={**env, "PGPASSWORD": "nope"}, timeout=60)
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr


def test_the_command_refuses_to_serve_unsafely(served: Served) -> None:
    store = str(served.store.root)
    env = {"METRICSTORE_SERVE_USER": "", "METRICSTORE_SERVE_PASSWORD": ""}
    nobody = run_cli("serve", "--store", store, "--port", "0", env=env)
    assert nobody.returncode == 2 and "no user" in nobody.stderr and "Traceback" not in nobody.stderr
    env = {"METRICSTORE_SERVE_USER": "u", "METRICSTORE_SERVE_PASSWORD": "p"}
    open_host = run_cli("serve", "--store", store, "--host", "0.0.0.0", "--port", "0", env=env)
    assert open_host.returncode == 2 and "TLS" in open_host.stderr and "Traceback" not in open_host.stderr


def test_hash_password_prints_a_hash_a_users_file_takes() -> None:
    out = subprocess.run([sys.executable, "-m", "metricstore", "serve", "--hash-password"], input="s3cret\n",
                         capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    stored = out.stdout.strip()
    assert stored.startswith("scrypt$") and "s3cret" not in stored
    assert verify_password("s3cret", stored) and not verify_password("s3cret!", stored)


def test_tls_when_a_certificate_is_given(served: Served, tmp_path: Any) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (it makes the test's self-signed certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True, timeout=60)
    port, log = free_port(), tmp_path / "tls.log"
    proc = start(["--store", str(served.store.root), "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key)],
                 log, env={"METRICSTORE_SERVE_USER": USER, "METRICSTORE_SERVE_PASSWORD": PASSWORD})
    try:
        wait_listening(port, proc, log)
        dsn = served.dsn().replace(f"port={served.port}", f"port={port}")
        with psycopg.connect(dsn.replace("sslmode=disable", "sslmode=require")) as conn:
            assert conn.pgconn.ssl_in_use
            assert conn.execute("SELECT count(*) FROM metrics").fetchone() is not None
        with pytest.raises(psycopg.OperationalError, match="TLS connections only"):
            psycopg.connect(dsn)
    finally:
        stop(proc)


def test_a_metric_defined_while_serving_is_answered_on_open_connections(tmp_path: Any) -> None:
    """A BI tool's connection stays open all day, and the server keeps its sessions for the next
    ones: a formula metric defined meanwhile (another process, the CLI) is answered by both."""
    store = Store.create(tmp_path / "store")
    rows = [fact(metric="gross_profit", value="40"), fact(value="100")]
    ingest_paths(store, [write_csv(tmp_path / "a.csv", rows)], catalog=Catalog.load(CATALOG))
    port, log = free_port(), tmp_path / "serve.log"
    proc = start(["--store", str(store.root), "--port", str(port)], log,
                 env={"METRICSTORE_SERVE_USER": USER, "METRICSTORE_SERVE_PASSWORD": PASSWORD})
    query = "SELECT value FROM facts WHERE metric = 'margin'"
    try:
        wait_listening(port, proc, log)
        dsn = (f"host=127.0.0.1 port={port} dbname=metricstore user={USER} password='{PASSWORD}' "
               "sslmode=disable connect_timeout=10")
        with psycopg.connect(dsn, autocommit=True) as open_all_along:
            assert open_all_along.execute(query).fetchall() == []
            done = run_cli("metric", "margin", "--formula", "gross_profit / revenue", store=store.root)
            assert done.returncode == 0, done.stderr
            assert open_all_along.execute(query).fetchall() == [(0.4,)]
        with psycopg.connect(dsn, autocommit=True) as later:      # a kept session, opened before the definition
            assert later.execute(query).fetchall() == [(0.4,)]
    finally:
        stop(proc)
