"""Visit times: visits and net spend by weekday and hour of the store's local time (the
day and minute the store's clock showed, recorded with each purchase; a return counts its
spend at the local hour it happened and no visit)."""

from __future__ import annotations

from collections.abc import Iterable

import msgspec

from domain.customers.activity import Activity, Period, weekday

WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Cell(msgspec.Struct, frozen=True):
    weekday: int  # 0 = Monday
    hour: int
    visits: int
    spend_minor: int


class VisitTimes(msgspec.Struct, frozen=True):
    first_day: str
    last_day: str
    visits: int
    spend_minor: int
    cells: list[Cell]  # every weekday x hour with a visit or spend, Monday 0h first
    by_weekday: list[Cell]  # hour -1: the whole day
    by_hour: list[Cell]  # weekday -1: every day


def grid(rows: Iterable[Activity], period: Period) -> dict[tuple[int, int], list[int]]:
    found: dict[tuple[int, int], list[int]] = {}
    for r in rows:
        if period.first <= r.day <= period.last:
            cell = found.setdefault((weekday(r.day), r.hour), [0, 0])
            cell[0] += r.visits
            cell[1] += r.spend_minor
    return found


def visit_times(rows: Iterable[Activity], period: Period) -> VisitTimes:
    return from_grid(grid(rows, period), period)


def from_grid(cells: dict[tuple[int, int], list[int]], period: Period) -> VisitTimes:
    """From (weekday, hour) -> [visits, spend]."""
    days = [[0, 0] for _ in range(7)]
    hours = [[0, 0] for _ in range(24)]
    for (day, hour), (visits, spend) in cells.items():
        days[day][0] += visits
        days[day][1] += spend
        hours[hour][0] += visits
        hours[hour][1] += spend
    first, last = period.names()
    return VisitTimes(first, last, sum(v for v, _ in days), sum(s for _, s in days),
                      [Cell(d, h, *cells[(d, h)]) for d, h in sorted(cells)],
                      [Cell(d, -1, *days[d]) for d in range(7)],
                      [Cell(-1, h, *hours[h]) for h in range(24)])
