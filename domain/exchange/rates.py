"""Exchange rates between points programs: registry data, versioned and effective-dated like
rule sets (a published version never changes; a newer one supersedes the older ones from its
`valid_from_us`).

A rate turns points of the source program into points of the destination program: a fee in
source points comes off first (`fee_fixed_points` plus `fee_bp` basis points of the points
taken, rounded down: the customer never pays a fraction of a point), the rest is multiplied
by numerator/denominator and rounded as the rate says. Minimum, maximum and the optional daily
limit per card count the points taken from the source purse (fee included).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence

import msgspec

from domain.common import InvalidInput, check_id, shown
from domain.points.program import ALLIANCE

RATE_TERM_MAX = 10**9  # numerator and denominator: enough for any real rate, no overflow games
POINTS_MAX = 10**12  # per exchange and per day: a typo guard
FEE_BP_MAX = 5_000  # at most half of what is taken goes in fees
QUOTE_TTL_S_DEFAULT = 60
QUOTE_TTL_S_MAX = 3_600  # bounds how long a used quote's id stays in the card's state
VALID_FROM_US_MAX = 2**62


class Rounding(enum.IntEnum):
    DOWN = 1
    HALF_UP = 2
    UP = 3


class ExchangeRate(msgspec.Struct, frozen=True, array_like=True):
    from_program: str  # a program's owner: a partner id or "alliance"
    to_program: str
    version: int  # 1, 2, ... per (from, to)
    valid_from_us: int
    numerator: int
    denominator: int
    rounding: int  # Rounding
    fee_fixed_points: int
    fee_bp: int
    min_points: int  # per exchange, of the points taken (fee included)
    max_points: int
    daily_limit_points: int  # per card and UTC day, points taken; 0 = none
    quote_ttl_s: int  # how long a quote stands; 0 = QUOTE_TTL_S_DEFAULT

    @property
    def pair(self) -> str:
        return pair_key(self.from_program, self.to_program)

    @property
    def ttl_us(self) -> int:
        return (self.quote_ttl_s or QUOTE_TTL_S_DEFAULT) * 1_000_000

    def fee(self, taken: int) -> int:
        return self.fee_fixed_points + taken * self.fee_bp // 10_000

    def given(self, taken: int) -> int:
        """Destination points for `taken` source points (0 when the fee eats them)."""
        net = taken - self.fee(taken)
        if net <= 0:
            return 0
        return divide(net * self.numerator, self.denominator, Rounding(self.rounding))

    def taken_for(self, wanted: int) -> int:
        """The fewest source points that give at least `wanted` (0: more than POINTS_MAX).
        `given` never decreases as `taken` grows (the fee grows by less than one point per
        point), so a binary search finds it."""
        low, high = 1, POINTS_MAX
        if self.given(high) < wanted:
            return 0
        while low < high:
            middle = (low + high) // 2
            if self.given(middle) >= wanted:
                high = middle
            else:
                low = middle + 1
        return low


def divide(numerator: int, denominator: int, rounding: Rounding) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if rounding == Rounding.UP and remainder:
        return quotient + 1
    if rounding == Rounding.HALF_UP and 2 * remainder >= denominator:
        return quotient + 1
    return quotient


def pair_key(from_program: str, to_program: str) -> str:
    return f"{from_program}>{to_program}"


def check_program(value: str, field: str) -> str:
    if value != ALLIANCE:
        check_id(value, field)
    return value


class PublishExchangeRate(msgspec.Struct, frozen=True, array_like=True,
                          tag="PublishExchangeRate"):
    rate: ExchangeRate

    def validate(self) -> None:
        r = self.rate
        check_program(r.from_program, "rate.from_program")
        check_program(r.to_program, "rate.to_program")
        if r.from_program == r.to_program:
            raise InvalidInput("rate.to_program", "must differ from from_program")
        if r.version < 1:
            raise InvalidInput("rate.version", "must be 1 or more")
        if not 0 <= r.valid_from_us < VALID_FROM_US_MAX:
            raise InvalidInput("rate.valid_from", "must be a time after 1970")
        if not 1 <= r.numerator <= RATE_TERM_MAX:
            raise InvalidInput("rate.numerator", f"must be 1..{RATE_TERM_MAX}")
        if not 1 <= r.denominator <= RATE_TERM_MAX:
            raise InvalidInput("rate.denominator", f"must be 1..{RATE_TERM_MAX}")
        if r.rounding not in Rounding._value2member_map_:
            raise InvalidInput("rate.rounding", "must be DOWN, HALF_UP or UP")
        if not 0 <= r.fee_fixed_points <= POINTS_MAX:
            raise InvalidInput("rate.fee_fixed_points", f"must be 0..{POINTS_MAX}")
        if not 0 <= r.fee_bp <= FEE_BP_MAX:
            raise InvalidInput("rate.fee_bp", f"must be 0..{FEE_BP_MAX}")
        if not 1 <= r.min_points <= POINTS_MAX:
            raise InvalidInput("rate.min_points", f"must be 1..{POINTS_MAX}")
        if not r.min_points <= r.max_points <= POINTS_MAX:
            raise InvalidInput("rate.max_points", f"must be min_points..{POINTS_MAX}")
        if r.fee_fixed_points >= r.min_points:
            raise InvalidInput("rate.fee_fixed_points",
                               "must be less than min_points (an exchange must give something)")
        if not 0 <= r.daily_limit_points <= POINTS_MAX:
            raise InvalidInput("rate.daily_limit_points", f"must be 0 (none)..{POINTS_MAX}")
        if r.daily_limit_points and r.daily_limit_points < r.min_points:
            raise InvalidInput("rate.daily_limit_points", "must be at least min_points")
        if not 0 <= r.quote_ttl_s <= QUOTE_TTL_S_MAX:
            raise InvalidInput("rate.quote_ttl_s", f"must be 0 (the default, "
                               f"{QUOTE_TTL_S_DEFAULT} s)..{QUOTE_TTL_S_MAX}")

    def check_versions(self, versions: Sequence[ExchangeRate]) -> None:
        expected = len(versions) + 1
        if self.rate.version != expected:
            raise InvalidInput("rate.version", f"must be {expected}: published versions of "
                               f"{shown(self.rate.pair)} are immutable and numbered without gaps")


def in_force(versions: Sequence[ExchangeRate], at_us: int) -> ExchangeRate | None:
    """The newest version whose valid_from has come (it supersedes the older ones)."""
    for rate in reversed(versions):
        if rate.valid_from_us <= at_us:
            return rate
    return None
