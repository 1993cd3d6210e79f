"""Units: the input text (``CNY bn``, ``m units``, ``%``) to a base unit and a power of ten.

Values are scaled by moving the decimal point (the text ``365906.4`` with ``CNY m`` becomes
``365906.4e6``, read once as a float), so a normalised value is the double nearest the exact
decimal, correct to the last digit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from store.errors import clip

SCALES: dict[str, int] = {
    "": 0, "k": 3, "thousand": 3, "thousands": 3, "000": 3, "'000": 3,
    "m": 6, "mn": 6, "mm": 6, "mio": 6, "million": 6, "millions": 6,
    "b": 9, "bn": 9, "billion": 9, "billions": 9,
    "t": 12, "tn": 12, "trillion": 12, "trillions": 12,
}

CURRENCIES = frozenset(
    """AED ARS AUD BGN BRL CAD CHF CLP CNY COP CZK DKK EGP EUR GBP HKD HUF IDR ILS INR ISK JPY
    KRW KWD MXN MYR NGN NOK NZD PEN PHP PKR PLN QAR RON RUB SAR SEK SGD THB TRY TWD UAH USD
    VND ZAR BHD BOB CRC DOP GTQ HNL JOD KES KZT LKR MAD NIO OMR PAB PYG UYU VES BDT GHS""".split()
)
CURRENCY_ALIASES = {"RMB": "CNY", "YUAN": "CNY", "US$": "USD", "$": "USD", "HK$": "HKD",
                    "€": "EUR", "£": "GBP", "NT$": "TWD"}

#: Count nouns all normalise to the base unit ``units``; the noun stays in ``as_reported``.
COUNTS = frozenset("""unit units vehicle vehicles car cars store stores piece pieces item items
    device devices location locations connector connectors station stations""".split())

#: Other base units, kept as they are (with their singular forms).
OTHERS: dict[str, str] = {
    "shares": "shares", "share": "shares", "employees": "employees", "employee": "employees",
    "people": "employees", "weeks": "weeks", "week": "weeks", "days": "days", "day": "days",
    "months": "months", "month": "months", "years": "years", "year": "years", "sqft": "sqft", "m2": "m2", "sqm": "m2", "mwh": "MWh", "gwh": "GWh",
    "mw": "MW", "gw": "GW", "kwh": "kWh", "ratio": "ratio", "pure": "ratio", "x": "ratio",
}


@dataclass(frozen=True)
class Unit:
    """A parsed unit: the stored base unit and the power of ten to scale values by."""

    base: str
    exponent: int


_PER = re.compile(r"^(?P<num>[^/]+)/(?P<den>[a-z]+)$", re.I)


def parse_unit(text: str) -> Unit:
    """Parse a unit text.

    Raises:
        ValueError: an unknown unit, with the reason.

    Example:
        >>> parse_unit("CNY bn"), parse_unit("%"), parse_unit("k units")
        (Unit(base='CNY', exponent=9), Unit(base='ratio', exponent=-2), Unit(base='units', exponent=3))
    """
    t = " ".join(text.strip().split())
    if not t:
        raise ValueError("no unit given")
    if t in ("%", "percent", "pct"):
        return Unit("ratio", -2)
    if t.lower() in ("pp", "ppt", "percentage points", "percentage point"):
        return Unit("ratio", -2)
    if t.lower() in ("bp", "bps", "basis points"):
        return Unit("ratio", -4)
    if m := _PER.match(t.replace(" ", "")):  # USD/shares, CNY/unit
        num = parse_unit(m["num"])
        den = m["den"].lower()
        den_base = "share" if den in ("share", "shares") else "unit" if den.rstrip("s") in {c.rstrip("s") for c in COUNTS} else None
        if den_base is None:
            raise ValueError(f"unknown unit {clip(text)!r}: cannot divide by {clip(m['den'])!r}")
        return Unit(f"{num.base}/{den_base}", num.exponent)
    words = t.split(" ")
    scale = 0
    rest: list[str] = []
    for w in words:
        if len(words) > 1 and w.lower() in SCALES:
            scale += SCALES[w.lower()]
        else:
            rest.append(w)
    if len(rest) != 1:
        raise ValueError(f"unknown unit {clip(text)!r}")
    word = rest[0]
    upper = word.upper()
    if upper in CURRENCY_ALIASES:
        return Unit(CURRENCY_ALIASES[upper], scale)
    if upper in CURRENCIES and (word.isupper() or len(words) > 1):
        return Unit(upper, scale)
    low = word.lower()
    if low in COUNTS:
        return Unit("units", scale)
    if low in OTHERS:
        return Unit(OTHERS[low], scale)
    # a currency written with a glued scale: "CNYm", "USDbn"
    if m := re.fullmatch(r"([A-Z]{3})(k|m|mn|bn|b|tn)", word):
        if m[1] in CURRENCIES:
            return Unit(m[1], scale + SCALES[m[2]])
    raise ValueError(f"unknown unit {clip(text)!r} (use a currency code with k/m/bn, a count such as "
                     f"'units', '%', 'pp', 'weeks', 'm2')")
