"""Lifecycle and churn warning, judged against each customer's own rhythm.

As of day D, from the customer's distinct visit days up to D (their whole history, not only
the period):
- usual interval: the lower median of the gaps between consecutive visit days, at least
  `MIN_INTERVAL_DAYS`; for a customer with fewer than `MIN_VISITS` visit days there is no
  rhythm to judge, and the fixed thresholds below apply instead;
- gap: days from the last visit to D;
- LAPSED when the gap is more than `LAPSED_FACTOR` usual intervals (fixed: `LAPSED_DAYS`);
- else AT_RISK when it is more than `AT_RISK_FACTOR` usual intervals (fixed: `AT_RISK_DAYS`);
- else NEW when the first visit is at most `NEW_DAYS` days before D;
- else ACTIVE.

"Became at risk this week": AT_RISK as of D and NEW or ACTIVE as of D - 7.
Segments whose spending fell: the customers grouped by their RFM segment as of the end of the
previous period; each group's net spend in the previous period against this one.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

MIN_VISITS = 3
MIN_INTERVAL_DAYS = 7
AT_RISK_FACTOR = 2
LAPSED_FACTOR = 4
AT_RISK_DAYS = 60
LAPSED_DAYS = 180
NEW_DAYS = 30
WEEK_DAYS = 7
STATUSES = ("NEW", "ACTIVE", "AT_RISK", "LAPSED")


def usual_interval(days: Sequence[int]) -> int | None:
    """The lower median gap between visit days (at least MIN_INTERVAL_DAYS), or None with
    fewer than MIN_VISITS visit days. `days` sorted and distinct."""
    if len(days) < MIN_VISITS:
        return None
    gaps = sorted(b - a for a, b in itertools.pairwise(days))
    return max(gaps[(len(gaps) - 1) // 2], MIN_INTERVAL_DAYS)


def status(days: Sequence[int], as_of: int) -> str | None:
    """The lifecycle status as of `as_of` from the sorted distinct visit days (those after
    `as_of` are not looked at); None before the first visit."""
    seen = [d for d in days if d <= as_of]
    if not seen:
        return None
    gap = as_of - seen[-1]
    interval = usual_interval(seen)
    at_risk, lapsed = ((AT_RISK_DAYS, LAPSED_DAYS) if interval is None
                       else (AT_RISK_FACTOR * interval, LAPSED_FACTOR * interval))
    if gap > lapsed:
        return "LAPSED"
    if gap > at_risk:
        return "AT_RISK"
    if as_of - seen[0] <= NEW_DAYS:
        return "NEW"
    return "ACTIVE"


class AtRisk(msgspec.Struct, frozen=True):
    customer: str
    last_visit: str
    gap_days: int
    usual_interval_days: int  # 0: too few visits, the fixed threshold applied


class SegmentSpend(msgspec.Struct, frozen=True):
    segment: str
    customers: int
    previous_spend_minor: int
    current_spend_minor: int
    change_minor: int
    fell: bool


class StatusCount(msgspec.Struct, frozen=True):
    status: str
    customers: int


class Churn(msgspec.Struct, frozen=True):
    as_of: str
    statuses: list[StatusCount]
    became_at_risk: list[AtRisk]  # this week, most overdue first
    segments: list[SegmentSpend]


def became_at_risk(visits: Mapping[str, Sequence[int]],
                   as_of: int) -> list[tuple[str, int, int, int]]:
    """(customer, last visit day, gap, usual interval or 0) of those AT_RISK as of `as_of`
    that were NEW or ACTIVE a week before; most overdue (gap / interval) first."""
    found = []
    for customer, days in visits.items():
        if status(days, as_of) != "AT_RISK":
            continue
        if status(days, as_of - WEEK_DAYS) not in ("NEW", "ACTIVE"):
            continue
        seen = [d for d in days if d <= as_of]
        found.append((customer, seen[-1], as_of - seen[-1], usual_interval(seen) or 0))
    found.sort(key=lambda f: (-(f[2] * 1_000 // (f[3] or AT_RISK_DAYS)), f[0]))
    return found


def statuses(visits: Mapping[str, Sequence[int]], as_of: int) -> list[StatusCount]:
    counts = Counter(status(days, as_of) for days in visits.values())
    return [StatusCount(s, counts[s]) for s in STATUSES]


def segment_spend(segments: Mapping[str, str], previous: Mapping[str, int],
                  current: Mapping[str, int], order: Sequence[str]) -> list[SegmentSpend]:
    """Per segment (customer -> segment as of the previous period's end): its customers'
    net spend in the previous period and in this one."""
    sums: dict[str, list[int]] = {name: [0, 0, 0] for name in order}
    for customer, name in segments.items():
        row = sums.setdefault(name, [0, 0, 0])
        row[0] += 1
        row[1] += previous.get(customer, 0)
        row[2] += current.get(customer, 0)
    return [SegmentSpend(name, n, before, now, now - before, now < before)
            for name, (n, before, now) in sums.items()]
