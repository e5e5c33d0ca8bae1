"""RFM: recency, frequency and monetary scores 1..5 over a period, for the customers with a
visit in it.

- Recency: days from the last visit to the as-of day (fewer is better, so the score is taken
  on the negated days); frequency: visits (purchases) in the period; monetary: net spend.
- Quantile buckets, equal values together: with the n values sorted ascending, rank r covers
  the quantiles (r - 1) / n .. r / n; a group of equal values at ranks a..b sits at the middle
  of its ranks, q = (a + b - 1) / 2n, and scores 1 + the number of k = 1..4 with q > k / 5.
  So equal values always share a score, a distinct value scores as its own rank does
  (values 1..5 score 1..5; of ten values, ranks 1-2 score 1, 3-4 score 2, ...), and a group of
  equal values takes the bucket of its middle: when every customer has the same value they
  all score 3 (not 1: "everyone shopped the same" is the middle, neither lost nor champion);
  six one-visit customers of ten sit at q = 0.3 and score F = 2. The k-th threshold is the
  largest value scoring k or less (when no value does, one less than the smallest value), so
  a score is also 1 + the number of thresholds the value exceeds.
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


def buckets(values: Sequence[int]) -> dict[int, int]:
    """value -> score by the rule above."""
    ordered = sorted(values)
    n = len(ordered)
    found: dict[int, int] = {}
    i = 0
    while i < n:
        j = i
        while j < n and ordered[j] == ordered[i]:
            j += 1
        middle = i + j - 1 + 1  # a + b - 1 with ranks a = i + 1, b = j
        found[ordered[i]] = 1 + sum(1 for k in range(1, 5) if 5 * middle > 2 * k * n)
        i = j
    return found


def thresholds(values: Sequence[int]) -> tuple[int, ...]:
    """The four thresholds (empty without values): the k-th is the largest value scoring k
    or less, else one less than the smallest value."""
    found = buckets(values)
    if not found:
        return ()
    low = min(found) - 1
    return tuple(max((v for v, s in found.items() if s <= k), default=low) for k in range(1, 5))


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
