"""RFM: recency, frequency and monetary scores 1..5 over a period, for the customers with a
visit in it.

- Recency: days from the last visit to the as-of day (fewer is better, so the score is taken
  on the negated days); frequency: visits (purchases) in the period; monetary: net spend.
- Quantile thresholds: with the n values sorted ascending, the k-th threshold (k = 1..4) is
  the value at rank ceil(k x n / 5) (1-based), the largest value of the k-th fifth; a value's
  score is 1 + the number of thresholds it exceeds. So equal values always share a score, and
  the buckets may be unequal (many one-visit customers all score F = 1), as the quantile cut
  points of R's `rfm` package do; values 1..5 score 1..5.
- The three-digit score is 100 R + 10 F + M.

Segments, the first row that matches (every (R, F) pair is covered):

| segment         | R    | F    | M    |
|-----------------|------|------|------|
| Champions       | 4-5  | 4-5  | 4-5  |
| Loyal           | 3-5  | 3-5  | any  |
| New             | 5    | 1    | any  |
| Promising       | 4-5  | 1-2  | any  |
| At risk         | 1-2  | 3-5  | any  |
| Lost            | 1    | 1    | any  |
| Hibernating     | 1-2  | 1-2  | any  |
| Need attention  | 3    | 1-2  | any  |
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence

import msgspec

from domain.customers.activity import Totals

SEGMENTS: tuple[tuple[str, tuple[int, int], tuple[int, int], tuple[int, int]], ...] = (
    ("Champions", (4, 5), (4, 5), (4, 5)),
    ("Loyal", (3, 5), (3, 5), (1, 5)),
    ("New", (5, 5), (1, 1), (1, 5)),
    ("Promising", (4, 5), (1, 2), (1, 5)),
    ("At risk", (1, 2), (3, 5), (1, 5)),
    ("Lost", (1, 1), (1, 1), (1, 5)),
    ("Hibernating", (1, 2), (1, 2), (1, 5)),
    ("Need attention", (3, 3), (1, 2), (1, 5)),
)
SEGMENT_NAMES = tuple(s[0] for s in SEGMENTS)


def thresholds(values: Sequence[int]) -> tuple[int, ...]:
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return ()
    return tuple(ordered[(k * n + 4) // 5 - 1] for k in range(1, 5))


def score(value: int, cuts: Sequence[int]) -> int:
    return 1 + sum(1 for cut in cuts if value > cut)


def segment(r: int, f: int, m: int) -> str:
    for name, (r0, r1), (f0, f1), (m0, m1) in SEGMENTS:
        if r0 <= r <= r1 and f0 <= f <= f1 and m0 <= m <= m1:
            return name
    raise AssertionError((r, f, m))  # the table covers every (R, F)


class Scored(msgspec.Struct, frozen=True):
    customer: str
    recency_days: int
    visits: int
    spend_minor: int
    r: int
    f: int
    m: int
    score: int  # 100 R + 10 F + M
    segment: str


class SegmentRow(msgspec.Struct, frozen=True):
    segment: str
    customers: int
    spend_minor: int


class Rfm(msgspec.Struct, frozen=True):
    first_day: str
    last_day: str
    recency_cuts: list[int]  # days, as thresholds on the negated recency
    frequency_cuts: list[int]
    monetary_cuts: list[int]
    segments: list[SegmentRow]
    customers: list[Scored]  # by score descending, then customer


def scores(found: Mapping[str, Totals], as_of: int) -> tuple[list[Scored], tuple[int, ...],
                                                          tuple[int, ...], tuple[int, ...]]:
    visited = {c: t for c, t in found.items() if t.visits > 0}
    recency = {c: as_of - t.last_day for c, t in visited.items()}
    r_cuts = thresholds([-d for d in recency.values()])
    f_cuts = thresholds([t.visits for t in visited.values()])
    m_cuts = thresholds([t.spend_minor for t in visited.values()])
    rows = []
    for c, t in visited.items():
        r, f, m = (score(-recency[c], r_cuts), score(t.visits, f_cuts),
                   score(t.spend_minor, m_cuts))
        rows.append(Scored(c, recency[c], t.visits, t.spend_minor, r, f, m,
                           100 * r + 10 * f + m, segment(r, f, m)))
    rows.sort(key=lambda s: (-s.score, s.customer))
    return rows, r_cuts, f_cuts, m_cuts


def rfm(found: Mapping[str, Totals], as_of: int, first_day: str, last_day: str) -> Rfm:
    rows, r_cuts, f_cuts, m_cuts = scores(found, as_of)
    counts: Counter[str] = Counter()
    spend: Counter[str] = Counter()
    for s in rows:
        counts[s.segment] += 1
        spend[s.segment] += s.spend_minor
    return Rfm(first_day, last_day, [-c for c in r_cuts], list(f_cuts), list(m_cuts),
               [SegmentRow(name, counts[name], spend[name]) for name in SEGMENT_NAMES],
               rows)
