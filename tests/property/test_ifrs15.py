"""IFRS 15 for points on random programs, cohorts, estimates and methods: the schedule ties
every period to the minor unit, revenue never passes what was allocated, each cohort's
cumulative revenue is allocated x redeemed / expected within the facts (checked against the
cohort table directly), every figure is an int, a period never depends on later ones, and a
cohort whose expected redemptions are its actual final redemptions releases its whole
liability by the end."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.common import AMOUNT_MAX_MINOR
from domain.finance.cohorts import (
    FACE_VALUE_MICROS_MAX,
    POINTS_MAX,
    Cohort,
    PeriodActivity,
    cohorts_from_activity,
    round_half_up,
)
from domain.finance.estimates import Method, PublishedEstimate
from domain.finance.ifrs15 import (
    AllocationRow,
    CohortRow,
    Ifrs15Report,
    ScheduleRow,
    ifrs15_report,
    recognise_cohort,
)

PROGRAMS = ["retail", "hotel", "air"]
CURRENCIES = ["EUR", "JPY", "KWD"]


def split(draw: st.DrawFn, total: int, parts: int) -> list[int]:
    """`parts` counts adding up to at most `total` (drawn as shares, so large totals still
    give large parts)."""
    out = []
    left = total
    for _ in range(parts):
        share = draw(st.sampled_from([0, 0, 1, 10, 25, 50, 90, 100]))
        part = left * share // 100
        out.append(part)
        left -= part
    return out


@st.composite
def cohort_of(draw: st.DrawFn, program: str, currency: str, periods: list[str], i: int,
              close: bool) -> Cohort:
    earned = draw(st.one_of(st.integers(0, 2_000), st.integers(0, POINTS_MAX)))
    value = draw(st.integers(1, max(1, min(10**8, FACE_VALUE_MICROS_MAX // max(earned, 1)))))
    sales = draw(st.one_of(st.integers(0, 10**6), st.integers(0, AMOUNT_MAX_MINOR)))
    goods_ssp = draw(st.one_of(st.none(), st.integers(1, AMOUNT_MAX_MINOR)))
    ages = len(periods) - i
    moves = split(draw, earned, 2 * ages)
    redeemed, expired = moves[0::2], moves[1::2]
    if close:  # what is left at the last age is redeemed or expired
        left = earned - sum(moves)
        part = left * draw(st.sampled_from([0, 30, 100])) // 100
        redeemed[-1] += part
        expired[-1] += left - part
    return Cohort(program, currency, periods[i], earned, earned * value, sales,
                  tuple(redeemed), tuple(expired), goods_ssp)


@st.composite
def scenarios(draw: st.DrawFn, close: bool = False):
    periods = [f"P{i}" for i in range(draw(st.integers(1, 6)))]
    programs = draw(st.lists(st.sampled_from(PROGRAMS), min_size=1, max_size=2, unique=True))
    method = draw(st.sampled_from(list(Method)))
    cohorts: list[Cohort] = []
    estimates: list[PublishedEstimate] = []
    for program in programs:
        currency = draw(st.sampled_from(CURRENCIES))
        first = draw(st.integers(0, len(periods) - 1))
        for i in range(first, len(periods)):
            if i == first or draw(st.booleans()):
                cohorts.append(draw(cohort_of(program, currency, periods, i, close)))
        later = draw(st.lists(st.integers(first, len(periods) - 1), max_size=3))
        rated = [first, *sorted(set(later) - {first})]
        estimates += [PublishedEstimate(program, periods[i], draw(st.integers(0, 10_000)))
                      for i in rated]
    return cohorts, periods, method, estimates if method == Method.PUBLISHED else []


def run(scenario) -> Ifrs15Report:
    cohorts, periods, method, estimates = scenario
    return ifrs15_report(cohorts, periods, method, estimates)


def assert_ints(row) -> None:
    for name in row.__struct_fields__:
        value = getattr(row, name)
        if name.endswith("_minor") or name.startswith("points_") or name in (
                "expected_points", "redeemed_to_date", "expired_to_date"):
            assert type(value) is int, (name, value)


@settings(max_examples=300, deadline=None)
@given(scenarios())
def test_the_schedule_ties_every_period_and_never_recognises_more_than_allocated(
        scenario) -> None:
    cohorts, periods, _, _ = scenario
    report = run(scenario)
    by_key = {(c.program, c.period): c for c in cohorts}
    position = {p: i for i, p in enumerate(periods)}
    for row in (*report.schedule, *report.allocations, *report.cohorts):
        assert_ints(row)
    for a in report.allocations:
        assert isinstance(a, AllocationRow)
        assert a.goods_minor + a.points_minor == a.sales_minor
        assert a.goods_minor >= 0 and a.points_minor >= 0
    programs = {c.program for c in cohorts}
    for program in programs:
        rows: list[ScheduleRow] = [r for r in report.schedule if r.program == program]
        first = min(position[c.period] for c in cohorts if c.program == program)
        assert [r.period for r in rows] == periods[first:]
        closing = allocated = recognised = 0
        for r in rows:
            assert r.opening_minor == closing
            assert r.recognised_minor == r.redemptions_minor + r.breakage_minor + \
                r.catch_up_minor
            assert r.opening_minor + r.allocated_minor - r.recognised_minor == r.closing_minor
            assert r.redemptions_minor >= 0
            allocated += r.allocated_minor
            recognised += r.recognised_minor
            assert 0 <= recognised <= allocated
            assert r.closing_minor == allocated - recognised >= 0
            closing = r.closing_minor
    # Each cohort, straight from the cohort table: the expected redemptions used lie within
    # the facts, and the revenue to date is allocated x redeemed / expected, half up.
    allocated_of = {(a.program, a.period): a.points_minor for a in report.allocations}
    for row in report.cohorts:
        assert isinstance(row, CohortRow)
        cohort = by_key[row.program, row.cohort_period]
        age = position[row.period] - position[row.cohort_period]
        redeemed = sum(cohort.redeemed_by_age[:age + 1])
        expired = sum(cohort.expired_by_age[:age + 1])
        assert (row.redeemed_to_date, row.expired_to_date) == (redeemed, expired)
        assert redeemed <= row.expected_points <= cohort.points_earned - expired
        a = allocated_of[row.program, row.cohort_period]
        assert row.allocated_minor == a
        want = a if row.expected_points == 0 else \
            round_half_up(Fraction(a * redeemed, row.expected_points))
        assert row.cumulative_minor == want
        assert row.liability_minor == a - want >= 0


@settings(max_examples=150, deadline=None)
@given(scenarios(close=True))
def test_when_every_point_is_redeemed_or_expired_the_whole_liability_is_released(
        scenario) -> None:
    report = run(scenario)
    for program in {r.program for r in report.schedule}:
        rows = [r for r in report.schedule if r.program == program]
        assert rows[-1].points_open == 0
        assert rows[-1].closing_minor == 0
        assert sum(r.recognised_minor for r in rows) == sum(r.allocated_minor for r in rows)


@settings(max_examples=150, deadline=None)
@given(scenarios(), st.data())
def test_a_period_never_depends_on_later_periods(scenario, data) -> None:
    cohorts, periods, method, estimates = scenario
    keep = data.draw(st.integers(1, len(periods)))
    short_periods = periods[:keep]
    short = [Cohort(c.program, c.currency, c.period, c.points_earned, c.face_value_micros,
                    c.sales_minor, c.redeemed_by_age[:keep - int(c.period[1:])],
                    c.expired_by_age[:keep - int(c.period[1:])], c.goods_ssp_minor)
             for c in cohorts if int(c.period[1:]) < keep]
    programs = {c.program for c in short}
    short_estimates = [e for e in estimates
                       if int(e.effective_from[1:]) < keep and e.program in programs]
    if not short:
        return
    full = run(scenario)
    part = ifrs15_report(short, short_periods, method, short_estimates)
    assert part.schedule == tuple(r for r in full.schedule if r.period in short_periods)
    assert part.estimates == tuple(e for e in full.estimates if e.period in short_periods)


@st.composite
def cohort_histories(draw: st.DrawFn):
    """A cohort's (redeemed, expired) to date per period, ending with nothing open."""
    earned = draw(st.one_of(st.integers(1, 1_000), st.integers(1, POINTS_MAX)))
    periods = draw(st.integers(1, 8))
    moves = split(draw, earned, 2 * periods)
    left = earned - sum(moves)
    moves[-2] += left * draw(st.sampled_from([0, 50, 100])) // 100
    moves[-1] += earned - sum(moves)
    history, redeemed, expired = [], 0, 0
    for k in range(periods):
        redeemed += moves[2 * k]
        expired += moves[2 * k + 1]
        history.append((redeemed, expired))
    return earned, history


@settings(max_examples=300, deadline=None)
@given(cohort_histories(), st.integers(0, AMOUNT_MAX_MINOR))
def test_expected_equal_to_the_actual_final_redemptions_releases_all_through_the_ratio(
        history, allocated) -> None:
    earned, to_date = history
    final = to_date[-1][0]
    steps = recognise_cohort(allocated, earned, [(r, x, final) for r, x in to_date])
    # The estimate is right all along: no catch-up, no expiry beyond it; the ratio alone
    # takes the cohort to its whole allocation, never past it. (None redeemed and none
    # expected: all of it is breakage at once, B46's remote case.)
    assert all(s.catch_up_minor == 0 for s in steps)
    if final:
        assert all(s.breakage_final_minor == 0 for s in steps)
    else:
        assert steps[0].breakage_final_minor == allocated
    cumulative = 0
    for s in steps:
        cumulative += s.recognised_minor
        assert 0 <= cumulative <= allocated
        assert s.state.cumulative_minor == cumulative
        assert type(s.recognised_minor) is int
    assert cumulative == allocated


@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_period_totals_become_cohorts_that_keep_every_total_oldest_first(scenario) -> None:
    cohorts, periods, method, estimates = scenario
    position = {p: i for i, p in enumerate(periods)}
    activity = []
    totals: dict[tuple[str, int], list[int]] = {}
    for c in cohorts:
        start = position[c.period]
        totals.setdefault((c.program, start), [0, 0])
        for k, points in enumerate(c.redeemed_by_age):
            totals.setdefault((c.program, start + k), [0, 0])[0] += points
        for k, points in enumerate(c.expired_by_age):
            totals.setdefault((c.program, start + k), [0, 0])[1] += points
    by_key = {(c.program, position[c.period]): c for c in cohorts}
    for (program, t), (redeemed, expired) in sorted(totals.items()):
        c = by_key.get((program, t))
        currency = next(x.currency for x in cohorts if x.program == program)
        activity.append(PeriodActivity(
            program, currency, periods[t], c.points_earned if c else 0,
            c.face_value_micros if c else 0, c.sales_minor if c else 0, redeemed, expired,
            c.goods_ssp_minor if c else None))
    rebuilt = cohorts_from_activity(activity, periods)
    # Same points earned per cohort; same redemptions and expiries per program and period.
    assert {(c.program, c.period, c.points_earned) for c in rebuilt} == \
        {(c.program, c.period, c.points_earned) for c in cohorts
         if c.points_earned or c.sales_minor}
    again: dict[tuple[str, int], list[int]] = {}
    for c in rebuilt:
        start = position[c.period]
        assert sum(c.redeemed_by_age) + sum(c.expired_by_age) <= c.points_earned
        for k, points in enumerate(c.redeemed_by_age):
            again.setdefault((c.program, start + k), [0, 0])[0] += points
        for k, points in enumerate(c.expired_by_age):
            again.setdefault((c.program, start + k), [0, 0])[1] += points
    assert {k: v for k, v in again.items() if v != [0, 0]} == \
        {k: v for k, v in totals.items() if v != [0, 0]}
    report = ifrs15_report(activity, periods, method, estimates)
    for r in report.schedule:
        assert r.opening_minor + r.allocated_minor - r.recognised_minor == r.closing_minor >= 0
