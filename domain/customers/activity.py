"""The rows every view is computed from, and periods of local days.

An `Activity` is one customer's purchases (visits) and returns at one store in one local hour
of one local day: `day` is the store's local date as a day number (days since 1970-01-01),
`hour` 0..23 in the store's timezone. `spend_minor` is net spend (what the purchases cost the
customer after discounts, less what returns took back), `margin_minor` the gross margin the
purchase lines recorded (per unit x quantity, less the returned units' margin). A return is a
row with `visits` 0 on the day and hour it happened.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import NamedTuple

import msgspec

from domain.common import InvalidInput

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
MONTHS_MAX = 120


class Activity(NamedTuple):
    customer: str
    store_id: str
    partner_id: str
    day: int
    hour: int
    visits: int
    spend_minor: int
    margin_minor: int


def day_number(date: str) -> int:
    """"YYYY-MM-DD" -> days since 1970-01-01."""
    return dt.date.fromisoformat(date).toordinal() - EPOCH_ORDINAL


def day_name(number: int) -> str:
    return dt.date.fromordinal(number + EPOCH_ORDINAL).isoformat()


def weekday(day: int) -> int:
    """0 = Monday (1970-01-01 was a Thursday)."""
    return (day + 3) % 7


AHEAD_US = 14 * 3_600_000_000  # the furthest a local clock runs ahead of UTC (UTC+14)


def today(now_us: int) -> int:
    """The default as-of day: today in the furthest-ahead timezone, so that every store's
    today (its local date) is in it."""
    return (now_us + AHEAD_US) // 86_400_000_000


def parse_day(text: str, field: str) -> int:
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise InvalidInput(field, "must be a day YYYY-MM-DD")
    try:
        number = day_number(text)
    except ValueError:
        raise InvalidInput(field, "must be a day YYYY-MM-DD") from None
    if number < 0:
        raise InvalidInput(field, "must be 1970-01-01 or later")
    return number


class Period(msgspec.Struct, frozen=True):
    """Local days `first`..`last`, both included."""

    first: int
    last: int

    def __contains__(self, day: object) -> bool:
        return isinstance(day, int) and self.first <= day <= self.last

    def names(self) -> tuple[str, str]:
        return day_name(self.first), day_name(self.last)


def _months_back(day: int, months: int) -> int:
    """The same day of the month `months` earlier (the month's last day when shorter)."""
    date = dt.date.fromordinal(day + EPOCH_ORDINAL)
    index = date.year * 12 + date.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    last = (dt.date(year + (month == 12), month % 12 + 1, 1) - dt.timedelta(days=1)).day
    return dt.date(year, month, min(date.day, last)).toordinal() - EPOCH_ORDINAL


def check_months(months: int, field: str = "months") -> int:
    if not 1 <= months <= MONTHS_MAX:
        raise InvalidInput(field, f"must be 1..{MONTHS_MAX} months")
    return months


def period_ending(as_of: int, months: int = 12) -> Period:
    """The `months` months that end with day `as_of`: from the day after the same date
    `months` earlier (the last 12 months as of 2026-12-03 are 2025-12-04..2026-12-03)."""
    return Period(_months_back(as_of, months) + 1, as_of)


def previous(period: Period, months: int = 12) -> Period:
    """The period of the same length in months that ends the day before `period` starts."""
    return period_ending(period.first - 1, months)


class Totals(msgspec.Struct):
    visits: int = 0
    spend_minor: int = 0
    margin_minor: int = 0
    first_day: int = 0  # of a visit (0 when none)
    last_day: int = 0


def totals(rows: Iterable[Activity], period: Period) -> dict[str, Totals]:
    """Per customer with a row in `period`: visits, net spend and margin, first and last
    day with a visit."""
    found: dict[str, Totals] = {}
    for r in rows:
        if not period.first <= r.day <= period.last:
            continue
        t = found.get(r.customer)
        if t is None:
            t = found[r.customer] = Totals()
        t.visits += r.visits
        t.spend_minor += r.spend_minor
        t.margin_minor += r.margin_minor
        if r.visits:
            if not t.first_day or r.day < t.first_day:
                t.first_day = r.day
            if r.day > t.last_day:
                t.last_day = r.day
    return found


def visit_days(rows: Iterable[Activity], last: int) -> dict[str, list[int]]:
    """Per customer, the distinct days with a visit up to day `last`, in order."""
    found: dict[str, set[int]] = defaultdict(set)
    for r in rows:
        if r.visits > 0 and r.day <= last:
            found[r.customer].add(r.day)
    return {c: sorted(d) for c, d in found.items()}


def share_bps(part: int, whole: int) -> int:
    """`part` of `whole` in basis points, rounded down (0 when the whole is not positive)."""
    return part * 10_000 // whole if whole > 0 else 0
