"""The points purse: points held in lots, redeemed earliest-expiry-first, expired by lot.

A lot records what was earned, when, until when, from which rule-set version and at what
money value per point (for the liability). A lot may be pending until `vests_at_us` (earned
but not spendable until, say, the return window has passed). Expiry removes only a lot's
unconsumed remainder, once: an expired lot has nothing left to expire again.

Pure code: `now` is passed in, events come out, `evolve` is the only place state changes.
"""

from __future__ import annotations

import datetime as dt
import enum
from zoneinfo import ZoneInfo

import msgspec

from domain.common import InvalidInput


class ExpiryKind(enum.IntEnum):
    NEVER = 0
    MONTHS_AFTER = 1  # N calendar months after earning (the day is clamped to the month's end)
    END_OF_MONTH = 2  # at the end of the Nth month after the month of earning (N=0: that month)
    END_OF_YEAR = 3  # at the end of the Nth year after the year of earning (N=0: that year)


class ExpiryPolicy(msgspec.Struct, frozen=True):
    kind: ExpiryKind
    n: int = 0
    timezone: str = "UTC"  # the program's: where "end of the month" is


NEVER_US = 2**62


def _to_us(moment: dt.datetime) -> int:
    delta = moment.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def expires_at_us(earned_at_us: int, policy: ExpiryPolicy) -> int:
    """When a lot earned at `earned_at_us` expires under `policy` (NEVER_US: never)."""
    if policy.kind == ExpiryKind.NEVER:
        return NEVER_US
    if policy.n < 0:
        raise InvalidInput("expiry.n", "must not be negative")
    zone = ZoneInfo(policy.timezone)
    earned = dt.datetime.fromtimestamp(earned_at_us / 1_000_000, tz=dt.UTC).astimezone(zone)
    if policy.kind == ExpiryKind.MONTHS_AFTER:
        year, month = _add_months(earned.year, earned.month, policy.n)
        next_year, next_month = _add_months(year, month, 1)
        last_day = (dt.date(next_year, next_month, 1) - dt.timedelta(days=1)).day
        return _to_us(earned.replace(year=year, month=month, day=min(earned.day, last_day)))
    if policy.kind == ExpiryKind.END_OF_MONTH:
        year, month = _add_months(earned.year, earned.month, policy.n + 1)
        return _to_us(dt.datetime(year, month, 1, tzinfo=zone))
    return _to_us(dt.datetime(earned.year + policy.n + 1, 1, 1, tzinfo=zone))


class Lot(msgspec.Struct, frozen=True, array_like=True):
    lot_id: str
    amount: int
    remaining: int
    earned_at_us: int
    vests_at_us: int  # spendable from then; = earned_at_us when not pending
    expires_at_us: int
    source: str  # e.g. "purchase:<request id>"
    rule_set: str  # "<rule set id>@<version>" that produced it
    value_micros_per_point: int  # money value of one point, in millionths of a minor unit
    # The program whose points these are: "" = the card's own (its issuer's) program, as in
    # every lot written before a card could hold several; else the program's owner (points
    # received by exchange, domain/exchange).
    program: str = ""


class Purse(msgspec.Struct, frozen=True, array_like=True):
    lots: tuple[Lot, ...] = ()


# ------------------------------------------------------------------------------ events


class PointsEarned(msgspec.Struct, frozen=True, tag="PointsEarned"):
    lot: Lot


class PointsRedeemed(msgspec.Struct, frozen=True, tag="PointsRedeemed"):
    takes: tuple[tuple[str, int], ...]  # (lot id, points), earliest expiry first


class PointsExpired(msgspec.Struct, frozen=True, tag="PointsExpired"):
    lot_id: str
    amount: int  # the remainder the lot still had


PointsEvent = PointsEarned | PointsRedeemed | PointsExpired


def evolve(purse: Purse, event: PointsEvent) -> Purse:
    if isinstance(event, PointsEarned):
        return Purse((*purse.lots, event.lot))
    if isinstance(event, PointsRedeemed):
        takes = dict(event.takes)
        lots = tuple(msgspec.structs.replace(lot, remaining=lot.remaining - takes[lot.lot_id])
                     if lot.lot_id in takes else lot for lot in purse.lots)
    else:
        lots = tuple(msgspec.structs.replace(lot, remaining=lot.remaining - event.amount)
                     if lot.lot_id == event.lot_id else lot for lot in purse.lots)
    assert all(lot.remaining >= 0 for lot in lots), "a lot went below zero"
    return Purse(lots)


# ------------------------------------------------------------------------------ reads


def _spendable(lot: Lot, now_us: int) -> bool:
    return lot.remaining > 0 and lot.vests_at_us <= now_us < lot.expires_at_us


def spendable(purse: Purse, now_us: int) -> int:
    return sum(lot.remaining for lot in purse.lots if _spendable(lot, now_us))


def pending(purse: Purse, now_us: int) -> int:
    return sum(lot.remaining for lot in purse.lots
               if lot.remaining > 0 and now_us < lot.vests_at_us and now_us < lot.expires_at_us)


# ------------------------------------------------------------------------------ decisions


class NotEnoughPoints(Exception):
    def __init__(self, asked: int, available: int) -> None:
        super().__init__(f"{asked} points asked, {available} spendable")
        self.asked = asked
        self.available = available


def earn(lot: Lot) -> PointsEarned:
    if lot.amount <= 0 or lot.remaining != lot.amount:
        raise InvalidInput("points", "a new lot needs a positive amount, all of it remaining")
    if not lot.earned_at_us <= lot.vests_at_us < lot.expires_at_us:
        raise InvalidInput("expires_at", "a lot must vest after it is earned and before it "
                           "expires")
    return PointsEarned(lot)


def redeem(purse: Purse, points: int, now_us: int) -> PointsRedeemed:
    """Take `points` from spendable lots, the one expiring first first (then the oldest)."""
    if points <= 0:
        raise InvalidInput("points", "must be greater than 0")
    available = spendable(purse, now_us)
    if points > available:
        raise NotEnoughPoints(points, available)
    order = sorted((lot for lot in purse.lots if _spendable(lot, now_us)),
                   key=lambda lot: (lot.expires_at_us, lot.earned_at_us, lot.lot_id))
    takes: list[tuple[str, int]] = []
    left = points
    for lot in order:
        take = min(left, lot.remaining)
        takes.append((lot.lot_id, take))
        left -= take
        if left == 0:
            break
    return PointsRedeemed(tuple(takes))


def expire(purse: Purse, now_us: int) -> tuple[PointsExpired, ...]:
    """The remainders of every lot whose time is up (nothing for a lot already expired)."""
    return tuple(PointsExpired(lot.lot_id, lot.remaining) for lot in purse.lots
                 if lot.remaining > 0 and lot.expires_at_us <= now_us)
