"""``metricstore serve`` with the clients data teams use: SQLAlchemy's postgresql dialect with pandas,
ADBC's libpq driver into Arrow and polars, and the catalog queries DBeaver and Metabase send."""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl
import psycopg
import pytest

from queries import VIEWS, MetricStore
from tests.serve.conftest import PASSWORD, USER, Served

pd = pytest.importorskip("pandas", reason="pandas is not installed (the serve extra)")
sa = pytest.importorskip("sqlalchemy", reason="SQLAlchemy is not installed")
adbc = pytest.importorskip("adbc_driver_postgresql.dbapi", reason="adbc-driver-postgresql is not installed (the serve extra)")

DAY = "2025-03-18"
SERIES = "SELECT period, period_end, value, yoy_pct FROM growth WHERE entity = {e} AND metric = {m} ORDER BY period_end, value"


def url(served: Served, scheme: str, database: str = "metricstore") -> str:
    return f"{scheme}://{USER}:{PASSWORD.replace(' ', '%20')}@127.0.0.1:{served.port}/{database}?sslmode=disable"


def local(served: Served, sql: str, params: list[Any] | None = None, **point: str) -> pl.DataFrame:
    with MetricStore(served.store) as ms:
        return ms.sql(sql, params, **point)


def same(got: pl.DataFrame, expected: pl.DataFrame) -> None:
    """Equal frames, whatever integer width or timestamp unit a client chose."""
    assert got.columns == expected.columns
    assert got.height == expected.height > 0
    for name in expected.columns:
        a, b = got[name], expected[name]
        if b.dtype == pl.Datetime:
            a, b = a.cast(pl.Datetime("us", "UTC")), b.cast(pl.Datetime("us", "UTC"))
        elif b.dtype.is_numeric():
            a, b = a.cast(pl.Float64), b.cast(pl.Float64)
        elif b.dtype != pl.Date:
            a, b = a.cast(pl.String), b.cast(pl.String)
        assert a.to_list() == b.to_list(), name


# -- SQLAlchemy (psycopg driver) and pandas ---------------------------------------------------------

@pytest.fixture(scope="module")
def engine(served: Served) -> Any:
    eng = sa.create_engine(url(served, "postgresql+psycopg"))
    yield eng
    eng.dispose()


def test_pandas_read_sql_through_sqlalchemy(served: Served, engine: Any) -> None:
    expected = local(served, SERIES.format(e="?", m="?"), ["xiaomi", "revenue"])
    by_driver = pd.read_sql(SERIES.format(e="%(e)s", m="%(m)s"), engine, params={"e": "xiaomi", "m": "revenue"})
    same(pl.from_pandas(by_driver), expected)
    by_text = pd.read_sql(sa.text(SERIES.format(e=":e", m=":m")), engine, params={"e": "xiaomi", "m": "revenue"})
    same(pl.from_pandas(by_text), expected)
    assert list(by_text.columns) == ["period", "period_end", "value", "yoy_pct"]


def test_sqlalchemy_every_view_and_as_of(served: Served, engine: Any) -> None:
    with engine.connect() as conn:
        for view in VIEWS:
            got = conn.execute(sa.text(f"SELECT count(*) FROM {view}")).scalar()
            assert got == local(served, f"SELECT count(*) AS n FROM {view}")["n"][0], view
        conn.execute(sa.text(f"SET as_of = '{DAY}'"))
        then = conn.execute(sa.text("SELECT count(*) FROM facts")).scalar()
    assert then == local(served, "SELECT count(*) AS n FROM facts", as_of=DAY)["n"][0]
    dated = sa.create_engine(url(served, "postgresql+psycopg", f"asof_{DAY}"))
    try:
        assert pd.read_sql("SELECT count(*) AS n FROM facts", dated)["n"][0] == then
    finally:
        dated.dispose()


def test_sqlalchemy_reflection_lists_views_and_columns(served: Served, engine: Any) -> None:
    """What Superset and pandas.read_sql_table do: the dialect's own pg_catalog queries."""
    inspector = sa.inspect(engine)
    assert "main" in inspector.get_schema_names()
    assert set(VIEWS) <= set(inspector.get_view_names())
    columns = {c["name"]: c["type"] for c in inspector.get_columns("growth")}
    assert list(columns)[:3] == ["entity", "metric", "segment"]
    assert isinstance(columns["entity"], sa.String) and isinstance(columns["yoy_pct"], sa.Float)
    assert isinstance(columns["period_end"], sa.Date)
    table = pd.read_sql_table("metrics", engine)
    assert len(table) == local(served, "SELECT count(*) AS n FROM metrics")["n"][0] > 0


# -- ADBC (libpq) into Arrow and polars --------------------------------------------------------------

def test_adbc_into_arrow_with_parameters(served: Served) -> None:
    expected = local(served, SERIES.format(e="?", m="?"), ["xiaomi", "revenue"])
    with adbc.connect(url(served, "postgresql")) as conn, conn.cursor() as cur:
        cur.execute(SERIES.format(e="$1", m="$2"), ["xiaomi", "revenue"])
        table = cur.fetch_arrow_table()
    assert table.schema.field("period_end").type == __import__("pyarrow").date32()
    assert table.schema.field("value").type == __import__("pyarrow").float64()
    same(pl.from_arrow(table), expected)  # type: ignore[arg-type]


def test_adbc_every_view_into_polars(served: Served) -> None:
    """ADBC reads every result through COPY (...) TO STDOUT (FORMAT binary): each view, each type."""
    with adbc.connect(url(served, "postgresql")) as conn:
        for view in VIEWS:
            got = pl.read_database(f"SELECT * FROM {view}", conn)
            expected = local(served, f"SELECT * FROM {view}")
            assert got.columns == expected.columns and got.height == expected.height, view
            if view == "growth":    # every column but the lists, which go as text
                keys = [c for c in expected.columns if c not in ("dims", "derived_from")]
                same(got.select(keys).sort(keys, nulls_last=True), expected.select(keys).sort(keys, nulls_last=True))
    got = pl.read_database_uri("SELECT entity, fy, value FROM growth ORDER BY entity, period_end, value",
                               url(served, "postgresql"), engine="adbc")
    same(got, local(served, "SELECT entity, fy, value FROM growth ORDER BY entity, period_end, value"))


def test_adbc_as_of_by_database_name_and_by_set(served: Served) -> None:
    expected = local(served, "SELECT count(*) AS n FROM facts", as_of=DAY)["n"][0]
    with adbc.connect(url(served, "postgresql", f"asof_{DAY}")) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM facts")
        assert cur.fetchone() == (expected,)
    with adbc.connect(url(served, "postgresql")) as conn, conn.cursor() as cur:
        cur.execute(f"SET as_of = '{DAY}'")
        cur.execute("SELECT count(*) AS n FROM facts")
        assert cur.fetchone() == (expected,)


def test_copy_to_stdout_in_every_format(served: Served) -> None:
    expected = local(served, "SELECT entity, period_end, value FROM growth ORDER BY entity, period_end, value")
    with psycopg.connect(served.dsn(), autocommit=True) as conn, conn.cursor() as cur:
        query = "SELECT entity, period_end, value FROM growth ORDER BY entity, period_end, value"
        with cur.copy(f"COPY ({query}) TO STDOUT (FORMAT binary)") as copy:
            copy.set_types(["text", "date", "float8"])
            rows = list(copy.rows())
        assert rows == expected.rows()
        with cur.copy(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)") as copy:
            text = b"".join(bytes(block) for block in copy).decode()
        assert text.splitlines()[0] == ",".join(str(v) for v in expected.row(0))
        with pytest.raises(psycopg.Error):
            cur.execute("COPY (SELECT 1) TO STDOUT (FORMAT parquet)")


def test_binary_results_of_every_type(served: Served) -> None:
    """psycopg's binary=True: each column in its type's binary form (numeric, timestamps, booleans)."""
    sql = ("SELECT 1::INTEGER AS i, 2::BIGINT AS b, 1.25::DOUBLE AS f, 12.3400::DECIMAL(10,4) AS d, "
           "-0.5::DECIMAL(4,2) AS neg, true AS t, DATE '2024-06-30' AS day, "
           "TIMESTAMP '2024-06-30 12:34:56.789' AS ts, 'x' AS s, NULL::VARCHAR AS nothing")
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        row = conn.execute(sql, binary=True).fetchone()
        text = conn.execute(sql).fetchone()
    import decimal
    assert row == text == (1, 2, 1.25, decimal.Decimal("12.3400"), decimal.Decimal("-0.50"), True, dt.date(2024, 6, 30),
                           dt.datetime(2024, 6, 30, 12, 34, 56, 789000), "x", None)


# -- catalog queries recorded from DBeaver's and Metabase's source -----------------------------------

#: DBeaver's PostgreSQL driver (plugins/org.jkiss.dbeaver.ext.postgresql: PostgreDatabase, PostgreSchema's
#: TableCache.prepareLookupStatement and prepareChildrenStatement), for a server of version 10 or newer
DBEAVER = [
    ("SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=%s", ["metricstore"]),
    ("SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n\n"
     "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass\n"
     "ORDER BY nspname", []),
    ("SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  "
     "pg_catalog.pg_get_partkeydef(c.oid) as partition_key \nFROM pg_catalog.pg_class c\n"
     "LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass\n"
     "WHERE c.relnamespace=%s AND c.relkind not in ('i','I','c')", ["NAMESPACE"]),
    ("SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid\n"
     "FROM pg_catalog.pg_attribute a\nINNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)\n"
     "LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)\n"
     "LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)\n"
     "LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum "
     "and dep.classid = dep.refclassid\nWHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.relnamespace=%s\n"
     "ORDER BY a.attnum", ["NAMESPACE"]),
]

#: Metabase (0.55) on connecting and syncing a PostgreSQL database, in order; the schema it syncs is
#: the one the first listing returned ('main' here, where Metabase's default is 'public')
METABASE = [
    "SET extra_float_digits = 2",
    "SET application_name = 'Metabase v0.55.1 [f8f63fdf-d8f8-4573-86ea-4fe4a9548041]'",
    "SHOW TRANSACTION ISOLATION LEVEL",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    """SELECT nspname AS "TABLE_SCHEM", current_database() AS "TABLE_CATALOG" FROM pg_catalog.pg_namespace  WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_'  OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_'  OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_'))  ORDER BY "TABLE_SCHEM\"""",
    """with table_privileges as (
         select
           NULL as role,
           t.schemaname as schema,
           t.objectname as table,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'update') as update,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'select') as select,
           pg_catalog.has_any_column_privilege(current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'insert') as insert,
           pg_catalog.has_table_privilege(     current_user, '"' || replace(t.schemaname, '"', '""') || '"' || '.' || '"' || replace(t.objectname, '"', '""') || '"',  'delete') as delete
         from (
           select schemaname, tablename as objectname from pg_catalog.pg_tables
           union
           select schemaname, viewname as objectname from pg_catalog.pg_views
           union
           select schemaname, matviewname as objectname from pg_catalog.pg_matviews
         ) t
         where t.schemaname !~ '^pg_'
           and t.schemaname <> 'information_schema'
           and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
        )
        select t.*
        from table_privileges t""",
    """SELECT "n"."nspname" AS "schema", "c"."relname" AS "name", CASE "c"."relkind" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS "type", "d"."description" AS "description", "stat"."n_live_tup" AS "estimated_row_count" FROM "pg_catalog"."pg_class" AS "c" INNER JOIN "pg_catalog"."pg_namespace" AS "n" ON "c"."relnamespace" = "n"."oid" LEFT JOIN "pg_catalog"."pg_description" AS "d" ON ("c"."oid" = "d"."objoid") AND ("d"."objsubid" = '0') AND ("d"."classoid" = 'pg_class'::regclass) LEFT JOIN "pg_stat_user_tables" AS "stat" ON ("n"."nspname" = "stat"."schemaname") AND ("c"."relname" = "stat"."relname") WHERE ("c"."relnamespace" = "n"."oid") AND ("n"."nspname" !~ '^pg_') AND ("n"."nspname" <> 'information_schema') AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND ("n"."nspname" IN ('main')) ORDER BY "type" ASC, "schema" ASC, "name" ASC""",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED",
    "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
    "show timezone",
]


def test_dbeaver_browses_the_views(served: Served) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        answers = []
        namespace = None
        for sql, params in DBEAVER:
            cur = conn.execute(sql, [namespace if p == "NAMESPACE" else p for p in params])
            assert cur.description is not None
            rows = cur.fetchall()
            names = [d.name for d in cur.description]
            answers.append([dict(zip(names, r)) for r in rows])
            if namespace is None and "nspname" in names:
                namespace = next(r["oid"] for r in answers[-1] if r["nspname"] == "main")
    assert answers[0] and answers[0][0]["datname"] == "metricstore"
    assert {r["relname"]: r["relkind"] for r in answers[2] if r["relname"] in VIEWS} == {v: "v" for v in VIEWS}
    growth = [r["attname"] for r in answers[3] if r["relname"] == "growth"]
    assert growth[:3] == ["entity", "metric", "segment"] and "yoy_pct" in growth


def test_metabase_connects_and_syncs(served: Served) -> None:
    with psycopg.connect(served.dsn(), autocommit=True) as conn:
        results = [conn.execute(sql).fetchall() if conn.execute(sql).description else None for sql in METABASE]
    assert results[2] == [("read committed",)]
    assert ("main", "metricstore") in results[4]
    privileges = {r[2]: r[4] for r in results[5] if r[1] == "main"}
    assert privileges.get("growth") is True
    listed = {(r[1], r[2]) for r in results[6]}
    assert {(v, "VIEW") for v in VIEWS} <= listed
    assert results[-1] == [("UTC",)]
