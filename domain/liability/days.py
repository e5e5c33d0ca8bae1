"""Reports count in whole UTC days: a day's sums are final once the log has passed its end, so a
report as of a past day never changes, and the read model keeps one row per (day, account,
entity, kind) instead of one per event. `--as-of 2026-12-03` is the end of that day
(2026-12-04T00:00:00Z, exclusive)."""

from __future__ import annotations

import datetime as dt
import re

from domain.common import InvalidInput, shown

DAY_US = 86_400 * 1_000_000
_EPOCH = dt.date(1970, 1, 1)
_PATTERN = re.compile(r"\d{4}-\d{2}-\d{2}")
FIRST_DAY = "1970-01-01"
LAST_DAY = "9999-12-31"
_LAST_NUMBER = (dt.date(9999, 12, 31) - _EPOCH).days


def day_number(at_us: int) -> int:
    """The UTC day (days since 1970-01-01) of a time in microseconds."""
    return min(at_us // DAY_US, _LAST_NUMBER)


names: dict[int, str] = {}  # day number -> its name


def day_name(number: int) -> str:
    """"YYYY-MM-DD" of a day number (memoised: a batch of the log spans a few days)."""
    name = names.get(number)
    if name is None:
        if len(names) > 100_000:
            names.clear()
        name = names[number] = (_EPOCH + dt.timedelta(days=max(0, number))).isoformat()
    return name


def day_of(at_us: int) -> str:
    return day_name(day_number(at_us))


def parse_day(text: str, field: str) -> str:
    """A "YYYY-MM-DD" input, checked (InvalidInput naming `field` otherwise)."""
    if not isinstance(text, str) or not _PATTERN.fullmatch(text):
        raise InvalidInput(field, f"must be a date YYYY-MM-DD (UTC), not {shown(text)}")
    try:
        parsed = dt.date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(field, f"is not a calendar date: {shown(text)}") from None
    if parsed < _EPOCH:
        raise InvalidInput(field, "must be 1970-01-01 or later")
    return parsed.isoformat()


def end_us(day: str) -> int:
    """The first microsecond after `day` (the end of the day, exclusive)."""
    return ((dt.date.fromisoformat(day) - _EPOCH).days + 1) * DAY_US


def previous(day: str) -> str:
    return (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()


def month_of(day: str) -> str:
    return day[:7]
