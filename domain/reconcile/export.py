"""The ledger's own totals for a partner to check on its side: per store, per day (the store's
own calendar, from its time zone), per type and currency, the number of movements and their
amount. The rows themselves are the journal's format (journal.write_csv): a partner that feeds
them back to `reconcile` finds every row matched."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from zoneinfo import ZoneInfo

import msgspec

from domain.reconcile.journal import JournalRow

TOTAL_COLUMNS = ("store_id", "day", "type", "currency", "count", "amount_minor")


class DayTotal(msgspec.Struct, frozen=True, order=True):
    store_id: str
    day: str  # YYYY-MM-DD in the store's time zone
    type: str
    currency: str
    count: int
    amount_minor: int


def local_day(recorded_at_us: int, timezone: str) -> str:
    moment = dt.datetime.fromtimestamp(recorded_at_us // 1_000_000, dt.UTC)
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


def day_totals(rows: Iterable[tuple[JournalRow, int]],
               timezones: Mapping[str, str]) -> list[DayTotal]:
    """`rows`: (movement, recorded_at_us); `timezones`: store id -> IANA zone. Sorted by
    store, day, type, currency."""
    sums: dict[tuple[str, str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for row, at_us in rows:
        total = sums[row.store_id, local_day(at_us, timezones[row.store_id]), row.type,
                     row.currency]
        total[0] += 1
        total[1] += row.amount_minor
    return [DayTotal(*key, count, amount) for key, (count, amount) in sorted(sums.items())]
