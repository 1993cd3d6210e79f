"""PostgreSQL spellings in clients' catalog queries that DuckDB does not parse or answers differently.

psql, the JDBC drivers of DBeaver and Metabase, psycopg's type lookup (and so SQLAlchemy's), and
ADBC's libpq driver browse through ``pg_catalog`` and ``information_schema``, which DuckDB emulates
in part. :func:`pg_compat` rewrites the few constructs they send that it lacks; each rule names the
client that needs it.
"""

from __future__ import annotations

import re

#: what ``version()`` answers: PostgreSQL 9.4, so that clients use their older, simpler catalog queries
PG_VERSION = "PostgreSQL 9.4.0 on metricstore (DuckDB), 64-bit"

#: the types the server sends and binds, by PostgreSQL oid, with their binary receive function's name:
#: ADBC's driver builds its type table from ``pg_type.typreceive``, which DuckDB's emulation leaves NULL
WIRE_TYPES = ((16, "bool", "boolrecv"), (17, "bytea", "bytearecv"), (18, "char", "charrecv"),
              (19, "name", "namerecv"), (20, "int8", "int8recv"), (21, "int2", "int2recv"),
              (23, "int4", "int4recv"), (25, "text", "textrecv"), (26, "oid", "oidrecv"),
              (114, "json", "json_recv"), (700, "float4", "float4recv"), (701, "float8", "float8recv"),
              (1042, "bpchar", "bpcharrecv"), (1043, "varchar", "varcharrecv"), (1082, "date", "date_recv"),
              (1083, "time", "time_recv"), (1114, "timestamp", "timestamp_recv"),
              (1184, "timestamptz", "timestamptz_recv"), (1186, "interval", "interval_recv"),
              (1700, "numeric", "numeric_recv"), (2950, "uuid", "uuid_recv"))
_WIRE_PG_TYPE = (
    "SELECT oid, typname, typreceive, typreceive AS typsend, 0 AS typbasetype, 0 AS typrelid, 0 AS typarray, "
    "0 AS typelem, 'b' AS typtype FROM (VALUES "
    + ", ".join(f"({oid}, '{name}', '{recv}')" for oid, name, recv in WIRE_TYPES)
    + ") AS t(oid, typname, typreceive)")

#: PostgreSQL's names of the types, as format_type() spells them (DuckDB's says varchar, double, ...):
#: SQLAlchemy's reflection and psql's \\d read them
_TYPE_NAMES = {16: "boolean", 20: "bigint", 21: "smallint", 23: "integer", 25: "text", 700: "real",
               701: "double precision", 1043: "character varying", 1082: "date", 1083: "time without time zone",
               1114: "timestamp without time zone", 1184: "timestamp with time zone", 1186: "interval",
               1700: "numeric"}
_FORMAT_TYPE = ("(CASE (\\1) " + " ".join(f"WHEN {oid} THEN '{name}'" for oid, name in _TYPE_NAMES.items())
                + " ELSE pg_catalog.format_type(\\1, \\2) END)")

#: (pattern, replacement) in order
_COMPAT = (
    (re.compile(r"OPERATOR\s*\(\s*pg_catalog\.([~!=<>]+)\s*\)", re.IGNORECASE), r"\1"),
    (re.compile(r"\s+COLLATE\s+pg_catalog\.default", re.IGNORECASE), ""),
    # functions DuckDB lacks, answered with a constant; their arguments stay in the text (as a row
    # that is never NULL), so that a bound parameter among them is still used
    (re.compile(r"(?:\bpg_catalog\.)?\bpg_get_userbyid\s*\(([^()]*)\)", re.IGNORECASE),
     r"(CASE WHEN row(\1) IS NULL THEN NULL ELSE 'metricstore' END)"),
    (re.compile(r"(?:pg_catalog\.)?pg_get_(?:expr|partkeydef|indexdef)\s*\(([^()]*)\)", re.IGNORECASE),
     r"(CASE WHEN row(\1) IS NULL THEN 'never' END)"),
    (re.compile(r"::\s*(?:pg_catalog\.)?(regtype|regclass|regproc)\b", re.IGNORECASE), "::VARCHAR"),
    (re.compile(r"::\s*pg_catalog\.oid\b", re.IGNORECASE), "::VARCHAR"),
    (re.compile(r"\bAS\s+(?:pg_catalog\.)?(regtype|regclass|regproc)\s*\)", re.IGNORECASE), "AS VARCHAR)"),
    (re.compile(r"\b(?:pg_catalog\.)?format_type\s*\(([^(),]*),([^()]*)\)", re.IGNORECASE), _FORMAT_TYPE),
    # psycopg's (and so SQLAlchemy's) type lookup: a type's oid by name, NULL when there is none
    (re.compile(r"(?:pg_catalog\.)?to_regtype\s*\(([^()]*)\)", re.IGNORECASE),
     r"(SELECT min(oid) FROM pg_catalog.pg_type WHERE typname = (\1))"),
    (re.compile(r"::\s*pg_catalog\.(text|name|char)\b", re.IGNORECASE), "::VARCHAR"),
    # SQLAlchemy's column reflection (Superset) asks whether a collation is visible: there are none
    (re.compile(r"(?:pg_catalog\.)?pg_collation_is_visible\s*\([^()]*\)", re.IGNORECASE), "true"),
    # ... and builds the (never found) collation as JSON: the sandbox loads no json extension
    (re.compile(r"\bjson_build_object\s*\(", re.IGNORECASE), "list_value("),
    # settings clients read (ADBC the time zone, SQLAlchemy the table access method): the server's own
    (re.compile(r"(?:pg_catalog\.)?\bcurrent_setting\s*\(([^()]*)\)", re.IGNORECASE),
     r"(CASE lower(\1) WHEN 'timezone' THEN 'UTC' WHEN 'server_version' THEN '9.4.0' "
     r"WHEN 'server_version_num' THEN '90400' WHEN 'standard_conforming_strings' THEN 'on' END)"),
    # SQLAlchemy and JDBC read the server's version from this string (DuckDB's version() is its own)
    (re.compile(r"\b(?:pg_catalog\.)?version\s*\(\s*\)", re.IGNORECASE), f"'{PG_VERSION}'"),
)
#: catalogs DuckDB does not emulate, read as empty: materialized views and row estimates (Metabase),
#: collations, operator classes and inheritance (SQLAlchemy's reflection of a table)
EMPTY_CATALOGS = {
    "pg_matviews": "NULL::VARCHAR AS schemaname, NULL::VARCHAR AS matviewname",
    "pg_stat_user_tables": "NULL::VARCHAR AS schemaname, NULL::VARCHAR AS relname, NULL::BIGINT AS n_live_tup",
    "pg_collation": "NULL::BIGINT AS oid, NULL::VARCHAR AS collname, NULL::BIGINT AS collnamespace",
    "pg_opclass": "NULL::BIGINT AS oid, NULL::VARCHAR AS opcname, NULL::BOOLEAN AS opcdefault",
    "pg_inherits": "NULL::BIGINT AS inhrelid, NULL::BIGINT AS inhparent, NULL::INTEGER AS inhseqno",
}
#: words that may follow a table in FROM without being its alias
_NOT_ALIAS = {"where", "join", "left", "right", "inner", "outer", "full", "cross", "natural", "on", "using", "group",
              "order", "limit", "union", "except", "intersect", "having", "window", "qualify", "offset", "as"}


def _table(name: str, select: str, query: str) -> str:
    """``query`` with the catalog table ``name`` read from ``(SELECT select)``: a column qualified as
    ``pg_catalog.name.col`` becomes ``name.col``, and the table keeps its own alias or is named ``name``."""
    quoted = rf'(?<![\w.])(?:"?pg_catalog"?\.)?"?{name}"?'
    query = re.sub(quoted + r"\s*\.(?=\s*\"?\w)", f"{name}.", query, flags=re.IGNORECASE)

    def replace(m: re.Match[str]) -> str:
        following = re.match(r'\s+"?(\w+)', query[m.end():])
        aliased = following is not None and following.group(1).lower() not in _NOT_ALIAS - {"as"}
        return f"({select})" + ("" if aliased else f" AS {name}")
    return re.sub(quoted + r'(?![\w".])', replace, query, flags=re.IGNORECASE)


#: a query about receive functions (ADBC's type table) reads WIRE_TYPES instead of DuckDB's pg_type
_RECEIVE = re.compile(r"\btyp(?:receive|send)\b", re.IGNORECASE)
_CURRENT_DATABASE = re.compile(r"\b(?:pg_catalog\.)?current_database\s*\(\s*\)", re.IGNORECASE)
_REGPROC_NOT_ZERO = re.compile(r"\b(typreceive|typsend)\s*!=\s*0\b", re.IGNORECASE)


def pg_compat(query: str, database: str = "metricstore") -> str:
    """``query`` with the PostgreSQL-only spellings of catalog queries replaced (see ``_COMPAT``)."""
    for pattern, replacement in _COMPAT:
        query = pattern.sub(replacement, query)
    for name, columns in EMPTY_CATALOGS.items():
        if name in query.lower():
            query = _table(name, f"SELECT {columns} WHERE false", query)
    if "pg_database" in query.lower() or "current_database" in query.lower():
        # the database a client connected to, not the sandbox's own name for its catalog
        name = "'" + database.replace("'", "''") + "'"
        query = _CURRENT_DATABASE.sub(lambda _: name, query)
        query = _table("pg_database", f"SELECT * REPLACE ({name} AS datname) FROM pg_catalog.pg_database "
                                      "WHERE datname = current_database()", query)
    if _RECEIVE.search(query):
        query = _REGPROC_NOT_ZERO.sub(r"\1 <> ''", _table("pg_type", _WIRE_PG_TYPE, query))
    return query
