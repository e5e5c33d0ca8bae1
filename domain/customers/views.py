"""The six views, each from the activity rows of one scope (every row up to the as-of day the
caller may see) and the as-of day: what `loyalty-ledger report` and InsightsService return."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence

from domain.customers import affinity as af
from domain.customers import lifecycle as lc
from domain.customers import matrix as mx
from domain.customers import pyramid as pm
from domain.customers import rfm as rf
from domain.customers import visits as vt
from domain.customers.activity import (
    Activity,
    Period,
    Totals,
    day_name,
    period_ending,
    previous,
    totals,
    visit_days,
)


def periods(as_of: int, months: int) -> tuple[Period, Period]:
    current = period_ending(as_of, months)
    return current, previous(current, months)


def pyramid(rows: Sequence[Activity], as_of: int, months: int = 12) -> pm.Pyramid:
    current, before = periods(as_of, months)
    now = {c: t.spend_minor for c, t in totals(rows, current).items()}
    then = {c: t.spend_minor for c, t in totals(rows, before).items()}
    return pm.pyramid(now, then, *current.names())


def matrix(rows: Sequence[Activity], as_of: int, months: int = 12,
           sales_split: int | None = None, margin_split: int | None = None) -> mx.Matrix:
    current = period_ending(as_of, months)
    figures = {c: (t.spend_minor, t.margin_minor) for c, t in totals(rows, current).items()}
    return mx.matrix(figures, *current.names(), sales_split, margin_split)


def rfm(rows: Sequence[Activity], as_of: int, months: int = 12) -> rf.Rfm:
    current = period_ending(as_of, months)
    return rf.rfm(totals(rows, current), as_of, *current.names())


def churn(rows: Sequence[Activity], as_of: int, months: int = 12) -> lc.Churn:
    current, before = periods(as_of, months)
    return churn_from(visit_days(rows, as_of), totals(rows, before), totals(rows, current),
                      as_of, months)


def churn_from(history: Mapping[str, Sequence[int]], then: Mapping[str, Totals],
               now: Mapping[str, Totals], as_of: int, months: int = 12) -> lc.Churn:
    """From each customer's visit days up to `as_of` and their totals in the previous and
    the current period."""
    _, before = periods(as_of, months)
    flagged = [lc.AtRisk(c, day_name(last), gap, interval)
               for c, last, gap, interval in lc.became_at_risk(history, as_of)]
    scored, *_ = rf.scores(then, before.last)
    segments = {s.customer: s.segment for s in scored}
    spend = lc.segment_spend(segments, {c: t.spend_minor for c, t in then.items()},
                             {c: t.spend_minor for c, t in now.items()}, rf.SEGMENT_NAMES)
    return lc.Churn(day_name(as_of), lc.statuses(history, as_of), flagged, spend)


def visit_times(rows: Sequence[Activity], as_of: int, months: int = 12) -> vt.VisitTimes:
    return vt.visit_times(rows, period_ending(as_of, months))


def affinity(rows: Sequence[Activity], as_of: int, months: int = 12,
             elsewhere: Collection[str] = (), flows: bool = True, top: int = 20,
             when: Callable[[Activity], int] = af.local_hour) -> af.Affinity:
    return af.affinity(rows, period_ending(as_of, months), elsewhere, flows, top, when)
