"""Values in PostgreSQL's binary format, and ``COPY (SELECT ...) TO STDOUT``.

Clients that ask for binary results (ADBC's libpq driver, psycopg's ``binary=True``) read every
column in its type's binary form; ADBC reads every result set through
``COPY (query) TO STDOUT (FORMAT binary)``. buenavista has no COPY and no binary form for numeric,
and it shifts a timestamp that carries no zone by the machine's; these encoders cover every type
:mod:`queries.serve.session` sends.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
import struct
from collections.abc import Callable, Iterator
from typing import Any

from buenavista.core import BVType

#: COPY (SELECT ...) TO STDOUT [WITH] [(FORMAT binary|text|csv)] [BINARY|CSV]
COPY_OUT = re.compile(r"^\s*COPY\s*\((?P<query>.*)\)\s*TO\s+STDOUT\s*(?:WITH\s*)?"
                      r"(?:\(\s*FORMAT\s+(?P<format>\w+)\s*\)|(?P<bare>BINARY|CSV))?\s*;?\s*$",
                      re.IGNORECASE | re.DOTALL)
COPY_FORMATS = ("binary", "text", "csv")
_EPOCH_DATE = dt.date(2000, 1, 1)
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
#: the fixed head of a binary COPY stream: signature, flags, header extension length
COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
COPY_TRAILER = struct.pack("!h", -1)


def copy_format(match: re.Match[str]) -> str:
    """The format a matched COPY asked for (text when it names none)."""
    return (match.group("format") or match.group("bare") or "text").lower()


def _timestamp(value: dt.datetime) -> bytes:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)
    delta = aware - _EPOCH
    return struct.pack("!q", (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds)


def _numeric(value: decimal.Decimal) -> bytes:
    """PostgreSQL's numeric: base-10000 digits, the weight of the first, sign and display scale."""
    if not value.is_finite():
        return struct.pack("!hhHh", 0, 0, 0xC000, 0)
    sign, _, exponent = value.as_tuple()
    scale = max(0, -int(exponent))
    whole, _, fraction = f"{abs(value):f}".partition(".")
    whole = whole.lstrip("0")
    whole = whole.zfill(-(-len(whole) // 4) * 4) if whole else ""
    fraction = fraction.ljust(-(-len(fraction) // 4) * 4, "0")
    groups = [int(whole[i:i + 4]) for i in range(0, len(whole), 4)]
    weight = len(groups) - 1
    groups += [int(fraction[i:i + 4]) for i in range(0, len(fraction), 4)]
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    while groups and groups[-1] == 0:
        groups.pop()
    if not groups:
        weight = 0
    return struct.pack(f"!hhHh{len(groups)}h", len(groups), weight, 0x4000 if sign else 0, scale, *groups)


def _text(value: Any) -> bytes:
    return str(value).encode("utf-8")


BINARY: dict[BVType, Callable[[Any], bytes]] = {
    BVType.BIGINT: lambda v: struct.pack("!q", v),
    BVType.INTEGER: lambda v: struct.pack("!i", v),
    BVType.FLOAT: lambda v: struct.pack("!d", v),
    BVType.BOOL: lambda v: b"\x01" if v else b"\x00",
    BVType.DATE: lambda v: struct.pack("!i", (v - _EPOCH_DATE).days),
    BVType.TIMESTAMP: _timestamp,
    BVType.DECIMAL: _numeric,
    BVType.BYTES: bytes,
    BVType.TEXT: _text,
}


def binary(bvtype: BVType) -> Callable[[Any], bytes]:
    """The binary encoder of a column type (text for a type without one: its oid says text)."""
    return BINARY.get(bvtype, _text)


def binary_row(row: list[Any], encoders: list[Callable[[Any], bytes]]) -> bytes:
    """One tuple of a binary COPY stream: the field count, then each field's length and bytes."""
    out = [struct.pack("!h", len(row))]
    for value, encode in zip(row, encoders):
        if value is None:
            out.append(b"\xff\xff\xff\xff")
        else:
            data = encode(value)
            out.append(struct.pack("!i", len(data)) + data)
    return b"".join(out)


def text_row(row: list[Any], csv: bool) -> bytes:
    """One line of a text (tab, ``\\N``) or CSV COPY stream."""
    if csv:
        cells = ["" if v is None else '"' + str(v).replace('"', '""') + '"' if re.search(r'[",\n\r]', str(v))
                 else str(v) for v in row]
        return (",".join(cells) + "\n").encode("utf-8")
    escape = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
    return ("\t".join("\\N" if v is None else str(v).translate(escape) for v in row) + "\n").encode("utf-8")


def copy_messages(rows: Iterator[list[Any]], types: list[BVType], fmt: str) -> Iterator[bytes]:
    """The CopyData payloads of a result: binary puts the header before the first tuple, as PostgreSQL does."""
    if fmt != "binary":
        yield from (text_row(row, fmt == "csv") for row in rows)
        return
    encoders = [binary(t) for t in types]
    head = COPY_HEADER
    for row in rows:
        yield head + binary_row(row, encoders)
        head = b""
    yield head + COPY_TRAILER
