"""IFRS 15 for points, worked out by hand.

The standard's own example first (IFRS 15 Illustrative Examples, Example 52 "Customer loyalty
programme", IE267-IE270): customers buy products for CU100,000 and earn 10,000 points worth
CU1 each; the entity expects 9,500 to be redeemed, so a point's stand-alone selling price is
CU0.95 (CU9,500 in all) and the sales are split CU91,324 goods / CU8,676 points. Year 1: 4,500
points redeemed of 9,500 expected, revenue CU4,110, liability CU4,566. Year 2: 8,500 redeemed to
date, 9,700 now expected, cumulative revenue CU7,603, so CU3,493 in year 2 and a liability of
CU1,073. The standard rounds to whole currency units; so does a currency of exponent 0 here.

Then the parts of each period's revenue, expiry, estimates out of line with the facts, the
cohort run-off estimate on a small triangle, the per-period totals turned into cohorts, and
every bad input.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

from domain.common import AMOUNT_MAX_MINOR, InvalidInput
from domain.finance.cohorts import (
    PERIODS_MAX,
    Cohort,
    PeriodActivity,
    cohorts_from_activity,
    round_half_up,
)
from domain.finance.estimates import Method, PublishedEstimate
from domain.finance.ifrs15 import (
    Allocation,
    CohortState,
    allocate,
    ifrs15_report,
    points_ssp,
    recognise,
    recognise_cohort,
)

UNIT = 1_000_000  # a point worth one minor unit, in micros


def published(program: str, *rates: tuple[str, int]) -> list[PublishedEstimate]:
    return [PublishedEstimate(program, period, bp) for period, bp in rates]


# -- The standard's example -------------------------------------------------------------------


def example_52(currency: str, unit_minor: int):
    """Example 52 with amounts in minor units of `currency` (`unit_minor` per CU)."""
    cohort = Cohort("retail", currency, "year 1", points_earned=10_000,
                    face_value_micros=10_000 * unit_minor * UNIT,
                    sales_minor=100_000 * unit_minor, redeemed_by_age=(4_500, 4_000))
    return ifrs15_report([cohort], ["year 1", "year 2"], Method.PUBLISHED,
                         published("retail", ("year 1", 9_500), ("year 2", 9_700)))


def test_ifrs15_example_52_customer_loyalty_programme() -> None:
    report = example_52("JPY", 1)  # JPY has no minor unit: amounts are whole units
    [allocation] = report.allocations
    assert allocation.points_ssp_minor == 9_500  # 10,000 points x CU1 x 95 %
    assert allocation.expected_rate == Fraction(95, 100)
    assert (allocation.goods_minor, allocation.points_minor) == (91_324, 8_676)

    year1, year2 = report.schedule
    assert (year1.opening_minor, year1.allocated_minor) == (0, 8_676)
    assert year1.recognised_minor == 4_110  # 4,500 / 9,500 x 8,676
    assert year1.closing_minor == 4_566  # 8,676 - 4,110
    assert year1.goods_revenue_minor == 91_324
    assert year2.opening_minor == 4_566
    assert year2.recognised_minor == 3_493  # 8,500 / 9,700 x 8,676 = 7,603, less 4,110
    assert year1.recognised_minor + year2.recognised_minor == 7_603
    assert year2.closing_minor == 1_073  # 8,676 - 7,603

    # The parts: year 1 recognises the 4,500 points at 8,676 / 10,000 each (3,904.2) and the
    # breakage share of them (4,109.68 - 3,904.2); year 2 first takes back the effect of
    # expecting 9,700 instead of 9,500 on year 1's 4,500 points (4,024.95 - 4,110), then
    # recognises the 4,000 points of the year (3,470.4) and their breakage share.
    assert (year1.redemptions_minor, year1.breakage_minor, year1.catch_up_minor) == \
        (3_904, 206, 0)
    assert (year2.catch_up_minor, year2.redemptions_minor, year2.breakage_minor) == \
        (-85, 3_470, 108)
    assert (year1.points_open, year1.points_expected_to_redeem) == (5_500, 5_000)
    assert (year2.points_open, year2.points_expected_to_redeem) == (1_500, 1_200)
    assert [e.redemption_rate_bp for e in report.estimates] == [9_500, 9_700]


def test_example_52_in_cents_rounds_to_the_standards_whole_units() -> None:
    report = example_52("EUR", 100)
    [allocation] = report.allocations
    year1, year2 = report.schedule
    whole = [round_half_up(Fraction(v, 100)) for v in (
        allocation.goods_minor, allocation.points_minor, year1.recognised_minor,
        year1.closing_minor, year2.recognised_minor, year2.closing_minor,
        year1.recognised_minor + year2.recognised_minor)]
    assert whole == [91_324, 8_676, 4_110, 4_566, 3_493, 1_073, 7_603]
    assert (allocation.points_minor, year1.recognised_minor, year2.recognised_minor) == \
        (867_580, 410_959, 349_292)  # 8,675.80; 4,109.59; 3,492.92


def test_kpmg_handbook_examples_10a_and_10b_recognition() -> None:
    """KPMG, Revenue - IFRS 15 handbook (2019), Examples 10A and 10B, its variant of
    IE267-IE270: 9,000 allocated to 10,000 points; 4,500 redeemed of 9,700 expected, then a
    further 4,000 with the estimate raised to 9,900 (10A) or lowered to 9,200 (10B)."""
    raised = recognise_cohort(9_000, 10_000, [(4_500, 0, 9_700), (8_500, 0, 9_900)])
    assert [s.recognised_minor for s in raised] == [4_175, 3_552]
    lowered = recognise_cohort(9_000, 10_000, [(4_500, 0, 9_700), (8_500, 0, 9_200)])
    assert [s.recognised_minor for s in lowered] == [4_175, 4_140]
    assert lowered[1].catch_up_minor > 0 > raised[1].catch_up_minor


# -- Allocation -------------------------------------------------------------------------------


@pytest.mark.parametrize(("price", "goods_ssp", "points_ssp", "expected"), [
    (100_000, 100_000, Fraction(9_500), Allocation(91_324, 8_676)),
    (3, 2, Fraction(2), Allocation(1, 2)),  # 1.5 to the points: half rounds up
    (5, 3, Fraction(2), Allocation(3, 2)),  # exact
    (1_000, 1_000, Fraction(0), Allocation(1_000, 0)),  # points worth nothing
    (1_000, 0, Fraction(7, 3), Allocation(0, 1_000)),  # goods given away with the points
    (0, 1_000, Fraction(10), Allocation(0, 0)),
    (0, 0, Fraction(0), Allocation(0, 0)),
    (AMOUNT_MAX_MINOR, AMOUNT_MAX_MINOR, Fraction(1),
     Allocation(AMOUNT_MAX_MINOR - 1, 1)),  # 10^15 / (10^15 + 1), half up
])
def test_allocation_by_relative_stand_alone_selling_prices(
        price: int, goods_ssp: int, points_ssp: Fraction, expected: Allocation) -> None:
    got = allocate(price, goods_ssp, points_ssp)
    assert got == expected
    assert got.goods_minor + got.points_minor == price
    assert type(got.goods_minor) is int and type(got.points_minor) is int


def test_a_points_stand_alone_selling_price_is_its_value_times_the_expected_rate() -> None:
    # 2,500 points at 0.4 cent (400,000 micros), 80 % expected: 2,500 x 0.4 x 0.8 = 800 cents
    assert points_ssp(2_500 * 400_000, Fraction(4, 5)) == 800
    assert points_ssp(3 * 1, Fraction(1, 3)) == Fraction(1, 1_000_000)  # exact, not rounded


def test_a_discounted_sale_is_split_by_the_goods_stand_alone_price() -> None:
    cohort = Cohort("retail", "EUR", "P1", 1_000, 1_000 * UNIT * 10, 9_000,
                    goods_ssp_minor=10_000)
    report = ifrs15_report([cohort], ["P1"], Method.PUBLISHED,
                           published("retail", ("P1", 10_000)))
    # price 9,000 split 10,000 : 10,000 (1,000 points at 10 cents, all expected redeemed)
    assert (report.allocations[0].goods_minor, report.allocations[0].points_minor) == \
        (4_500, 4_500)


@pytest.mark.parametrize(("value", "expected"), [
    (Fraction(7, 2), 4), (Fraction(5, 2), 3), (Fraction(-7, 2), -4), (Fraction(-5, 2), -3),
    (Fraction(41_096_8, 100), 4_110), (Fraction(1, 3), 0), (Fraction(-1, 3), 0), (Fraction(0), 0),
])
def test_round_half_up_rounds_halves_away_from_zero(value: Fraction, expected: int) -> None:
    assert round_half_up(value) == expected


# -- Recognition: the parts, expiry, estimates out of line with the facts ----------------------


def test_expiry_beyond_the_estimate_is_final_and_recognised_as_breakage() -> None:
    # 1,000 points, 10,000 allocated, 900 expected to be redeemed. Year 1: 300 redeemed.
    # Year 2: 400 expire, so at most 600 can ever be redeemed: the 300 redeemed now stand for
    # half of what can be, recognised at once as breakage; then 100 more redeemed.
    y1, y2 = recognise_cohort(10_000, 1_000, [(300, 0, 900), (400, 400, 900)])
    assert y1.recognised_minor == 3_333  # 10,000 x 300 / 900
    assert y2.catch_up_minor == 0  # the estimate did not change
    assert y2.breakage_final_minor == 5_000 - 3_333  # 10,000 x 300 / 600
    assert y2.redemptions_minor == 1_000  # 100 points at 10 each
    assert y2.breakage_ratio_minor == 667  # 10,000 x 400 / 600 = 6,666.67 -> 6,667, less 6,000
    assert y2.state.expected == 600
    assert y2.state.cumulative_minor == 6_667


def test_a_cohort_whose_points_are_all_redeemed_or_expired_is_fully_recognised() -> None:
    # The estimate (50 %) was too low: redemptions pass it, everything is recognised; the
    # last points expire. Whatever the estimate, nothing is left once nothing is open.
    steps = recognise_cohort(1_000, 100, [(60, 0, 50), (70, 30, 50)])
    assert steps[0].state.expected == 60  # bounded below by the redemptions to date
    assert steps[0].state.cumulative_minor == 1_000
    assert steps[1].recognised_minor == 0
    assert all(s.redemptions_minor >= 0 and s.breakage_ratio_minor >= 0 for s in steps)


def test_all_points_expired_unredeemed_recognises_the_allocation_as_breakage() -> None:
    [step] = recognise_cohort(500, 100, [(0, 100, 80)])
    assert (step.breakage_final_minor, step.recognised_minor) == (500, 500)


def test_nothing_expected_to_be_redeemed_recognises_the_liability_when_it_is_said() -> None:
    # 40 of 100 redeemed, then finance expects no more: the 60 open points are remote
    y1, y2 = recognise_cohort(1_000, 100, [(40, 0, 80), (40, 0, 0)])
    assert y1.recognised_minor == 500
    assert (y2.catch_up_minor, y2.state.cumulative_minor) == (500, 1_000)
    # None redeemed and none expected: all of it is breakage, at once; and back again as a
    # (negative) catch-up if redemptions are expected after all.
    z1, z2 = recognise_cohort(1_000, 100, [(0, 0, 0), (0, 0, 50)])
    assert (z1.catch_up_minor, z1.breakage_final_minor) == (0, 1_000)
    assert (z2.catch_up_minor, z2.state.cumulative_minor) == (-1_000, 0)


def test_a_step_with_nothing_new_recognises_nothing() -> None:
    before = CohortState(redeemed=300, expired=100, expected=800, cumulative_minor=3_750)
    step = recognise(10_000, 1_000, before, 300, 100, 800)
    assert step.recognised_minor == 0 and step.state == before


# -- The schedule over several cohorts --------------------------------------------------------


def test_schedule_of_two_programs_and_several_cohorts_ties_and_runs_off() -> None:
    periods = ["2026-01", "2026-02", "2026-03", "2026-04"]
    cohorts = [
        Cohort("retail", "EUR", "2026-01", 10_000, 10_000 * UNIT, 200_000,
               redeemed_by_age=(1_000, 3_000, 4_000), expired_by_age=(0, 0, 0, 2_000)),
        Cohort("retail", "EUR", "2026-02", 5_000, 5_000 * UNIT, 100_000,
               redeemed_by_age=(0, 2_500), expired_by_age=(0, 0, 500)),
        Cohort("hotel", "EUR", "2026-03", 800, 800 * 50 * UNIT, 40_000, redeemed_by_age=(800,)),
    ]
    report = ifrs15_report(cohorts, periods, Method.PUBLISHED,
                           published("retail", ("2026-01", 8_000), ("2026-03", 7_500))
                           + published("hotel", ("2026-03", 9_000)))
    by_program = {}
    for row in report.schedule:
        by_program.setdefault(row.program, []).append(row)
    assert [r.period for r in by_program["hotel"]] == ["2026-03", "2026-04"]
    assert [r.period for r in by_program["retail"]] == periods
    for rows in by_program.values():
        closing = 0
        for r in rows:
            assert r.opening_minor == closing
            assert r.opening_minor + r.allocated_minor - r.recognised_minor == r.closing_minor
            assert r.recognised_minor == \
                r.redemptions_minor + r.breakage_minor + r.catch_up_minor
            closing = r.closing_minor
    # hotel: every point redeemed at once: all of its allocation in its first period
    assert by_program["hotel"][0].closing_minor == 0
    # retail: 2026-01 cohort closes in 2026-04 (8,000 redeemed, 2,000 expired); the 2026-02
    # cohort has 2,000 points open: the liability left is its share of them.
    last = by_program["retail"][-1]
    assert last.points_open == 2_000
    [feb] = [a for a in report.allocations if a.period == "2026-02"]
    feb_cohort = [c for c in report.cohorts if c.cohort_period == "2026-02"][-1]
    assert feb_cohort.expected_points == 3_750  # 75 % of 5,000
    assert last.closing_minor == feb.points_minor - round_half_up(
        Fraction(feb.points_minor * 2_500, 3_750))
    # The 2026-03 re-estimate moved revenue for points redeemed before it.
    assert by_program["retail"][2].catch_up_minor != 0
    assert sum(r.allocated_minor for r in by_program["retail"]) == \
        sum(a.points_minor for a in report.allocations if a.program == "retail")


def test_a_period_is_never_changed_by_later_periods() -> None:
    long = [Cohort("retail", "EUR", "P1", 1_000, 1_000 * UNIT, 10_000,
                   redeemed_by_age=(100, 200, 300), expired_by_age=(0, 50, 0)),
            Cohort("retail", "EUR", "P2", 2_000, 2_000 * UNIT, 20_000,
                   redeemed_by_age=(400, 100))]
    short = [Cohort("retail", "EUR", "P1", 1_000, 1_000 * UNIT, 10_000,
                    redeemed_by_age=(100, 200), expired_by_age=(0, 50)),
             Cohort("retail", "EUR", "P2", 2_000, 2_000 * UNIT, 20_000,
                    redeemed_by_age=(400,))]
    for method, estimates in ((Method.COHORT_RUNOFF, []),
                              (Method.PUBLISHED, published("retail", ("P1", 9_000)))):
        full = ifrs15_report(long, ["P1", "P2", "P3"], method, estimates)
        part = ifrs15_report(short, ["P1", "P2"], method, estimates)
        assert full.schedule[:2] == part.schedule
        assert full.estimates[:2] == part.estimates


def test_report_rows_print_as_a_table() -> None:
    from entrypoints.reports import render

    report = example_52("JPY", 1)
    table = render(report.schedule_rows(), "table")
    assert "closing_minor" in table.splitlines()[0]
    assert "4566" in table and "1073" in table
    assert render(report.allocation_rows(), "csv").splitlines()[1] == \
        "retail,JPY,year 1,100000,100000,10000,9500,9500,91324,8676"
    assert {r["method"] for r in report.estimate_rows()} == {"PUBLISHED"}


# -- The cohort run-off estimate --------------------------------------------------------------


def triangle() -> list[Cohort]:
    """Three monthly cohorts (points worth 1 cent, 10 cents of sales per point):

        cohort  earned  age 0        age 1                 age 2
        P1      1,000   200 red.     300 red., 100 exp.    100 red., 100 exp.
        P2      2,000   400 red.     500 red., 300 exp.
        P3      1,000   100 red.
    """
    return [
        Cohort("retail", "EUR", "P1", 1_000, 1_000 * UNIT, 10_000,
               redeemed_by_age=(200, 300, 100), expired_by_age=(0, 100, 100)),
        Cohort("retail", "EUR", "P2", 2_000, 2_000 * UNIT, 20_000,
               redeemed_by_age=(400, 500), expired_by_age=(0, 300)),
        Cohort("retail", "EUR", "P3", 1_000, 1_000 * UNIT, 10_000, redeemed_by_age=(100,)),
    ]


def test_cohort_runoff_estimate_from_a_hand_worked_triangle() -> None:
    report = ifrs15_report(triangle(), ["P1", "P2", "P3"], Method.COHORT_RUNOFF)
    at_p3 = report.estimates[-1]
    assert at_p3.method == Method.COHORT_RUNOFF
    # Pooled at the end of P3: age 0 over P1-P3: 700 of 4,000 redeemed; age 1 over P1-P2:
    # 800 redeemed and 400 expired of 2,400; age 2 (P1 alone): 100 and 100 of 400.
    rates = [(a.open_points, a.redeemed_points, a.expired_points, a.cohorts)
             for a in at_p3.age_rates]
    assert rates == [(4_000, 700, 0, 3), (2_400, 800, 400, 2), (400, 100, 100, 1)]
    assert at_p3.age_rates[1].redeemed_rate == Fraction(1, 3)
    assert at_p3.age_rates[1].expired_rate == Fraction(1, 6)
    # Tail: past age 2, open points go as at age 2, half redeemed. F2 = 1/2,
    # F1 = 1/4 + (1 - 1/4 - 1/4) x 1/2 = 1/2, F0 = 1/3 + (1 - 1/3 - 1/6) x 1/2 = 7/12.
    assert at_p3.tail_rate == Fraction(1, 2)
    expected = {c.cohort_period: (c.open_points, c.expected_points) for c in at_p3.cohorts}
    assert expected == {"P1": (200, 600 + 100),  # 600 redeemed + 200 x 1/2
                        "P2": (800, 900 + 400),  # 900 redeemed + 800 x 1/2
                        "P3": (900, 100 + 525)}  # 100 redeemed + 900 x 7/12
    # P3's points were priced at the rate estimated for them at the end of P3: 625 / 1,000.
    p3 = report.allocations[-1]
    assert p3.expected_rate == Fraction(5, 8)
    assert p3.points_ssp_minor == 625  # 1,000 points x 1 cent x 5/8
    assert p3.points_minor == round_half_up(Fraction(10_000 * 625, 10_625))
    # At the end of P2 the estimate saw P1 and P2 only: age 1 of P1 alone, 3/4 of what moved
    # there was redeemed (the tail); F0 = 3/8 + (1 - 3/8 - 1/8) x 3/4 = 3/4.
    at_p2 = report.estimates[1]
    assert {c.cohort_period: c.expected_points for c in at_p2.cohorts} == \
        {"P1": 500 + 400 * 3 // 4, "P2": 400 + 1_600 * 3 // 4}
    ages = {r["age"] for r in report.age_rate_rows() if r["period"] == "P3"}
    assert ages == {0, 1, 2}


def test_cohort_runoff_with_no_movement_expects_every_point_redeemed() -> None:
    # No redemption and no expiry seen yet: no evidence of breakage, none assumed.
    report = ifrs15_report([Cohort("retail", "EUR", "P1", 1_000, 1_000 * UNIT, 10_000)],
                           ["P1"], Method.COHORT_RUNOFF)
    [estimate] = report.estimates
    assert estimate.tail_rate == 1
    assert estimate.cohorts[0].expected_points == 1_000
    assert report.allocations[0].points_minor == round_half_up(Fraction(10_000 * 10, 110))


# -- Per-period totals into cohorts -----------------------------------------------------------


def test_period_totals_become_cohorts_oldest_first() -> None:
    activity = [
        PeriodActivity("retail", "EUR", "P1", 1_000, 1_000 * UNIT, 10_000, 300, 0),
        # P2: 900 redeemed: P1's 700 open points first, then 200 of P2's own
        PeriodActivity("retail", "EUR", "P2", 500, 500 * UNIT, 5_000, 900, 0),
        # P3: expiries first (100, the oldest open: P2's), then 200 redeemed (P2's)
        PeriodActivity("retail", "EUR", "P3", 0, 0, 0, 200, 100),
    ]
    cohorts = cohorts_from_activity(activity, ["P1", "P2", "P3"])
    assert [(c.period, c.redeemed_by_age, c.expired_by_age) for c in cohorts] == [
        ("P1", (300, 700), ()),
        ("P2", (200, 200), (0, 100)),
    ]
    report = ifrs15_report(activity, ["P1", "P2", "P3"], Method.PUBLISHED,
                           published("retail", ("P1", 9_000)))
    assert report.schedule == ifrs15_report(cohorts, ["P1", "P2", "P3"], Method.PUBLISHED,
                                            published("retail", ("P1", 9_000))).schedule
    assert [r.points_redeemed for r in report.schedule] == [300, 900, 200]
    assert [r.points_expired for r in report.schedule] == [0, 0, 100]
    assert report.schedule[-1].closing_minor == 0  # every point redeemed or expired


def test_period_totals_redeeming_more_than_is_open_are_refused() -> None:
    activity = [PeriodActivity("retail", "EUR", "P1", 100, 100 * UNIT, 1_000, 60, 0),
                PeriodActivity("retail", "EUR", "P2", 0, 0, 0, 50, 0)]
    with pytest.raises(InvalidInput) as caught:
        cohorts_from_activity(activity, ["P1", "P2"])
    assert caught.value.field == "activity[1].points_redeemed"
    assert "10 more than program 'retail' had open in 'P2'" in str(caught.value)


# -- Every bad input: InvalidInput naming the field -------------------------------------------

PERIODS = ["P1", "P2"]


def good(**changes) -> Cohort:
    fields = {"program": "retail", "currency": "EUR", "period": "P1", "points_earned": 100,
              "face_value_micros": 100 * UNIT, "sales_minor": 1_000,
              "redeemed_by_age": (10, 20), "expired_by_age": (0, 5)}
    fields.update(changes)
    return Cohort(**fields)


RATE = published("retail", ("P1", 9_000))


def run(data=None, periods=None, method=Method.PUBLISHED, estimates=None):
    return ifrs15_report([good()] if data is None else data,
                         PERIODS if periods is None else periods, method,
                         RATE if estimates is None else estimates)


BAD_REPORTS = [
    ("periods", lambda: run(periods=[])),
    ("periods", lambda: run(periods="P1")),
    ("periods", lambda: run(periods=[f"P{i}" for i in range(PERIODS_MAX + 1)])),
    ("periods[1]", lambda: run(periods=["P1", "P1"])),
    ("periods[0]", lambda: run(periods=[" "])),
    ("periods[1]", lambda: run(periods=["P1", 2])),
    ("periods[0]", lambda: run(periods=["x" * 33])),
    ("method", lambda: run(method=0)),
    ("method", lambda: run(method=3)),
    ("method", lambda: run(method=True)),
    ("method", lambda: run(method="PUBLISHED")),
    ("data", lambda: run(data=7)),
    ("cohorts[0]", lambda: run(data=[{"program": "retail"}])),
    ("cohorts[1]", lambda: run(data=[good(), PeriodActivity("retail", "EUR", "P2", 0, 0, 0,
                                                              0, 0)])),
    ("cohorts[0].program", lambda: run(data=[good(program="no spaces")])),
    ("cohorts[0].program", lambda: run(data=[good(program=7)])),
    ("cohorts[0].currency", lambda: run(data=[good(currency="XXX")])),
    ("cohorts[0].currency", lambda: run(data=[good(currency=None)])),
    ("cohorts[1].currency", lambda: run(data=[good(), good(period="P2", currency="USD",
                                                           redeemed_by_age=(),
                                                           expired_by_age=())])),
    ("cohorts[0].period", lambda: run(data=[good(period="P9")])),
    ("cohorts[1].period", lambda: run(data=[good(), good()])),
    ("cohorts[0].points_earned", lambda: run(data=[good(points_earned=-1)])),
    ("cohorts[0].points_earned", lambda: run(data=[good(points_earned=100.0)])),
    ("cohorts[0].points_earned", lambda: run(data=[good(points_earned=True)])),
    ("cohorts[0].points_earned", lambda: run(data=[good(points_earned=AMOUNT_MAX_MINOR + 1)])),
    ("cohorts[0].face_value_micros", lambda: run(data=[good(face_value_micros=-1)])),
    ("cohorts[0].face_value_micros", lambda: run(data=[good(
        points_earned=0, redeemed_by_age=(), expired_by_age=())])),
    ("cohorts[0].sales_minor", lambda: run(data=[good(sales_minor=-5)])),
    ("cohorts[0].sales_minor", lambda: run(data=[good(sales_minor=AMOUNT_MAX_MINOR + 1)])),
    ("cohorts[0].goods_ssp_minor", lambda: run(data=[good(goods_ssp_minor=-1)])),
    ("cohorts[0].goods_ssp_minor", lambda: run(data=[good(goods_ssp_minor=0)])),
    ("cohorts[0].redeemed_by_age", lambda: run(data=[good(redeemed_by_age=(1, 2, 3))])),
    ("cohorts[0].redeemed_by_age", lambda: run(data=[good(redeemed_by_age=5)])),
    ("cohorts[0].redeemed_by_age[1]", lambda: run(data=[good(redeemed_by_age=(1, -2))])),
    ("cohorts[0].expired_by_age[0]", lambda: run(data=[good(expired_by_age=(0.5,))])),
    ("cohorts[0].redeemed_by_age", lambda: run(data=[good(redeemed_by_age=(60, 40))])),
    ("cohorts[0].expired_by_age", lambda: run(data=[good(period="P2", redeemed_by_age=(1,),
                                                         expired_by_age=(1, 1))])),
    ("estimates", lambda: run(estimates="retail")),
    ("estimates[0]", lambda: run(estimates=[("retail", "P1", 9_000)])),
    ("estimates[0].program", lambda: run(estimates=published("bad id", ("P1", 9_000)))),
    ("estimates[1].program", lambda: run(estimates=RATE + published("hotel", ("P1", 9_000)))),
    ("estimates[0].effective_from", lambda: run(estimates=published("retail", ("P0", 9_000)))),
    ("estimates[0].redemption_rate_bp",
     lambda: run(estimates=published("retail", ("P1", 10_001)))),
    ("estimates[0].redemption_rate_bp", lambda: run(estimates=published("retail", ("P1", -1)))),
    ("estimates[0].redemption_rate_bp",
     lambda: run(estimates=published("retail", ("P1", 95.0)))),
    ("estimates[1].effective_from",
     lambda: run(estimates=published("retail", ("P1", 9_000), ("P1", 8_000)))),
    ("estimates", lambda: run(estimates=published("retail", ("P2", 9_000)))),  # none in P1
    ("estimates", lambda: run(estimates=[])),
    ("estimates", lambda: run(method=Method.COHORT_RUNOFF)),  # published with the run-off
    ("activity[0].points_redeemed", lambda: run(data=[
        PeriodActivity("retail", "EUR", "P1", 10, 10 * UNIT, 100, -1, 0)])),
    ("activity[1].period", lambda: run(data=[
        PeriodActivity("retail", "EUR", "P1", 10, 10 * UNIT, 100, 0, 0),
        PeriodActivity("retail", "EUR", "P1", 10, 10 * UNIT, 100, 0, 0)])),
    ("activity[0].sales_minor", lambda: run(data=[
        PeriodActivity("retail", "EUR", "P1", 10, 10 * UNIT, -100, 0, 0)])),
    ("activity[0].currency", lambda: run(data=[
        PeriodActivity("retail", "EURO", "P1", 10, 10 * UNIT, 100, 0, 0)])),
    ("activity[0].face_value_micros", lambda: run(data=[
        PeriodActivity("retail", "EUR", "P1", 0, 10 * UNIT, 100, 0, 0)])),
    ("activity[1].goods_ssp_minor", lambda: run(data=[
        PeriodActivity("retail", "EUR", "P1", 10, 10 * UNIT, 100, 0, 0),
        PeriodActivity("retail", "EUR", "P2", 10, 10 * UNIT, 100, 0, 0, goods_ssp_minor=0)])),
    ("sales_minor", lambda: allocate(-1, 10, Fraction(1))),
    ("goods_ssp_minor", lambda: allocate(10, -1, Fraction(1))),
    ("goods_ssp_minor", lambda: allocate(10, 0, Fraction(0))),
    ("points_ssp_minor", lambda: allocate(10, 10, Fraction(-1))),
    ("points_ssp_minor", lambda: allocate(10, 10, 0.5)),
    ("allocated_minor", lambda: recognise_cohort(-1, 10, [])),
    ("points_earned", lambda: recognise_cohort(10, -10, [])),
    ("periods[0]", lambda: recognise_cohort(10, 10, [(1, 2)])),
    ("periods[0].expected", lambda: recognise_cohort(10, 10, [(1, 2, -3)])),
    ("periods[1].redeemed", lambda: recognise_cohort(10, 10, [(5, 0, 8), (4, 0, 8)])),
    ("periods[1].expired", lambda: recognise_cohort(10, 10, [(5, 2, 8), (5, 1, 8)])),
    ("periods[0].redeemed", lambda: recognise_cohort(10, 10, [(6, 5, 8)])),
]


@pytest.mark.parametrize(("field", "call"), BAD_REPORTS,
                         ids=[f"{i}-{field}" for i, (field, _) in enumerate(BAD_REPORTS)])
def test_every_bad_input_is_refused_naming_the_field(field: str, call) -> None:
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.field == field, str(caught.value)
    assert str(caught.value).startswith(f"{field}: ")


def test_the_good_input_of_the_bad_input_table_is_accepted() -> None:
    # The table's baseline, so that each bad row fails for its one change only.
    report = run()
    assert [r.period for r in report.schedule] == PERIODS
    assert ifrs15_report([good()], PERIODS, Method.COHORT_RUNOFF).schedule
