"""Period labels on an entity's fiscal calendar: ``FY2024``, ``2024Q4``, ``2024H1``, ``9M2024``,
``2024-03`` (a month), ``2024-12-31`` (an instant), else an ISO interval ``2024-01-01/2024-03-18``.

A fiscal year is named by the year in which it ends; ``fye`` is the month it ends in (12 for a
calendar year). Dates are rounded to the nearest month end before labelling, so 52/53-week years
(Apple's ends on the last Saturday of September, some retailers' early in February) get the
labels their filings use. ``queries/sql/periods.sql`` implements :func:`label_period` in SQL; a
test holds the two to the same answers.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass

#: Largest gap, in days, between a period's true length and its nominal length in months for it
#: to take a fiscal label (a 14-week quarter is 98 days against 92; a 53-week year 371 against 365).
TOLERANCE_DAYS = 10


@dataclass(frozen=True, order=True)
class Period:
    """A span of valid time; ``start == end`` is an instant."""

    start: dt.date
    end: dt.date

    def label(self, fye: int = 12) -> str:
        return label_period(self.start, self.end, fye)


def _month_end(year: int, month: int) -> dt.date:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _month_start(year: int, month: int) -> dt.date:
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    return dt.date(year, month, 1)


def nominal_end(d: dt.date) -> dt.date:
    """The month end nearest ``d`` (the 1st-15th round back to the previous month's end)."""
    if d.day <= 15:
        return d - dt.timedelta(days=d.day)
    return _month_end(d.year, d.month)


def nominal_start(d: dt.date) -> dt.date:
    """The month start nearest ``d``."""
    return nominal_end(d - dt.timedelta(days=1)) + dt.timedelta(days=1)


def label_period(start: dt.date, end: dt.date, fye: int = 12) -> str:
    """The canonical label of a period on a fiscal calendar ending in month ``fye``.

    Example:
        >>> label_period(dt.date(2023, 10, 1), dt.date(2024, 9, 28), fye=9)
        'FY2024'
        >>> label_period(dt.date(2024, 9, 29), dt.date(2024, 12, 28), fye=9)
        '2025Q1'
    """
    if start == end:
        return end.isoformat()
    ns, ne = nominal_start(start), nominal_end(end)
    months = (ne.year * 12 + ne.month) - (ns.year * 12 + ns.month) + 1
    nominal_days = (ne - ns).days + 1
    true_days = (end - start).days + 1
    if months < 1 or abs(true_days - nominal_days) > TOLERANCE_DAYS:
        return f"{start.isoformat()}/{end.isoformat()}"
    fy = ne.year + (1 if ne.month > fye else 0)
    k = (ne.month - fye - 1) % 12 + 1  # fiscal month of the end, 1..12
    if months == 12 and k == 12:
        return f"FY{fy}"
    if months == 3 and k % 3 == 0:
        return f"{fy}Q{k // 3}"
    if months == 6 and k % 6 == 0:
        return f"{fy}H{k // 6}"
    if months == 1:
        return f"{ne.year:04d}-{ne.month:02d}"
    if months < 12 and k == months:
        return f"{months}M{fy}"
    return f"{start.isoformat()}/{end.isoformat()}"


_FY = re.compile(r"^(?:FY\s*-?\s*(\d{4})|(\d{4})\s*-?\s*FY)$", re.I)
_Q = re.compile(r"^(?:(\d{4})\s*-?\s*Q([1-4])|Q([1-4])\s*[-\s]?\s*(\d{4}))$", re.I)
_H = re.compile(r"^(?:(\d{4})\s*-?\s*H([12])|H([12])\s*[-\s]?\s*(\d{4})|([12])H\s*(\d{4}))$", re.I)
_YTD = re.compile(r"^(\d{1,2})M\s*-?\s*(\d{4})$", re.I)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_INTERVAL = re.compile(r"^(\d{4}-\d{2}-\d{2})\s*/\s*(\d{4}-\d{2}-\d{2})$")


def _fiscal_span(fy: int, fye: int, first_month: int, last_month: int) -> Period:
    """Fiscal months ``first_month..last_month`` (1-based) of fiscal year ``fy``."""
    base = fye - 12  # fiscal month k is calendar month base + k of year fy
    return Period(_month_start(fy, base + first_month), _month_end(fy, base + last_month))


def parse_period(text: str, fye: int = 12) -> Period:
    """Parse a period label on a fiscal calendar ending in month ``fye``.

    Accepts ``FY2024``, ``2024Q4`` (also ``Q4 2024``), ``2024H1``, ``9M2024`` (year to date),
    ``2024-03`` (a calendar month), ``2024-12-31`` (an instant) and ``2024-01-01/2024-03-18``.

    Raises:
        ValueError: the text is none of these, or names an impossible date.

    Example:
        >>> parse_period("2024Q4")
        Period(start=datetime.date(2024, 10, 1), end=datetime.date(2024, 12, 31))
        >>> parse_period("FY2024", fye=9).start
        datetime.date(2023, 10, 1)
    """
    if not 1 <= fye <= 12:
        raise ValueError(f"fiscal year end month {fye} is not 1-12")
    t = text.strip()
    if m := _FY.match(t):
        return _fiscal_span(int(m[1] or m[2]), fye, 1, 12)
    if m := _Q.match(t):
        fy, q = (int(m[1]), int(m[2])) if m[1] else (int(m[4]), int(m[3]))
        return _fiscal_span(fy, fye, 3 * q - 2, 3 * q)
    if m := _H.match(t):
        if m[1]:
            fy, h = int(m[1]), int(m[2])
        elif m[3]:
            fy, h = int(m[4]), int(m[3])
        else:
            fy, h = int(m[6]), int(m[5])
        return _fiscal_span(fy, fye, 6 * h - 5, 6 * h)
    if m := _YTD.match(t):
        n = int(m[1])
        if not 1 <= n <= 12:
            raise ValueError(f"{text!r}: a year-to-date period has 1 to 12 months")
        return _fiscal_span(int(m[2]), fye, 1, n)
    if m := _MONTH.match(t):
        year, month = int(m[1]), int(m[2])
        if not 1 <= month <= 12:
            raise ValueError(f"{text!r}: month {month} does not exist")
        return Period(_month_start(year, month), _month_end(year, month))
    if _DAY.match(t):
        d = dt.date.fromisoformat(t)
        return Period(d, d)
    if m := _INTERVAL.match(t):
        p = Period(dt.date.fromisoformat(m[1]), dt.date.fromisoformat(m[2]))
        if p.end < p.start:
            raise ValueError(f"{text!r}: the period ends before it starts")
        return p
    raise ValueError(f"{text!r} is not a period (FY2024, 2024Q4, 2024H1, 9M2024, 2024-03, 2024-12-31)")
