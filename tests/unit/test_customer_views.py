"""The customer views' computations (domain/customers) on small examples checked by hand, and
their rules as properties: the pyramid's tie rule at every boundary, RFM's equal values in one
bucket, the lifecycle against each customer's own rhythm, visit times in local hours, store
affinity and its flows."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.common import InvalidInput
from domain.customers import affinity as af
from domain.customers import identity, views
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
    day_number,
    parse_day,
    period_ending,
    previous,
    totals,
    weekday,
)

D = day_number


def row(customer: str, day: str, spend: int, *, store: str = "S1", partner: str = "P1",
        hour: int = 10, visits: int = 1, margin: int = 0) -> Activity:
    return Activity(customer, store, partner, D(day), hour, visits, spend, margin)


# ------------------------------------------------------------------------------ identity


def test_a_customer_is_a_reference_or_the_card_and_a_replacement_is_its_first_cards() -> None:
    assert identity.own_customer("6000000000000001", "cust-9") == "cust-9"
    assert identity.own_customer("6000000000000001", "") == "card:6000000000000001"
    known = {"6000000000000001": "card:6000000000000001"}
    # the replacement carries a reference, but the chain stays the first card's customer
    assert identity.replacement_customer("6000000000000001", "cust-new",
                                         known.get) == "card:6000000000000001"
    assert identity.replacement_customer("6000000000000002", "cust-7", known.get) == "cust-7"
    assert identity.replacement_customer("6000000000000002", "", known.get) == \
        "card:6000000000000002"


# ------------------------------------------------------------------------------ periods


@pytest.mark.parametrize(("as_of", "months", "first"), [
    ("2026-12-03", 12, "2025-12-04"), ("2026-03-31", 1, "2026-03-01"),
    ("2026-03-30", 1, "2026-03-01"), ("2024-02-29", 12, "2023-03-01"),
    ("2026-05-31", 3, "2026-03-01")])
def test_a_period_is_the_months_that_end_with_the_as_of_day(as_of: str, months: int,
                                                            first: str) -> None:
    period = period_ending(D(as_of), months)
    assert period.names() == (first, as_of)
    before = previous(period, months)
    assert before.last == period.first - 1


def test_days_and_weekdays() -> None:
    assert day_name(D("2026-12-03")) == "2026-12-03"
    assert weekday(D("2026-12-03")) == 3  # a Thursday
    assert weekday(D("2026-12-07")) == 0
    for bad in ("2026-02-30", "2026-1-01", "", "yesterday", "1969-12-31"):
        with pytest.raises(InvalidInput) as raised:
            parse_day(bad, "as_of")
        assert raised.value.field == "as_of"


def test_totals_count_visits_spend_margin_and_visit_days_in_the_period() -> None:
    rows = [row("a", "2026-01-02", 500, margin=100), row("a", "2026-01-05", -200, visits=0,
                                                          margin=-40),
            row("a", "2026-01-09", 300, margin=60), row("a", "2025-12-31", 900)]
    found = totals(rows, Period(D("2026-01-01"), D("2026-01-31")))
    assert found == {"a": Totals(2, 600, 120, D("2026-01-02"), D("2026-01-09"))}


# ------------------------------------------------------------------------------ pyramid


def test_the_pyramid_levels_of_a_hundred_customers() -> None:
    spend = {f"c{i:03}": 1_000 - i for i in range(100)}  # all different
    levels = pm.levels(spend)
    counts = {lv: sum(1 for v in levels.values() if v == lv) for lv in pm.LEVELS}
    assert counts == {"A": 1, "B": 4, "C": 15, "D": 80}
    assert levels["c000"] == "A" and levels["c004"] == "B" and levels["c005"] == "C"
    assert levels["c019"] == "C" and levels["c020"] == "D"


def test_a_tie_at_a_boundary_goes_whole_to_the_higher_level() -> None:
    # 100 customers: A is 1 customer, B up to 5, C up to 20. Three tie at the top: all A,
    # and B starts after them (2 left for B). A tie across the C/D boundary: all C.
    spend = {f"c{i:03}": 1_000 - i for i in range(100)}
    for c in ("c000", "c001", "c002"):
        spend[c] = 5_000
    for i in range(17, 25):  # between c016 (984) and c025 (975)
        spend[f"c{i:03}"] = 980
    levels = pm.levels(spend)
    assert [levels[f"c{i:03}"] for i in range(6)] == ["A", "A", "A", "B", "B", "C"]
    assert {levels[f"c{i:03}"] for i in range(17, 25)} == {"C"}
    assert levels["c025"] == "D"


def test_customers_who_spent_nothing_net_are_d() -> None:
    assert pm.levels({"a": 0, "b": -50, "c": 10}) == {"c": "A", "a": "D", "b": "D"}


def test_the_pyramid_counts_spend_shares_and_movement() -> None:
    found = pm.pyramid({"a": 600, "b": 300, "c": 100}, {"a": 50, "d": 900, "b": 10},
                       "2026-01-01", "2026-12-31")
    assert [(lv.level, lv.customers, lv.spend_minor, lv.share_bps) for lv in found.levels] == [
        ("A", 1, 600, 6_000), ("B", 0, 0, 0), ("C", 0, 0, 0), ("D", 2, 400, 4_000)]
    # previous: d A, a D, b D (3 customers: A is one)
    assert {(m.previous, m.current): m.customers for m in found.movement} == {
        ("D", "A"): 1, ("D", "D"): 1, ("-", "D"): 1, ("A", "-"): 1}


@given(st.lists(st.integers(-5, 60), min_size=1, max_size=300))
def test_equal_spend_never_splits_and_levels_follow_spend(values: list[int]) -> None:
    spend = {f"c{i}": v for i, v in enumerate(values)}
    levels = pm.levels(spend)
    rank = {lv: i for i, lv in enumerate(pm.LEVELS)}
    by_value: dict[int, set[str]] = {}
    for c, v in spend.items():
        by_value.setdefault(v, set()).add(levels[c])
    assert all(len(found) == 1 for found in by_value.values())
    ordered = sorted(spend, key=lambda c: -spend[c])
    assert all(rank[levels[a]] <= rank[levels[b]] for a, b in itertools.pairwise(ordered))
    # a level never starts before its quota of the customers above it is met
    n = len(values)
    above = 0
    for name, bps in zip(pm.LEVELS, (*pm.QUOTAS_BPS, 10_000), strict=True):
        members = sum(1 for v in levels.values() if v == name)
        if members and name != "D":
            assert above < pm.quota(n, bps)
        above += members


# ------------------------------------------------------------------------------ matrix


def test_the_value_matrix_splits_at_the_medians() -> None:
    figures = {"a": (1_000, 300), "b": (800, 50), "c": (200, 250), "d": (100, 20),
               "e": (500, 100)}
    found = mx.matrix(figures, "x", "y")
    assert (found.sales_split_minor, found.margin_split_minor) == (500, 100)
    assert {q.quadrant: (q.customers, q.sales_minor, q.margin_minor)
            for q in found.quadrants} == {
        "high_sales_high_margin": (1, 1_000, 300), "low_sales_high_margin": (1, 200, 250),
        "high_sales_low_margin": (1, 800, 50), "low_sales_low_margin": (2, 600, 120)}
    fixed = mx.matrix(figures, "x", "y", sales_split=150, margin_split=10)
    assert [q.customers for q in fixed.quadrants] == [4, 1, 0, 0]
    assert mx.lower_median([4, 1, 3, 2]) == 2 and mx.lower_median([]) == 0


# ------------------------------------------------------------------------------ RFM


def test_rfm_thresholds_and_scores_by_hand() -> None:
    assert rf.thresholds([1, 2, 3, 4, 5]) == (1, 2, 3, 4)
    assert [rf.score(v, (1, 2, 3, 4)) for v in range(1, 6)] == [1, 2, 3, 4, 5]
    assert rf.thresholds(list(range(1, 11))) == (2, 4, 6, 8)
    # six one-visit customers of ten: their equal value shares one bucket, that of the
    # middle of their ranks 1..6 (quantile 0.3: F = 2), so no customer scores 1
    cuts = rf.thresholds([1, 1, 1, 1, 1, 1, 2, 3, 5, 9])
    assert cuts == (0, 1, 1, 3)
    assert [rf.score(v, cuts) for v in (1, 2, 3, 5, 9)] == [2, 4, 4, 5, 5]
    # two of five at the bottom (ranks 1-2, quantile 0.2) stay in the lowest bucket
    assert rf.buckets([1, 1, 3, 5, 9]) == {1: 1, 3: 3, 5: 4, 9: 5}


@pytest.mark.parametrize("n", [1, 2, 3, 5, 10, 99, 1_000])
def test_when_every_customer_has_the_same_value_all_score_three(n: int) -> None:
    # "everyone shopped alike" is the middle: neither Lost nor Champions
    cuts = rf.thresholds([40] * n)
    assert rf.buckets([40] * n) == {40: 3} and rf.score(40, cuts) == 3
    assert cuts == (39, 39, 40, 40)
    found = {f"c{i}": Totals(2, 500, 0, D("2026-06-01"), D("2026-06-20")) for i in range(n)}
    report = rf.rfm(found, D("2026-06-30"), "2026-01-01", "2026-06-30")
    assert {(s.score, s.segment) for s in report.customers} == {(333, "Loyal")}


def test_a_tie_group_scores_the_bucket_of_its_middle_rank() -> None:
    # ranks 1..4 of 10 at quantile 0.2 (bucket 1), ranks 5..10 at 0.7 (bucket 4)
    assert rf.buckets([1] * 4 + [2] * 6) == {1: 1, 2: 4}
    # ranks 3..8 of 10: quantile 0.5, bucket 3, between a distinct bucket 1 and 5
    assert rf.buckets([-1, 0, *[1] * 6, 2, 3]) == {-1: 1, 0: 1, 1: 3, 2: 5, 3: 5}


def test_rfm_scores_segments_and_the_three_digit_score() -> None:
    as_of = D("2026-06-30")
    found = {"a": Totals(9, 9_000, 0, D("2026-01-01"), D("2026-06-29")),
             "b": Totals(1, 100, 0, D("2026-06-28"), D("2026-06-28")),
             "c": Totals(5, 2_000, 0, D("2026-01-05"), D("2026-02-01")),
             "d": Totals(1, 50, 0, D("2026-01-10"), D("2026-01-10")),
             "e": Totals(3, 700, 0, D("2026-03-01"), D("2026-05-01")),
             "z": Totals(0, -30, 0, 0, 0)}  # a return only: no visit, no score
    report = rf.rfm(found, as_of, "2026-01-01", "2026-06-30")
    scored = {s.customer: (s.r, s.f, s.m, s.score, s.segment) for s in report.customers}
    assert scored == {"a": (5, 5, 5, 555, "Champions"), "b": (4, 1, 2, 412, "Promising"),
                      "c": (2, 4, 4, 244, "At risk"), "d": (1, 1, 1, 111, "Lost"),
                      "e": (3, 3, 3, 333, "Loyal")}
    assert report.customers[0].customer == "a"
    assert {s.segment: s.customers for s in report.segments}["Champions"] == 1


def test_every_r_and_f_has_a_segment() -> None:
    for r in range(1, 6):
        for f in range(1, 6):
            for m in range(1, 6):
                assert rf.segment(r, f, m) in rf.SEGMENT_NAMES


@given(st.lists(st.integers(0, 40), min_size=1, max_size=200))
def test_equal_values_share_a_bucket_and_buckets_follow_the_values(values: list[int]) -> None:
    cuts = rf.thresholds(values)
    scores = [rf.score(v, cuts) for v in values]
    for v, s in zip(values, scores, strict=True):
        assert all(s == t for w, t in zip(values, scores, strict=True) if w == v)
        assert 1 <= s <= 5
    ordered = sorted(set(values))
    assert [rf.score(v, cuts) for v in ordered] == sorted(rf.score(v, cuts) for v in ordered)
    # the top fifth (by rank) is never scored below the bottom fifth
    assert rf.score(max(values), cuts) >= rf.score(min(values), cuts)


# ------------------------------------------------------------------------------ lifecycle


def test_lifecycle_against_the_customers_own_interval() -> None:
    weekly = [D("2026-01-05") + 7 * i for i in range(10)]  # last visit 2026-03-09
    last = weekly[-1]
    assert lc.usual_interval(weekly) == 7
    assert lc.status(weekly, last + 14) == "ACTIVE"
    assert lc.status(weekly, last + 15) == "AT_RISK"  # more than two weeks
    assert lc.status(weekly, last + 28) == "AT_RISK"
    assert lc.status(weekly, last + 29) == "LAPSED"
    monthly = [D("2025-01-01") + 30 * i for i in range(6)]
    assert lc.usual_interval(monthly) == 30
    assert lc.status(monthly, monthly[-1] + 45) == "ACTIVE"  # a weekly shopper would lapse
    assert lc.status(monthly, monthly[-1] + 61) == "AT_RISK"
    daily = [D("2026-01-01") + i for i in range(5)]
    assert lc.usual_interval(daily) == lc.MIN_INTERVAL_DAYS  # never less than a week


def test_too_few_visits_use_the_fixed_thresholds_and_new_is_the_first_month() -> None:
    two = [D("2026-01-01"), D("2026-01-03")]
    assert lc.usual_interval(two) is None
    assert lc.status(two, D("2026-01-20")) == "NEW"
    assert lc.status(two, D("2026-02-15")) == "ACTIVE"
    assert lc.status(two, D("2026-01-03") + 60) == "ACTIVE"
    assert lc.status(two, D("2026-01-03") + 61) == "AT_RISK"
    assert lc.status(two, D("2026-01-03") + 181) == "LAPSED"
    assert lc.status(two, D("2025-12-31")) is None  # before the first visit


def test_became_at_risk_this_week() -> None:
    weekly = [D("2026-01-05") + 7 * i for i in range(10)]
    as_of = weekly[-1] + 18  # at risk since day 15: within the last week
    visits = {"weekly": weekly, "lapsed": [D("2025-01-01")],
              "fresh": [as_of - 1], "old-risk": [as_of - 70, as_of - 66]}
    found = lc.became_at_risk(visits, as_of)
    # "old-risk" (too few visits: the fixed 60 days) is 66 days past its last visit, at
    # risk since day 61: this week too. Most overdue first: 18 / 7 against 66 / 60.
    assert found == [("weekly", weekly[-1], 18, 7), ("old-risk", as_of - 66, 66, 0)]
    # 75 days past, it was at risk a week ago already
    visits["old-risk"] = [as_of - 80, as_of - 75]
    assert [c for c, *_ in lc.became_at_risk(visits, as_of)] == ["weekly"]


def test_segments_whose_spending_fell() -> None:
    found = lc.segment_spend({"a": "Loyal", "b": "Loyal", "c": "New"},
                             {"a": 500, "b": 300, "c": 100}, {"a": 200, "c": 400},
                             ("Loyal", "New", "Lost"))
    assert [(s.segment, s.customers, s.previous_spend_minor, s.current_spend_minor, s.fell)
            for s in found] == [("Loyal", 2, 800, 200, True), ("New", 1, 100, 400, False),
                                ("Lost", 0, 0, 0, False)]


# ------------------------------------------------------------------------------ visit times


def test_visits_and_spend_by_local_weekday_and_hour() -> None:
    rows = [row("a", "2026-12-03", 500, hour=9), row("b", "2026-12-03", 300, hour=9),
            row("a", "2026-12-05", -100, hour=18, visits=0),
            row("c", "2026-12-07", 200, hour=23), row("c", "2025-01-01", 999, hour=1)]
    found = vt.visit_times(rows, Period(D("2026-12-01"), D("2026-12-31")))
    assert [(c.weekday, c.hour, c.visits, c.spend_minor) for c in found.cells] == [
        (0, 23, 1, 200), (3, 9, 2, 800), (5, 18, 0, -100)]
    assert (found.visits, found.spend_minor) == (3, 900)
    assert found.by_weekday[3].visits == 2 and found.by_hour[9].spend_minor == 800


# ------------------------------------------------------------------------------ affinity


def test_store_affinity_shares_multi_partner_customers_and_flows() -> None:
    rows = [row("a", "2026-12-01", 600, store="S1"), row("a", "2026-12-02", 200, store="S2"),
            row("a", "2026-12-03", 200, store="A1", partner="P2"),
            row("b", "2026-12-01", 500, store="A1", partner="P2", hour=8),
            row("b", "2026-12-01", 500, store="S1", hour=9),
            row("c", "2026-12-04", 1_000, store="S2")]
    found = af.affinity(rows, Period(D("2026-12-01"), D("2026-12-31")))
    assert (found.customers, found.spend_minor) == (3, 3_000)
    places = {(p.kind, p.id): (p.customers, p.spend_minor, p.share_bps) for p in found.places}
    assert places == {("partner", "P1"): (3, 2_300, 7_666), ("partner", "P2"): (2, 700, 2_333),
                      ("store", "A1"): (2, 700, 2_333), ("store", "S1"): (2, 1_100, 3_666),
                      ("store", "S2"): (2, 1_200, 4_000)}
    assert (found.multi_partner_customers, found.multi_partner_spend_minor) == (2, 2_000)
    assert [(f.from_partner, f.to_partner, f.customers, f.spend_minor) for f in found.flows] \
        == [("P1", "P2", 1, 200), ("P2", "P1", 1, 500)]
    a = next(c for c in found.customers_top if c.customer == "a")
    assert a.stores == [("S1", 6_000), ("A1", 2_000), ("S2", 2_000)]
    assert a.partner_shares == [("P1", 8_000), ("P2", 2_000)]
    scoped = af.affinity([r for r in rows if r.partner_id == "P2"],
                         Period(D("2026-12-01"), D("2026-12-31")), {"a", "b"}, flows=False)
    assert scoped.elsewhere_customers == 2 and not scoped.flows
    assert {p.partner_id for p in scoped.places} == {"P2"}


def test_the_views_compose_over_the_as_of_period() -> None:
    rows = [row("a", "2026-11-15", 900, margin=90), row("b", "2026-11-20", 100, margin=40),
            row("a", "2025-11-01", 50), row("c", "2025-10-01", 700)]
    as_of = D("2026-11-30")
    pyramid = views.pyramid(rows, as_of, 12)
    assert pyramid.customers == 2 and pyramid.spend_minor == 1_000
    assert {(m.previous, m.current): m.customers for m in pyramid.movement} == {
        ("A", "-"): 1, ("D", "A"): 1, ("-", "D"): 1}
    churn = views.churn(rows, as_of, 12)
    assert {s.status: s.customers for s in churn.statuses} == {
        "NEW": 1, "ACTIVE": 1, "AT_RISK": 0, "LAPSED": 1}
    # one month: b visited more recently (R 4 against 2), a spent more (M 4 against 2), one
    # visit each (F 3: the middle, a tie of the two)
    assert [(s.customer, s.score) for s in views.rfm(rows, as_of, 1).customers] == [
        ("b", 432), ("a", 234)]
    assert views.matrix(rows, as_of, 12).quadrants[0].customers == 1
