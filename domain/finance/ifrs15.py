"""IFRS 15 for points: allocation, recognition and the contract liability schedule.

1. Allocation (IFRS 15.73-80, B42). The transaction price of the sales that earned a cohort's
   points is split between the goods and the points by their relative stand-alone selling
   prices. A point's stand-alone selling price is its value times the expected redemption
   rate at the end of the period it was earned in:

       points SSP = face value x expected rate
       allocated to points = price x points SSP / (goods SSP + points SSP)   (half up)
       allocated to goods  = price - allocated to points                      (the rest)

   The points' share is a contract liability. It is never reallocated when the estimate
   changes later (IFRS 15.88): a change of estimate moves revenue between periods instead.

2. Recognition (IFRS 15.B46, the standard's Example 52). A cohort's cumulative revenue is

       allocated x points redeemed to date / points expected to be redeemed in total

   with the expected redemptions re-estimated every period (estimates.py) and bounded by the
   facts (at least the points redeemed, at most the points earned less those expired).
   The period's revenue is the change of that cumulative figure, shown in three parts. They
   are worked out one change at a time, in this order, each time as a cumulative figure
   rounded half up, so that the parts add up to the change exactly:

       catch-up     first the new estimate alone, applied to the points redeemed before the
                    period (the cumulative catch-up IFRS 15 requires in the period of the
                    change; negative when more redemptions are expected than before);
       breakage     revenue for points that will never be redeemed. Second, breakage made
                    final: the period's expiries leave fewer points redeemable than were
                    expected (expiry is final), or no point is expected to be redeemed at all
                    any more (then the rest of the allocation at once). Fourth, the breakage
                    share of the period's redemptions (B46: expected breakage is recognised
                    in proportion to the rights exercised: allocated / expected - allocated /
                    earned per point redeemed);
       redemptions  third, the period's redeemed points at allocated / earned each.

   So breakage is recognised through the ratio; when every point of a cohort is redeemed or
   expired, the expected redemptions are the redeemed ones and the whole allocation has been
   recognised. If no point is expected to be redeemed at all, the remaining liability is
   recognised at once (B46: the likelihood of the rights being exercised is remote).

3. The schedule: per program and period, opening liability + allocated - (redemptions +
   breakage + catch-up) = closing liability, to the minor unit, and closing = the sum over
   cohorts of (allocated - cumulative revenue).

`ifrs15_report` is the one function a report calls. Pure code: no clock, no I/O; money is in
minor units, points are whole, rates are Fractions or basis points, and the one rounding
rule is `round_half_up`.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import cast

import msgspec

from domain.common import AMOUNT_MAX_MINOR, InvalidInput, shown
from domain.finance.cohorts import (
    MICROS_PER_MINOR,
    POINTS_MAX,
    Cohort,
    PeriodActivity,
    check_cohorts,
    check_count,
    check_periods,
    cohorts_from_activity,
    round_half_up,
)
from domain.finance.estimates import (
    BP,
    CohortHistory,
    Estimate,
    Method,
    PublishedEstimate,
    bounded,
    check_method,
    check_published,
    estimate,
)

# -- 1. Allocation ----------------------------------------------------------------------------


class Allocation(msgspec.Struct, frozen=True):
    goods_minor: int
    points_minor: int  # the contract liability the points add


def points_ssp(face_value_micros: int, expected_rate: Fraction) -> Fraction:
    """The points' stand-alone selling price in minor units (exact): value x expected rate."""
    return Fraction(face_value_micros, MICROS_PER_MINOR) * expected_rate


def allocate(price_minor: int, goods_ssp_minor: int, points_ssp_minor: Fraction) -> Allocation:
    """Split `price_minor` between goods and points by relative stand-alone selling prices;
    the points' share rounded half up to the minor unit, the goods take the rest (the two add
    up to the price exactly)."""
    check_count(price_minor, "sales_minor", limit=AMOUNT_MAX_MINOR)
    check_count(goods_ssp_minor, "goods_ssp_minor", limit=AMOUNT_MAX_MINOR)
    if not isinstance(points_ssp_minor, int | Fraction) or isinstance(points_ssp_minor, bool) \
            or points_ssp_minor < 0:
        raise InvalidInput("points_ssp_minor", f"must be a Fraction >= 0, not "
                           f"{shown(points_ssp_minor)}")
    total = goods_ssp_minor + points_ssp_minor
    if total == 0:
        if price_minor:
            raise InvalidInput("goods_ssp_minor", "is 0 and the points have no value: nothing "
                               "to split the price by")
        return Allocation(0, 0)
    points = round_half_up(price_minor * Fraction(points_ssp_minor) / total)
    return Allocation(price_minor - points, points)


# -- 2. Recognition ---------------------------------------------------------------------------


class CohortState(msgspec.Struct, frozen=True):
    """Where a cohort's recognition stands at the end of a period."""

    redeemed: int = 0  # points redeemed to date
    expired: int = 0  # points expired to date
    expected: int = 0  # the bounded expected redemptions used
    cumulative_minor: int = 0  # revenue recognised to date (rounded)


class Step(msgspec.Struct, frozen=True):
    """A cohort's revenue in one period, in the order it is worked out."""

    catch_up_minor: int  # re-estimation applied to earlier redemptions (may be negative)
    # Breakage made final: expiries that left fewer points redeemable than expected, or no
    # point expected to be redeemed at all any more (the rest of the allocation at once).
    breakage_final_minor: int
    redemptions_minor: int  # the period's redemptions at allocated / earned per point
    breakage_ratio_minor: int  # the breakage share of the period's redemptions (B46)
    state: CohortState  # after the period

    @property
    def breakage_minor(self) -> int:
        return self.breakage_final_minor + self.breakage_ratio_minor

    @property
    def recognised_minor(self) -> int:
        return (self.catch_up_minor + self.breakage_final_minor + self.redemptions_minor
                + self.breakage_ratio_minor)


def cumulative_revenue(allocated_minor: int, redeemed: int, expected: int) -> Fraction:
    """allocated x redeemed / expected, exactly; all of it when nothing is expected to be
    redeemed (then no rights are left that are likely to be exercised)."""
    if expected == 0:
        return Fraction(allocated_minor)
    return Fraction(allocated_minor * redeemed, expected)


def recognise(allocated_minor: int, points_earned: int, before: CohortState, redeemed: int,
              expired: int, expected_estimate: int) -> Step:
    """One period of one cohort: `redeemed` and `expired` are to date (end of the period),
    `expected_estimate` the period's estimate of total redemptions, before bounds."""
    earned = points_earned

    def e(lowest_redeemed: int, expired_so_far: int) -> int:
        return bounded(expected_estimate, lowest_redeemed, expired_so_far, earned)

    # Catch-up: the new estimate applied to the points redeemed before, nothing else new
    # yet. When nothing at all is expected to be redeemed any more (then none was), what is
    # left is breakage made final, below, not a catch-up on earlier redemptions.
    e1 = e(before.redeemed, before.expired)
    s1 = cumulative_revenue(allocated_minor, before.redeemed, e1) if e1 else \
        Fraction(before.cumulative_minor)
    r1 = round_half_up(s1)
    # The period's expiries are final (and so is an estimate of no redemptions at all).
    e2 = e(before.redeemed, expired)
    s2 = cumulative_revenue(allocated_minor, before.redeemed, e2)
    r2 = round_half_up(s2)
    # The period's redemptions: at allocated / earned per point, the rest of the increase is
    # their breakage share. The increase is never negative (e3 >= e2, and e3 > e2 only when
    # redemptions reach the estimate, which then recognises everything).
    e3 = e(redeemed, expired)
    s3 = cumulative_revenue(allocated_minor, redeemed, e3)
    face = Fraction(allocated_minor * (redeemed - before.redeemed), earned) if earned else \
        Fraction(0)
    s2f = s2 + min(face, s3 - s2)
    r2f = round_half_up(s2f)
    r3 = round_half_up(s3)
    assert 0 <= r3 <= allocated_minor, "revenue never exceeds the allocation"
    return Step(catch_up_minor=r1 - before.cumulative_minor, breakage_final_minor=r2 - r1,
                redemptions_minor=r2f - r2, breakage_ratio_minor=r3 - r2f,
                state=CohortState(redeemed, expired, e3, r3))


def recognise_cohort(allocated_minor: int, points_earned: int,
                     periods: Sequence[tuple[int, int, int]]) -> tuple[Step, ...]:
    """A cohort's recognition period by period; `periods` holds, per period, (points redeemed
    to date, points expired to date, expected redemptions in total) at its end."""
    check_count(allocated_minor, "allocated_minor", limit=AMOUNT_MAX_MINOR)
    check_count(points_earned, "points_earned", limit=POINTS_MAX)
    state = CohortState()
    steps: list[Step] = []
    for i, row in enumerate(periods):
        if not isinstance(row, tuple | list) or len(row) != 3:
            raise InvalidInput(f"periods[{i}]", "must be (redeemed, expired, expected)")
        redeemed, expired, expected = row
        check_count(redeemed, f"periods[{i}].redeemed", limit=POINTS_MAX)
        check_count(expired, f"periods[{i}].expired", limit=POINTS_MAX)
        check_count(expected, f"periods[{i}].expected", limit=POINTS_MAX)
        if redeemed < state.redeemed:
            raise InvalidInput(f"periods[{i}].redeemed", "is to date: it cannot go down")
        if expired < state.expired:
            raise InvalidInput(f"periods[{i}].expired", "is to date: it cannot go down")
        if redeemed + expired > points_earned:
            raise InvalidInput(f"periods[{i}].redeemed", "redeemed and expired add up to more "
                               f"than the {points_earned} points earned")
        step = recognise(allocated_minor, points_earned, state, redeemed, expired, expected)
        steps.append(step)
        state = step.state
    return tuple(steps)


# -- 3. The schedule --------------------------------------------------------------------------


class ScheduleRow(msgspec.Struct, frozen=True):
    """A program's contract liability for points in one period (money in minor units)."""

    program: str
    currency: str
    period: str
    opening_minor: int
    allocated_minor: int  # the points' share of the period's earning sales
    redemptions_minor: int
    breakage_minor: int
    catch_up_minor: int
    recognised_minor: int  # redemptions + breakage + catch-up
    closing_minor: int  # opening + allocated - recognised
    goods_revenue_minor: int  # the goods' share of the period's earning sales (memo)
    points_earned: int
    points_redeemed: int
    points_expired: int
    points_open: int  # at the end of the period
    points_expected_to_redeem: int  # of the open points (bounded estimates)


class AllocationRow(msgspec.Struct, frozen=True):
    """How one cohort's sales were split (at the end of the period it was earned in)."""

    program: str
    currency: str
    period: str
    sales_minor: int
    goods_ssp_minor: int
    points_face_value_minor: int  # half up, shown; the split uses the exact value
    expected_rate: Fraction
    points_ssp_minor: int  # half up, shown; the split uses the exact value
    goods_minor: int
    points_minor: int


class CohortRow(msgspec.Struct, frozen=True):
    """One cohort in one period: the parts of its revenue and where it stands."""

    program: str
    period: str
    cohort_period: str
    allocated_minor: int
    expected_points: int  # bounded
    redeemed_to_date: int
    expired_to_date: int
    catch_up_minor: int
    breakage_final_minor: int
    redemptions_minor: int
    breakage_ratio_minor: int
    cumulative_minor: int
    liability_minor: int


class Ifrs15Report(msgspec.Struct, frozen=True):
    method: Method
    periods: tuple[str, ...]
    schedule: tuple[ScheduleRow, ...]  # per program (sorted), then period
    allocations: tuple[AllocationRow, ...]
    cohorts: tuple[CohortRow, ...]
    estimates: tuple[Estimate, ...]  # per program and period: the method's figures

    def schedule_rows(self) -> list[dict[str, int | str]]:
        """The schedule as table rows (entrypoints/reports.render takes them)."""
        return [{f: getattr(r, f) for f in ScheduleRow.__struct_fields__}
                for r in self.schedule]

    def allocation_rows(self) -> list[dict[str, int | str]]:
        return [{"program": a.program, "currency": a.currency, "period": a.period,
                 "sales_minor": a.sales_minor, "goods_ssp_minor": a.goods_ssp_minor,
                 "points_face_value_minor": a.points_face_value_minor,
                 "expected_rate_bp": round_half_up(a.expected_rate * BP),
                 "points_ssp_minor": a.points_ssp_minor, "goods_minor": a.goods_minor,
                 "points_minor": a.points_minor} for a in self.allocations]

    def estimate_rows(self) -> list[dict[str, int | str]]:
        """Per program, period and cohort: the method, its figures and the estimate used.
        Rates are shown in basis points (half up); the computation uses them exactly."""
        rows: list[dict[str, int | str]] = []
        for e in self.estimates:
            for c in e.cohorts:
                rows.append({"program": e.program, "period": e.period,
                             "method": e.method.name,
                             "published_rate_bp": e.redemption_rate_bp
                             if e.method == Method.PUBLISHED else "",
                             "published_from": e.effective_from,
                             "cohort": c.cohort_period, "age": c.age,
                             "earned": c.points_earned, "redeemed": c.redeemed_to_date,
                             "expired": c.expired_to_date, "open": c.open_points,
                             "expected_rate_bp": round_half_up(c.expected_rate * BP),
                             "expected_points": c.expected_points,
                             "used_points": c.used_points})
        return rows

    def age_rate_rows(self) -> list[dict[str, int | str]]:
        """COHORT_RUNOFF: the pooled run-off triangle each period's estimate was made from."""
        rows: list[dict[str, int | str]] = []
        for e in self.estimates:
            for a in e.age_rates:
                rows.append({"program": e.program, "period": e.period, "age": a.age,
                             "cohorts": a.cohorts, "open_at_start": a.open_points,
                             "redeemed": a.redeemed_points, "expired": a.expired_points,
                             "redeemed_rate_bp": round_half_up(a.redeemed_rate * BP),
                             "expired_rate_bp": round_half_up(a.expired_rate * BP),
                             "tail_rate_bp": round_half_up(e.tail_rate * BP)})
        return rows


def ifrs15_report(data: Sequence[Cohort] | Sequence[PeriodActivity], periods: Sequence[str],
                  method: Method, estimates: Sequence[PublishedEstimate] = ()) -> Ifrs15Report:
    """IFRS 15 for points, per program and period: the allocation of each period's earning
    sales, the revenue recognised and the contract liability schedule, with the estimates of
    expected redemptions and the figures they were made from.

    data       the cohort table (`Cohort`: per program and period of earning, the points
               earned, their face value, the transaction price of the sales that earned
               them, and the points redeemed and expired at each later age), or per-period
               totals (`PeriodActivity`: per program and period, points earned with their
               face value and the sales price, points redeemed, points expired), which are
               turned into cohorts oldest-first (cohorts.cohorts_from_activity). All of one
               kind.
    periods    the period labels in order, oldest first; the report covers them all, from
               each program's first cohort. Data of a period is read only from that period
               on: a period's figures never change when later periods are added.
    method     Method.PUBLISHED (finance's rates, `estimates`) or Method.COHORT_RUNOFF (the
               cohorts' own history; `estimates` must then be empty).
    estimates  PUBLISHED: per program, the expected redemption rate in basis points and the
               period it is in force from; every program needs one in force from its first
               cohort, and every estimate must name a program of `data`. A program with no
               cohort (only empty period totals) has no rows.

    Raises InvalidInput naming the field (`cohorts[2].points_earned`, `estimates[0].program`,
    `periods[3]`, `method`...) for any bad input.
    """
    index = check_periods(periods)
    method = check_method(method)
    cohorts = _cohorts_of(data, periods, index)
    published = check_published(estimates, index)
    programs: dict[str, list[tuple[int, Cohort]]] = {}
    for cohort in cohorts:
        programs.setdefault(cohort.program, []).append((index[cohort.period], cohort))
    if method == Method.COHORT_RUNOFF and estimates:
        raise InvalidInput("estimates", "only the PUBLISHED method reads published estimates")
    named = {row.program for row in data}  # a program with only empty rows has no cohort
    for i, e in enumerate(estimates):
        if e.program not in named:
            raise InvalidInput(f"estimates[{i}].program",
                               f"no cohort of program {shown(e.program)} in the data")

    schedule: list[ScheduleRow] = []
    allocations: list[AllocationRow] = []
    cohort_rows: list[CohortRow] = []
    found: list[Estimate] = []
    for program in sorted(programs):
        _program_schedule(program, programs[program], tuple(periods), method,
                          published.get(program, []), schedule, allocations, cohort_rows, found)
    return Ifrs15Report(method, tuple(periods), tuple(schedule), tuple(allocations),
                        tuple(cohort_rows), tuple(found))


def _cohorts_of(data: Sequence[Cohort] | Sequence[PeriodActivity], periods: Sequence[str],
                index: dict[str, int]) -> Sequence[Cohort]:
    if not isinstance(data, Sequence) or isinstance(data, str):
        raise InvalidInput("data", "must be a list of cohorts or of period totals")
    if data and all(isinstance(row, PeriodActivity) for row in data):
        cohorts = cohorts_from_activity(cast(Sequence[PeriodActivity], data), periods)
        check_cohorts(cohorts, index, "activity (as cohorts)")
        return cohorts
    # check_cohorts names any row that is not a Cohort.
    check_cohorts(cast(Sequence[Cohort], data), index)
    return cast(Sequence[Cohort], data)


def _program_schedule(program: str, cohorts: list[tuple[int, Cohort]], periods: tuple[str, ...],
                      method: Method, published: list[tuple[int, PublishedEstimate]],
                      schedule: list[ScheduleRow], allocations: list[AllocationRow],
                      cohort_rows: list[CohortRow], found: list[Estimate]) -> None:
    by_position = dict(cohorts)
    position = {label: i for i, label in enumerate(periods)}
    first = min(by_position)
    currency = by_position[first].currency
    history = CohortHistory(cohorts)
    allocated: dict[int, int] = {}
    states: dict[int, CohortState] = {}
    closing = 0
    for t in range(len(periods)):
        history.advance(t)
        if t < first:
            continue
        est = estimate(history, program, periods, method, published)
        found.append(est)
        opening = closing
        new_minor = goods_minor = 0
        catch_up = breakage = redemptions = 0
        redeemed_now = expired_now = 0
        for ce in est.cohorts:
            c = position[ce.cohort_period]
            cohort = by_position[c]
            if c == t:
                rate = ce.expected_rate
                face = Fraction(cohort.face_value_micros, MICROS_PER_MINOR)
                ssp = points_ssp(cohort.face_value_micros, rate)
                split = allocate(cohort.sales_minor, cohort.goods_ssp, ssp)
                allocated[c] = split.points_minor
                new_minor += split.points_minor
                goods_minor += split.goods_minor
                allocations.append(AllocationRow(
                    program, currency, periods[t], cohort.sales_minor, cohort.goods_ssp,
                    round_half_up(face), rate, round_half_up(ssp), split.goods_minor,
                    split.points_minor))
            before = states.get(c, CohortState())
            step = recognise(allocated[c], cohort.points_earned, before, ce.redeemed_to_date,
                             ce.expired_to_date, ce.expected_points)
            assert step.state.expected == ce.used_points
            states[c] = step.state
            redeemed_now += ce.redeemed_to_date - before.redeemed
            expired_now += ce.expired_to_date - before.expired
            catch_up += step.catch_up_minor
            breakage += step.breakage_minor
            redemptions += step.redemptions_minor
            cohort_rows.append(CohortRow(
                program, periods[t], ce.cohort_period, allocated[c], step.state.expected,
                ce.redeemed_to_date, ce.expired_to_date, step.catch_up_minor,
                step.breakage_final_minor, step.redemptions_minor,
                step.breakage_ratio_minor, step.state.cumulative_minor,
                allocated[c] - step.state.cumulative_minor))
        recognised = catch_up + breakage + redemptions
        closing = opening + new_minor - recognised
        assert closing == sum(allocated[c] - s.cumulative_minor for c, s in states.items()), \
            "the schedule ties to the cohorts"
        open_points = sum(by_position[c].points_earned - s.redeemed - s.expired
                          for c, s in states.items())
        expected_open = sum(s.expected - s.redeemed for s in states.values())
        earned = by_position[t].points_earned if t in by_position else 0
        schedule.append(ScheduleRow(
            program, currency, periods[t], opening, new_minor, redemptions, breakage, catch_up,
            recognised, closing, goods_minor, earned, redeemed_now, expired_now, open_points,
            expected_open))
