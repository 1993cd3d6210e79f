"""The arguments every query takes: text keys, ``as_of`` (a date) and ``as_recorded`` (a time)."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata

from queries.errors import BadArgument
from store.rules import QUALIFIED_NAME

def key_text(value: str) -> str:
    """A text key (entity, metric, segment, dims) as the store holds it: Unicode NFC, as ingest
    normalises it, so that ``café`` typed with a combining accent finds the facts stored under it.

    Example:
        >>> key_text("cafe\u0301") == "caf\u00e9"
        True
    """
    return unicodedata.normalize("NFC", value)


#: The names ingest stores in lower case (a metric unless it is a qualified name).
_LOWER_CASE = ("entity", "segment", "metric")


def stored_key(column: str, value: str) -> str:
    """A name a user typed in ``column`` as ingest stores it: NFC (:func:`key_text`), and an entity,
    a segment or a metric in lower case, unless the metric is a qualified name
    (``us-gaap:Revenue`` keeps its case). So ``AAPL`` finds ``aapl``.

    Example:
        >>> stored_key("entity", "AAPL"), stored_key("metric", "us-gaap:Revenue"), stored_key("unit", "USD m")
        ('aapl', 'us-gaap:Revenue', 'USD m')
    """
    text = key_text(value)
    if column in _LOWER_CASE and not (column == "metric" and re.match(QUALIFIED_NAME, text)):
        return text.lower()
    return text


#: What a caller may pass for a date or a time: a ``date``, a ``datetime`` or ISO text.
DateLike = dt.date | dt.datetime | str


def to_date(name: str, value: DateLike | None) -> dt.date | None:
    """Read a point-in-time date argument (``date``, or ISO text).

    Example:
        >>> to_date("as_of", "2024-06-30")
        datetime.date(2024, 6, 30)
    """
    if value is None or (isinstance(value, dt.date) and not isinstance(value, dt.datetime)):
        return value
    if isinstance(value, dt.datetime):
        return value.date()
    try:
        return dt.date.fromisoformat(str(value).strip())
    except ValueError:
        raise BadArgument(name, value, "is not a date (YYYY-MM-DD)") from None


def to_timestamp(name: str, value: DateLike | None) -> dt.datetime | None:
    """Read a system-time argument (``datetime``, ``date`` or ISO text; naive means UTC, a bare
    date means the end of that day).

    Example:
        >>> to_timestamp("as_recorded", "2024-06-30T12:00:00")
        datetime.datetime(2024, 6, 30, 12, 0, tzinfo=datetime.timezone.utc)
    """
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        ts = value
    elif isinstance(value, dt.date):
        ts = dt.datetime.combine(value, dt.time.max)
    else:
        try:
            ts = dt.datetime.fromisoformat(str(value).strip())
        except ValueError:
            raise BadArgument(name, value, "is not a timestamp (YYYY-MM-DDTHH:MM:SS)") from None
        if len(str(value).strip()) == 10:
            ts = dt.datetime.combine(ts.date(), dt.time.max)
    return ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)
