"""Points programs: each partner (and optionally the alliance) runs one.

A program fixes the money value of a point (for redemption at the till and for the liability
each lot carries), when earned points expire, and how long they stay pending before they can
be spent (the return window). Redefining a program changes new lots only: a lot keeps the value
and expiry it was earned with.
"""

from __future__ import annotations

import datetime as dt
import enum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from domain.common import CLASS_PATTERN, InvalidInput, check_id, shown
from domain.currency import check_currency
from domain.points.purse import ExpiryKind, ExpiryPolicy

ALLIANCE = "alliance"
POINT_VALUE_MICROS_MAX = 10**12  # a point worth at most a million minor units: a typo guard
EXPIRY_N_MAX = 120
VESTING_DAYS_MAX = 365
DAY_US = 86_400 * 1_000_000
TIERS_MAX = 16
QUALIFYING_WINDOW_US = 365 * DAY_US  # tiers look at the spend of the last 365 days


class Clawback(enum.IntEnum):
    """What a return does when the points it claws back were already spent."""

    WRITE_OFF = 1  # the program takes the loss (recorded); the card's points stay >= 0
    POINTS_DEBT = 2  # the card owes them: its balance goes negative, new points pay first


class TierLevel(msgspec.Struct, frozen=True, array_like=True):
    name: str  # e.g. SILVER, GOLD: what rules name in their `tiers` condition
    threshold_minor: int  # qualifying spend over the window that reaches this tier


class Program(msgspec.Struct, frozen=True, array_like=True):
    owner: str  # a partner id, or ALLIANCE
    currency: str  # the currency a point's value is counted in
    point_value_micros: int  # one point in millionths of a minor unit (1_000_000 = 1 cent)
    expiry_kind: int  # ExpiryKind
    expiry_n: int
    timezone: str  # where "the end of the month" is
    vesting_days: int  # earned points are pending this long (0 = spendable at once)
    tiers: tuple[TierLevel, ...] = ()  # ascending thresholds
    clawback: int = Clawback.WRITE_OFF

    def tier_for(self, qualifying_minor: int) -> str:
        """The highest tier the spend reaches ("" = none)."""
        reached = ""
        for level in self.tiers:
            if qualifying_minor >= level.threshold_minor:
                reached = level.name
        return reached

    def rank(self, tier: str) -> int:
        """Position of a tier (-1: no tier, or one this program no longer has)."""
        for index, level in enumerate(self.tiers):
            if level.name == tier:
                return index
        return -1

    def period_end_at_or_before(self, at_us: int) -> int:
        """The most recent month boundary (midnight on the 1st, in the program's timezone) at
        or before `at_us`: the end of the last whole period, where tier reviews look."""
        zone = ZoneInfo(self.timezone)
        local = dt.datetime.fromtimestamp(at_us / 1_000_000, tz=dt.UTC).astimezone(zone)
        start = dt.datetime(local.year, local.month, 1, tzinfo=zone)
        delta = start.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000

    @property
    def expiry(self) -> ExpiryPolicy:
        return ExpiryPolicy(ExpiryKind(self.expiry_kind), self.expiry_n, self.timezone)

    def value_minor(self, points: int) -> int:
        """What `points` are worth at the till, rounded down (the customer never gets a
        fraction of a cent the ledger does not have)."""
        return points * self.point_value_micros // 1_000_000

    def points_for(self, amount_minor: int) -> int:
        """The fewest points worth at least `amount_minor`."""
        return -(-amount_minor * 1_000_000 // self.point_value_micros)


class DefineProgram(msgspec.Struct, frozen=True, array_like=True, tag="DefineProgram"):
    owner: str
    currency: str
    point_value_micros: int
    expiry_kind: int
    expiry_n: int
    timezone: str
    vesting_days: int
    tiers: tuple[TierLevel, ...] = ()
    clawback: int = Clawback.WRITE_OFF

    def validate(self) -> None:
        if self.owner != ALLIANCE:
            check_id(self.owner, "owner")
        check_currency(self.currency)
        if not 0 < self.point_value_micros <= POINT_VALUE_MICROS_MAX:
            raise InvalidInput("point_value_micros", f"must be 1..{POINT_VALUE_MICROS_MAX}")
        if self.expiry_kind not in ExpiryKind._value2member_map_:
            raise InvalidInput("expiry_kind", "must be NEVER, MONTHS_AFTER, END_OF_MONTH or "
                               "END_OF_YEAR")
        if not 0 <= self.expiry_n <= EXPIRY_N_MAX:
            raise InvalidInput("expiry_n", f"must be 0..{EXPIRY_N_MAX}")
        if self.expiry_kind == ExpiryKind.MONTHS_AFTER and self.expiry_n == 0:
            raise InvalidInput("expiry_n", "must be at least 1 for MONTHS_AFTER")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise InvalidInput("timezone",
                               f"unknown IANA time zone {shown(self.timezone)}") from None
        if not 0 <= self.vesting_days <= VESTING_DAYS_MAX:
            raise InvalidInput("vesting_days", f"must be 0..{VESTING_DAYS_MAX}")
        if len(self.tiers) > TIERS_MAX:
            raise InvalidInput("tiers", f"must hold at most {TIERS_MAX} tiers")
        previous = 0
        for index, level in enumerate(self.tiers):
            if not CLASS_PATTERN.fullmatch(level.name):
                raise InvalidInput(f"tiers[{index}].name", "must be 1..32 of [A-Z0-9_]")
            if not previous < level.threshold_minor <= 10**15:
                raise InvalidInput(f"tiers[{index}].threshold_minor",
                                   "must be greater than the tier below's (and than 0)")
            previous = level.threshold_minor
        if self.clawback not in Clawback._value2member_map_:
            raise InvalidInput("clawback", "must be WRITE_OFF or POINTS_DEBT")
        if len({level.name for level in self.tiers}) != len(self.tiers):
            raise InvalidInput("tiers", "names a tier twice")

    def program(self) -> Program:
        return Program(self.owner, self.currency, self.point_value_micros, self.expiry_kind,
                       self.expiry_n, self.timezone, self.vesting_days, self.tiers,
                       self.clawback)
