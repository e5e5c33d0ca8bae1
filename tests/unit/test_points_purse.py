"""The points purse: lots, earliest-expiry-first redemption, expiry of remainders only, vesting,
and the expiry policies' dates."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.common import InvalidInput
from domain.points.purse import (
    NEVER_US,
    ExpiryKind,
    ExpiryPolicy,
    Lot,
    NotEnoughPoints,
    PointsEarned,
    Purse,
    earn,
    evolve,
    expire,
    expires_at_us,
    pending,
    redeem,
    spendable,
)

DAY = 86_400_000_000


def us(text: str, zone: str = "UTC") -> int:
    from zoneinfo import ZoneInfo

    moment = dt.datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone))
    return int(moment.timestamp() * 1_000_000)


def lot(lot_id: str, amount: int, earned: int, expires: int, vests: int | None = None) -> Lot:
    return Lot(lot_id, amount, amount, earned, earned if vests is None else vests, expires,
               "purchase:r1", "spring@1", 5_000)


def purse(*lots: Lot) -> Purse:
    state = Purse()
    for each in lots:
        state = evolve(state, earn(each))
    return state


def test_redemption_takes_the_lot_expiring_first() -> None:
    p = purse(lot("late", 100, 0, 90 * DAY), lot("soon", 50, 10 * DAY, 30 * DAY),
              lot("never", 70, 0, NEVER_US))
    taken = redeem(p, 120, 20 * DAY)
    assert taken.takes == (("soon", 50), ("late", 70))
    after = evolve(p, taken)
    assert spendable(after, 20 * DAY) == 100
    assert [x.remaining for x in after.lots] == [30, 0, 70]


def test_expiry_removes_only_the_remainder_and_never_twice() -> None:
    p = purse(lot("a", 100, 0, 30 * DAY), lot("b", 40, 0, 60 * DAY))
    p = evolve(p, redeem(p, 60, DAY))  # 60 from a (expires first)
    expired = expire(p, 30 * DAY)
    assert [(e.lot_id, e.amount) for e in expired] == [("a", 40)]
    for event in expired:
        p = evolve(p, event)
    assert expire(p, 30 * DAY) == () and expire(p, 31 * DAY) == ()
    assert spendable(p, 30 * DAY) == 40


def test_a_pending_lot_is_not_spendable_until_it_vests() -> None:
    p = purse(lot("held", 80, 0, 90 * DAY, vests=14 * DAY))
    assert (spendable(p, DAY), pending(p, DAY)) == (0, 80)
    with pytest.raises(NotEnoughPoints):
        redeem(p, 1, DAY)
    assert (spendable(p, 14 * DAY), pending(p, 14 * DAY)) == (80, 0)


@pytest.mark.parametrize(("points", "error"), [(0, InvalidInput), (-5, InvalidInput),
                                               (101, NotEnoughPoints)])
def test_bad_redemptions_write_nothing(points: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        redeem(purse(lot("a", 100, 0, 30 * DAY)), points, DAY)


def test_a_lot_must_make_sense() -> None:
    with pytest.raises(InvalidInput):
        earn(lot("x", 0, 0, DAY))
    with pytest.raises(InvalidInput, match="expires_at"):
        earn(lot("x", 5, DAY, DAY))


@pytest.mark.parametrize(("earned", "policy", "expires"), [
    ("2026-01-31 10:00", ExpiryPolicy(ExpiryKind.MONTHS_AFTER, 1), "2026-02-28 10:00"),
    ("2026-03-15 23:30", ExpiryPolicy(ExpiryKind.MONTHS_AFTER, 12), "2027-03-15 23:30"),
    ("2026-03-15 10:00", ExpiryPolicy(ExpiryKind.END_OF_MONTH, 0), "2026-04-01 00:00"),
    ("2026-11-15 10:00", ExpiryPolicy(ExpiryKind.END_OF_MONTH, 2), "2027-02-01 00:00"),
    ("2026-06-01 10:00", ExpiryPolicy(ExpiryKind.END_OF_YEAR, 1), "2028-01-01 00:00"),
])
def test_expiry_policies(earned: str, policy: ExpiryPolicy, expires: str) -> None:
    assert expires_at_us(us(earned), policy) == us(expires)


def test_end_of_month_is_in_the_programs_timezone() -> None:
    policy = ExpiryPolicy(ExpiryKind.END_OF_MONTH, 0, "Asia/Shanghai")
    # 2026-03-31 20:00 UTC is already April 1st in Shanghai: expiry at the end of April there
    assert expires_at_us(us("2026-03-31 20:00"), policy) == us("2026-05-01 00:00",
                                                               "Asia/Shanghai")
    assert expires_at_us(0, ExpiryPolicy(ExpiryKind.NEVER)) == NEVER_US


operations = st.lists(st.one_of(
    st.tuples(st.just("earn"), st.integers(1, 500), st.integers(0, 40), st.integers(1, 60),
              st.integers(0, 10)),
    st.tuples(st.just("redeem"), st.integers(1, 400)),
    st.tuples(st.just("time"), st.integers(1, 20))), max_size=40)


@settings(max_examples=200, deadline=None)
@given(operations)
def test_points_equal_the_lots_remainders_and_never_go_negative(ops: list[tuple]) -> None:
    p = Purse()
    now = 0
    earned = redeemed = expired = 0
    for index, op in enumerate(ops):
        for event in expire(p, now):
            expired += event.amount
            p = evolve(p, event)
        if op[0] == "earn":
            _, amount, start, life, delay = op
            new = lot(f"l{index}", amount, now, now + (start + life) * DAY,
                      vests=now + min(delay, start + life - 1) * DAY)
            p = evolve(p, PointsEarned(earn(new).lot))
            earned += amount
        elif op[0] == "redeem":
            try:
                taken = redeem(p, op[1], now)
            except NotEnoughPoints:
                continue
            assert sum(t for _, t in taken.takes) == op[1]
            p = evolve(p, taken)
            redeemed += op[1]
        else:
            now += op[1] * DAY
        remainders = sum(x.remaining for x in p.lots)
        assert all(x.remaining >= 0 for x in p.lots)
        assert remainders == earned - redeemed - expired
        assert spendable(p, now) + pending(p, now) <= remainders
