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
    "(SELECT oid, typname, typreceive, typreceive AS typsend, 0 AS typbasetype, 0 AS typrelid, 0 AS typarray, "
    "0 AS typelem, 'b' AS typtype FROM (VALUES "
    + ", ".join(f"({oid}, '{name}', '{recv}')" for oid, name, recv in WIRE_TYPES)
    + ") AS t(oid, typname, typreceive)) AS pg_type")

#: (pattern, replacement) in order
_COMPAT = (
    (re.compile(r"OPERATOR\s*\(\s*pg_catalog\.([~!=<>]+)\s*\)", re.IGNORECASE), r"\1"),
    (re.compile(r"\s+COLLATE\s+pg_catalog\.default", re.IGNORECASE), ""),
    (re.compile(r"pg_catalog\.pg_get_userbyid\s*\([^()]*\)", re.IGNORECASE), "'metricstore'"),
    (re.compile(r"\bpg_get_userbyid\s*\([^()]*\)", re.IGNORECASE), "'metricstore'"),
    (re.compile(r"(?:pg_catalog\.)?pg_get_expr\s*\([^()]*\)", re.IGNORECASE), "NULL"),
    (re.compile(r"::\s*(?:pg_catalog\.)?(regtype|regclass|regproc)\b", re.IGNORECASE), "::VARCHAR"),
    (re.compile(r"::\s*pg_catalog\.oid\b", re.IGNORECASE), "::VARCHAR"),
    # psycopg's (and so SQLAlchemy's) type lookup: a type's oid by name, NULL when there is none
    (re.compile(r"(?:pg_catalog\.)?to_regtype\s*\(([^()]*)\)", re.IGNORECASE),
     r"(SELECT min(oid) FROM pg_catalog.pg_type WHERE typname = (\1))"),
    (re.compile(r"::\s*pg_catalog\.(text|name|char)\b", re.IGNORECASE), "::VARCHAR"),
    # SQLAlchemy and JDBC read the server's version from this string (DuckDB's version() is its own)
    (re.compile(r"\b(?:pg_catalog\.)?version\s*\(\s*\)", re.IGNORECASE), f"'{PG_VERSION}'"),
)
#: a query about receive functions (ADBC's type table) reads WIRE_TYPES instead of DuckDB's pg_type
_RECEIVE = re.compile(r"\btyp(?:receive|send)\b", re.IGNORECASE)
_PG_TYPE_TABLE = re.compile(r"\bpg_catalog\.pg_type\b(?!\s*\.)", re.IGNORECASE)
_REGPROC_NOT_ZERO = re.compile(r"\b(typreceive|typsend)\s*!=\s*0\b", re.IGNORECASE)


def pg_compat(query: str) -> str:
    """``query`` with the PostgreSQL-only spellings of catalog queries replaced (see ``_COMPAT``)."""
    for pattern, replacement in _COMPAT:
        query = pattern.sub(replacement, query)
    if _RECEIVE.search(query):
        query = _REGPROC_NOT_ZERO.sub(r"\1 <> ''", _PG_TYPE_TABLE.sub(_WIRE_PG_TYPE, query))
    return query
