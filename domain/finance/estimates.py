"""Expected redemptions: how many of a cohort's points will ever be redeemed, estimated anew
every period, by one of two methods, with the figures that produced the estimate.

PUBLISHED: finance publishes an expected redemption rate per program (basis points of the
points earned), effective from a period until the next one it publishes. Every cohort of the
program is expected to redeem that share of the points it earned.

COHORT_RUNOFF: the ledger's own history of earning cohorts, as a chain ladder on the points
still open. At the end of period t, for every age k observed so far, the age-to-age rates are
pooled over the cohorts that have reached that age (weighted by their open points):

    q_k = points redeemed at age k / points open at the start of age k
    x_k = points expired at age k  / points open at the start of age k

and a cohort of age a with O points open is expected to redeem, from now on,

    O x F_a,   F_a = q_(a+1) + (1 - q_(a+1) - x_(a+1)) x F_(a+1),   F_K = tail

where K is the oldest age observed. The tail is what becomes of points still open beyond the
oldest age: redeemed and expired in the proportion of the oldest age that saw any
(q / (q + x)), or all redeemed when no age has shown any movement yet: with no evidence of
breakage none is assumed (IFRS 15.56: estimated breakage is constrained to what is highly
probable not to reverse). A cohort's expected redemptions are then its redemptions to date
plus O x F_a. Only periods up to t are read: a period's estimate never changes when later
periods are added. F is chained exactly; only when its denominator passes 10^18 is it
rounded (half up) to 18 decimal places, so that hundreds of ages stay cheap. The expected
redemptions are rounded to whole points (half up).

Either way the estimate is bounded by the facts before it is used (`bounded`): at least the
points already redeemed, at most the points earned less those expired (expired points are
final: they can never be redeemed).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from fractions import Fraction

import msgspec

from domain.common import InvalidInput, check_id, shown
from domain.finance.cohorts import Cohort, check_count, round_half_up

BP = 10_000  # basis points in a whole
CHAIN_DENOMINATOR = 10**18  # F_a is kept to 18 decimal places


class Method(enum.IntEnum):
    """How expected redemptions are estimated. The numbers are kept; a new method gets a new
    number."""

    PUBLISHED = 1  # finance's published expected redemption rate per program
    COHORT_RUNOFF = 2  # the ledger's history of earning cohorts (chain ladder on open points)


def check_method(value: object) -> Method:
    if isinstance(value, bool) or not isinstance(value, int) \
            or value not in Method._value2member_map_:
        raise InvalidInput("method", f"must be PUBLISHED or COHORT_RUNOFF, not {shown(value)}")
    return Method(value)


class PublishedEstimate(msgspec.Struct, frozen=True):
    """Finance's expected redemption rate for a program, in force from `effective_from`
    until the program's next published estimate."""

    program: str
    effective_from: str  # a period label
    redemption_rate_bp: int  # share of the points earned expected to be redeemed (9_500 = 95 %)


def check_published(published: Sequence[PublishedEstimate],
                    periods: dict[str, int]) -> dict[str, list[tuple[int, PublishedEstimate]]]:
    """program -> its estimates as (period position, estimate), in period order."""
    if not isinstance(published, Sequence) or isinstance(published, str):
        raise InvalidInput("estimates", "must be a list of published estimates")
    by_program: dict[str, list[tuple[int, PublishedEstimate]]] = {}
    for i, e in enumerate(published):
        at = f"estimates[{i}]"
        if not isinstance(e, PublishedEstimate):
            raise InvalidInput(at, f"must be a PublishedEstimate, not {shown(e)}")
        if not isinstance(e.program, str):
            raise InvalidInput(f"{at}.program", f"must be text, not {shown(e.program)}")
        check_id(e.program, f"{at}.program")
        if not isinstance(e.effective_from, str) or e.effective_from not in periods:
            raise InvalidInput(f"{at}.effective_from",
                               f"{shown(e.effective_from)} is not one of the periods")
        check_count(e.redemption_rate_bp, f"{at}.redemption_rate_bp", limit=BP)
        rows = by_program.setdefault(e.program, [])
        position = periods[e.effective_from]
        if any(p == position for p, _ in rows):
            raise InvalidInput(f"{at}.effective_from", f"program {shown(e.program)} already "
                               f"has an estimate from {shown(e.effective_from)}")
        rows.append((position, e))
    for rows in by_program.values():
        rows.sort(key=lambda row: row[0])
    return by_program


class AgeRate(msgspec.Struct, frozen=True):
    """One age of the run-off triangle, pooled over the cohorts that have reached it."""

    age: int
    cohorts: int  # cohorts observed at this age
    open_points: int  # their points open at the start of the age
    redeemed_points: int  # ... redeemed during it
    expired_points: int  # ... expired during it

    @property
    def redeemed_rate(self) -> Fraction:
        return Fraction(self.redeemed_points, self.open_points) if self.open_points else \
            Fraction(0)

    @property
    def expired_rate(self) -> Fraction:
        return Fraction(self.expired_points, self.open_points) if self.open_points else \
            Fraction(0)


class CohortEstimate(msgspec.Struct, frozen=True):
    """One cohort's expected redemptions at the end of a period, and the bounded figure used."""

    cohort_period: str
    age: int
    points_earned: int
    redeemed_to_date: int
    expired_to_date: int
    open_points: int
    expected_rate: Fraction  # expected redemptions / points earned (the estimate, unbounded)
    expected_points: int  # the estimate in whole points (half up)
    used_points: int  # bounded: redeemed_to_date <= used <= points_earned - expired_to_date


class Estimate(msgspec.Struct, frozen=True):
    """How a program's expected redemptions were estimated at the end of a period."""

    program: str
    period: str
    method: Method
    cohorts: tuple[CohortEstimate, ...]
    redemption_rate_bp: int = 0  # PUBLISHED: the rate in force
    effective_from: str = ""  # PUBLISHED: the period the rate was published for
    age_rates: tuple[AgeRate, ...] = ()  # COHORT_RUNOFF: the triangle's pooled rates
    tail_rate: Fraction = Fraction(1)  # COHORT_RUNOFF: share of points open past the last age
    #                                    expected to be redeemed


def bounded(expected: int, redeemed_to_date: int, expired_to_date: int, earned: int) -> int:
    """The estimate within the facts: never below the points already redeemed, never above
    the points that can still be (earned less expired: expiry is final)."""
    return min(max(expected, redeemed_to_date), earned - expired_to_date)


class CohortHistory:
    """One program's cohort table read period by period: at `advance(t)` the diagonal of
    period t (every cohort's age t - c) joins the pooled age sums, so an estimate at t sees
    periods up to t and nothing later. O(cohorts) per period."""

    def __init__(self, cohorts: Sequence[tuple[int, Cohort]]) -> None:
        self.cohorts = sorted(cohorts, key=lambda item: item[0])  # (period position, cohort)
        self.redeemed: dict[int, int] = {}  # cohort position -> redeemed to date
        self.expired: dict[int, int] = {}
        self.open_at_start: dict[int, int] = {}  # cohort position -> open when period t began
        # Pooled per age: [cohorts, open at start, redeemed, expired].
        self.ages: list[list[int]] = []
        self.t = -1

    def advance(self, t: int) -> None:
        assert t == self.t + 1, "periods are read in order, from the first"
        self.t = t
        for c, cohort in self.cohorts:
            if c > t:
                break
            age = t - c
            red = cohort.redeemed_by_age[age] if age < len(cohort.redeemed_by_age) else 0
            exp = cohort.expired_by_age[age] if age < len(cohort.expired_by_age) else 0
            start_open = cohort.points_earned - self.redeemed.get(c, 0) - self.expired.get(c, 0)
            self.open_at_start[c] = start_open
            while len(self.ages) <= age:
                self.ages.append([0, 0, 0, 0])
            pooled = self.ages[age]
            pooled[0] += 1
            pooled[1] += start_open
            pooled[2] += red
            pooled[3] += exp
            self.redeemed[c] = self.redeemed.get(c, 0) + red
            self.expired[c] = self.expired.get(c, 0) + exp

    def open_cohorts(self) -> list[tuple[int, Cohort]]:
        """The cohorts with points open when period t began, and the one earned in t. A
        cohort closed before (every point redeemed or expired) has nothing left to estimate:
        its expected redemptions are its redemptions, and its revenue is all recognised."""
        return [(c, cohort) for c, cohort in self.cohorts
                if c == self.t or (c < self.t and self.open_at_start[c] > 0)]


def estimate(history: CohortHistory, program: str, periods: Sequence[str], method: Method,
             published: Sequence[tuple[int, PublishedEstimate]]) -> Estimate:
    """The program's estimate at the end of period `history.t`, per cohort earned so far."""
    t = history.t
    if method == Method.PUBLISHED:
        in_force = [e for p, e in published if p <= t]
        if not in_force:
            raise InvalidInput("estimates", f"program {shown(program)} has no published "
                               f"estimate in force in period {shown(periods[t])}")
        current = in_force[-1]
        rate = Fraction(current.redemption_rate_bp, BP)
        return Estimate(program, periods[t], method,
                        _cohort_estimates(history, periods, lambda age, open_points: rate,
                                          per_earned=True),
                        redemption_rate_bp=current.redemption_rate_bp,
                        effective_from=current.effective_from)
    age_rates = tuple(AgeRate(k, *pooled) for k, pooled in enumerate(history.ages))
    tail = _tail(age_rates)
    chain = _chain(age_rates, tail)
    return Estimate(program, periods[t], method,
                    _cohort_estimates(history, periods, lambda age, open_points: chain[age],
                                      per_earned=False),
                    age_rates=age_rates, tail_rate=tail)


def _tail(age_rates: Sequence[AgeRate]) -> Fraction:
    for rate in reversed(age_rates):
        moved = rate.redeemed_points + rate.expired_points
        if moved:
            return Fraction(rate.redeemed_points, moved)
    return Fraction(1)


def _chain(age_rates: Sequence[AgeRate], tail: Fraction) -> list[Fraction]:
    """F_a for a = 0..K: the share of the points open at the end of age a expected to be
    redeemed from then on."""
    chain = [Fraction(0)] * len(age_rates)
    if not chain:
        return chain
    f = tail
    chain[-1] = f
    for a in range(len(age_rates) - 2, -1, -1):
        nxt = age_rates[a + 1]
        q, x = nxt.redeemed_rate, nxt.expired_rate
        f = q + (1 - q - x) * f
        if f.denominator > CHAIN_DENOMINATOR:  # exact while that is cheap
            f = Fraction(round_half_up(f * CHAIN_DENOMINATOR), CHAIN_DENOMINATOR)
        chain[a] = f
    return chain


def _cohort_estimates(history: CohortHistory, periods: Sequence[str],
                      rate_of: Callable[[int, int], Fraction], *,
                      per_earned: bool) -> tuple[CohortEstimate, ...]:
    """`rate_of(age, open)`: with per_earned, the expected share of the points earned; else
    the expected share of the points still open (redemptions to date are added)."""
    t = history.t
    rows: list[CohortEstimate] = []
    for c, cohort in history.open_cohorts():
        earned = cohort.points_earned
        red, exp = history.redeemed.get(c, 0), history.expired.get(c, 0)
        open_points = earned - red - exp
        age = t - c
        if per_earned:
            expected = rate_of(age, open_points) * earned
        else:
            expected = red + open_points * rate_of(age, open_points)
        rate = expected / earned if earned else Fraction(0)
        expected_points = round_half_up(expected)
        rows.append(CohortEstimate(periods[c], age, earned, red, exp, open_points, rate,
                                   expected_points, bounded(expected_points, red, exp, earned)))
    return tuple(rows)
