"""What IFRS 15 for points is computed from: the earning cohorts of each points program.

A cohort is the points one program's customers earned in one period, the sales that earned
them, and what became of those points in each later period: how many were redeemed and how
many expired at each age (age 0 is the period of earning itself). This is the cohort table a
read model of the ledger keeps (a lot records when it was earned, so every redemption and
expiry of a lot is known by cohort); the allocation, the recognition and the estimation from
history are all functions of it.

When a read model only has per-period totals (points earned with the sale price of the
earning sales, points redeemed, points expired), `cohorts_from_activity` builds the table by
taking redemptions and expiries from the oldest cohort first, as the ledger takes lots
earliest-expiry-first: exact when every lot of a program has the same expiry policy.

Periods are labels ("2026-01", "Q3", "year 1") given in order by the caller; a cohort's
`redeemed_by_age[k]` happened in the k-th period after its own. Money is in minor units of
the program's currency, points are whole points, a point's money value is in millionths of a
minor unit (as `Program.point_value_micros`): integers only.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

import msgspec

from domain.common import AMOUNT_MAX_MINOR, InvalidInput, check_id, shown
from domain.currency import check_currency

# Bounds (style: a limit on everything). 240 periods is 20 years of months; the schedule's
# cost grows with periods x open cohorts: at this bound, a cohort every period and every one
# still open at the end, 0.6 s (PUBLISHED) and 0.8 s (COHORT_RUNOFF) on this machine.
PERIODS_MAX = 240
COHORTS_MAX = 100_000
PERIOD_LABEL_MAX = 32
POINTS_MAX = AMOUNT_MAX_MINOR
FACE_VALUE_MICROS_MAX = AMOUNT_MAX_MINOR * 1_000_000
MICROS_PER_MINOR = 1_000_000


def round_half_up(value: Fraction) -> int:
    """The nearest integer, a half rounded away from zero (3.5 -> 4, -3.5 -> -4).

    The one rounding rule of IFRS 15 here, stated once: every amount is worked out exactly (as
    a Fraction) and rounded to the minor unit only where it becomes a figure of the schedule.
    (Python's round() would round halves to even.)"""
    if value >= 0:
        return int(value + Fraction(1, 2))  # int() truncates: floor for non-negative values
    return -int(-value + Fraction(1, 2))


def check_count(value: object, field: str, *, limit: int) -> int:
    """A whole number 0..limit: an int, never a bool or a float."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be a whole number, not {shown(value)}")
    if value < 0:
        raise InvalidInput(field, "must not be negative")
    if value > limit:
        raise InvalidInput(field, f"must be at most {limit}")
    return value


def check_periods(periods: Sequence[str]) -> dict[str, int]:
    """The periods in order -> their positions; labels unique, 1..PERIODS_MAX of them."""
    if isinstance(periods, str) or not isinstance(periods, Sequence):
        raise InvalidInput("periods", "must be a list of period labels in order")
    if not 1 <= len(periods) <= PERIODS_MAX:
        raise InvalidInput("periods", f"must name 1..{PERIODS_MAX} periods, not {len(periods)}")
    index: dict[str, int] = {}
    for i, label in enumerate(periods):
        if not isinstance(label, str) or not label.strip() or len(label) > PERIOD_LABEL_MAX \
                or any(ord(ch) < 0x20 for ch in label):
            raise InvalidInput(f"periods[{i}]", f"must be a label of 1..{PERIOD_LABEL_MAX} "
                               f"printable characters, not {shown(label)}")
        if label in index:
            raise InvalidInput(f"periods[{i}]", f"{shown(label)} is listed twice")
        index[label] = i
    return index


class Cohort(msgspec.Struct, frozen=True):
    """The points of one program earned in one period, and what became of them since."""

    program: str  # the points program (its owner's id, as the registry names programs)
    currency: str  # ISO 4217: the currency of the program's point value and of the sales
    period: str  # the period the points were earned in (one of the report's periods)
    points_earned: int  # net of points clawed back by returns in the same period
    # The points' money value at the program's point value, summed over the cohort's lots:
    # sum(points x value_micros_per_point), in millionths of a minor unit. A lot keeps the
    # value it was earned with, so a cohort may mix values.
    face_value_micros: int
    # The transaction price of the sales that earned these points (what customers paid for
    # them, net of refunds), in minor units: the amount split between goods and points.
    sales_minor: int
    redeemed_by_age: tuple[int, ...] = ()  # [k]: redeemed in the k-th period after `period`
    expired_by_age: tuple[int, ...] = ()  # [k]: expired in the k-th period after `period`
    # The stand-alone selling price of the goods sold, when it is not their price (a sale at
    # a discount); None: the goods' stand-alone selling price is `sales_minor`.
    goods_ssp_minor: int | None = None

    @property
    def goods_ssp(self) -> int:
        return self.sales_minor if self.goods_ssp_minor is None else self.goods_ssp_minor


class PeriodActivity(msgspec.Struct, frozen=True):
    """One program's totals for one period, for a read model without cohorts."""

    program: str
    currency: str
    period: str
    points_earned: int
    face_value_micros: int  # as Cohort.face_value_micros: the points earned in this period
    sales_minor: int  # the transaction price of the sales that earned them
    points_redeemed: int  # in this period, whatever period they were earned in
    points_expired: int
    goods_ssp_minor: int | None = None


def check_cohorts(cohorts: Sequence[Cohort], periods: dict[str, int],
                  field: str = "cohorts") -> None:
    """Every bad field raises InvalidInput naming it (`cohorts[3].points_earned`)."""
    if not isinstance(cohorts, Sequence) or isinstance(cohorts, str):
        raise InvalidInput(field, "must be a list of cohorts")
    if len(cohorts) > COHORTS_MAX:
        raise InvalidInput(field, f"must hold at most {COHORTS_MAX} cohorts")
    seen: set[tuple[str, str]] = set()
    currency_of: dict[str, str] = {}
    for i, c in enumerate(cohorts):
        at = f"{field}[{i}]"
        if not isinstance(c, Cohort):
            raise InvalidInput(at, f"must be a Cohort, not {shown(c)}")
        _check_program_row(c, at, periods, currency_of)
        check_count(c.points_earned, f"{at}.points_earned", limit=POINTS_MAX)
        check_count(c.face_value_micros, f"{at}.face_value_micros",
                    limit=FACE_VALUE_MICROS_MAX)
        check_count(c.sales_minor, f"{at}.sales_minor", limit=AMOUNT_MAX_MINOR)
        if c.goods_ssp_minor is not None:
            check_count(c.goods_ssp_minor, f"{at}.goods_ssp_minor", limit=AMOUNT_MAX_MINOR)
        _check_values(c, at)
        key = (c.program, c.period)
        if key in seen:
            raise InvalidInput(f"{at}.period", f"a second cohort of program {shown(c.program)} "
                               f"in period {shown(c.period)}")
        seen.add(key)
        ages_left = len(periods) - periods[c.period]
        open_points = c.points_earned
        for name in ("redeemed_by_age", "expired_by_age"):
            values = getattr(c, name)
            if not isinstance(values, tuple | list):
                raise InvalidInput(f"{at}.{name}", f"must be a list of counts, not {shown(values)}")
            if len(values) > ages_left:
                raise InvalidInput(f"{at}.{name}", f"has {len(values)} ages; a cohort of "
                                   f"{shown(c.period)} has {ages_left} periods to report")
            for k, v in enumerate(values):
                check_count(v, f"{at}.{name}[{k}]", limit=POINTS_MAX)
            open_points -= sum(values)
        if open_points < 0:
            raise InvalidInput(f"{at}.redeemed_by_age", "redeemed and expired add up to more "
                               f"than the {c.points_earned} points earned")


def _check_values(row: Cohort | PeriodActivity, at: str) -> None:
    if row.points_earned == 0 and row.face_value_micros != 0:
        raise InvalidInput(f"{at}.face_value_micros", "must be 0 when no points were earned")
    goods_ssp = row.sales_minor if row.goods_ssp_minor is None else row.goods_ssp_minor
    if row.sales_minor > 0 and goods_ssp == 0:
        raise InvalidInput(f"{at}.goods_ssp_minor", "must be greater than 0 when sales_minor "
                           "is: goods sold have a stand-alone selling price")


def _check_program_row(row: Cohort | PeriodActivity, at: str, periods: dict[str, int],
                       currency_of: dict[str, str]) -> None:
    if not isinstance(row.program, str):
        raise InvalidInput(f"{at}.program", f"must be text, not {shown(row.program)}")
    check_id(row.program, f"{at}.program")
    if not isinstance(row.currency, str):
        raise InvalidInput(f"{at}.currency", f"must be text, not {shown(row.currency)}")
    check_currency(row.currency, f"{at}.currency")
    if currency_of.setdefault(row.program, row.currency) != row.currency:
        raise InvalidInput(f"{at}.currency", f"program {shown(row.program)} is counted in "
                           f"{currency_of[row.program]}, not {row.currency}")
    if not isinstance(row.period, str) or row.period not in periods:
        raise InvalidInput(f"{at}.period", f"{shown(row.period)} is not one of the periods")


def cohorts_from_activity(activity: Sequence[PeriodActivity],
                          periods: Sequence[str]) -> tuple[Cohort, ...]:
    """The cohort table of per-period totals: each period's expiries, then its redemptions,
    are taken from the oldest cohort's open points first (the current period's own cohort
    last). Points redeemed or expired beyond a program's open points are an error."""
    index = check_periods(periods)
    if not isinstance(activity, Sequence) or isinstance(activity, str):
        raise InvalidInput("activity", "must be a list of period totals")
    if len(activity) > COHORTS_MAX:
        raise InvalidInput("activity", f"must hold at most {COHORTS_MAX} rows")
    currency_of: dict[str, str] = {}
    rows: dict[str, dict[int, tuple[int, PeriodActivity]]] = {}
    for i, a in enumerate(activity):
        at = f"activity[{i}]"
        if not isinstance(a, PeriodActivity):
            raise InvalidInput(at, f"must be a PeriodActivity, not {shown(a)}")
        _check_program_row(a, at, index, currency_of)
        for name in ("points_earned", "points_redeemed", "points_expired"):
            check_count(getattr(a, name), f"{at}.{name}", limit=POINTS_MAX)
        check_count(a.face_value_micros, f"{at}.face_value_micros", limit=FACE_VALUE_MICROS_MAX)
        check_count(a.sales_minor, f"{at}.sales_minor", limit=AMOUNT_MAX_MINOR)
        if a.goods_ssp_minor is not None:
            check_count(a.goods_ssp_minor, f"{at}.goods_ssp_minor", limit=AMOUNT_MAX_MINOR)
        _check_values(a, at)
        by_period = rows.setdefault(a.program, {})
        if index[a.period] in by_period:
            raise InvalidInput(f"{at}.period", f"a second row of program {shown(a.program)} "
                               f"in period {shown(a.period)}")
        by_period[index[a.period]] = (i, a)

    cohorts: list[Cohort] = []
    for program, by_period in rows.items():
        first = min(by_period)
        # Per cohort (by period position): points still open, and what happened by age.
        open_points: dict[int, int] = {}
        redeemed: dict[int, list[int]] = {}
        expired: dict[int, list[int]] = {}
        for t in range(first, len(periods)):
            if t not in by_period:  # nothing happened: every open cohort ages by a period
                for c in open_points:
                    redeemed[c].append(0)
                    expired[c].append(0)
                continue
            i, row = by_period[t]
            if row.points_earned:
                open_points[t] = row.points_earned
                redeemed[t] = []
                expired[t] = []
            for c in open_points:
                redeemed[c].append(0)
                expired[c].append(0)
            for name, taken in (("points_expired", expired), ("points_redeemed", redeemed)):
                left = getattr(row, name)
                for c in sorted(open_points):
                    part = min(left, open_points[c])
                    open_points[c] -= part
                    taken[c][-1] += part
                    left -= part
                if left:
                    raise InvalidInput(f"activity[{i}].{name}", f"{left} more than program "
                                       f"{shown(program)} had open in {shown(row.period)}")
        for t, (_, a) in sorted(by_period.items()):
            if a.points_earned == 0 and a.sales_minor == 0:
                continue
            cohorts.append(Cohort(
                program=program, currency=a.currency, period=a.period,
                points_earned=a.points_earned, face_value_micros=a.face_value_micros,
                sales_minor=a.sales_minor,
                redeemed_by_age=_trimmed(redeemed.get(t, [])),
                expired_by_age=_trimmed(expired.get(t, [])),
                goods_ssp_minor=a.goods_ssp_minor))
    return tuple(cohorts)


def _trimmed(values: list[int]) -> tuple[int, ...]:
    """Without trailing zeros (an age not listed is an age with nothing)."""
    end = len(values)
    while end and values[end - 1] == 0:
        end -= 1
    return tuple(values[:end])
