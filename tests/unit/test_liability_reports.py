"""The finance reports' pure parts (domain/liability): who reads what, UTC days, the value of
points at the point value in force, roll-forward lines (a kind no table names lands on
adjustments and the roll-forward still ties), breakage per month, and the read model's names
for the accounts of domain/postings.py."""

from __future__ import annotations

import pytest

from domain import postings
from domain.common import InvalidInput, Principal, Role
from domain.liability import access, days
from domain.liability import reports as rp
from projections.finance import account_class

US_PER_DAY = days.DAY_US


@pytest.mark.parametrize(("principal", "entity", "allowed"), [
    (Principal(Role.ADMIN), "", True),
    (Principal(Role.AUDITOR), "P2", True),
    (Principal(Role.FINANCE), "", True),  # the alliance's finance
    (Principal(Role.FINANCE, "P1"), "P1", True),
    (Principal(Role.FINANCE, "P1"), "P2", False),
    (Principal(Role.FINANCE, "P1"), "", False),  # every entity: not a partner's
    (Principal(Role.PARTNER_MANAGER, "P1"), "P1", False),
    (Principal(Role.STORE_MANAGER, "P1", "S1"), "P1", False),
    (Principal(Role.TERMINAL, "P1", "S1", "T1"), "P1", False),
    (Principal(Role.GATEWAY, "P1", "S1"), "", False),
])
def test_who_reads_the_finance_reports(principal: Principal, entity: str,
                                       allowed: bool) -> None:
    assert (access.read_report(principal, entity) is None) is allowed


def test_days_are_utc_and_end_at_midnight() -> None:
    assert days.day_of(0) == "1970-01-01"
    assert days.day_of(US_PER_DAY - 1) == "1970-01-01"
    assert days.day_of(US_PER_DAY) == "1970-01-02"
    assert days.end_us("1970-01-01") == US_PER_DAY
    assert days.previous("2026-03-01") == "2026-02-28"
    assert days.parse_day("2024-02-29", "as_of") == "2024-02-29"
    with pytest.raises(InvalidInput) as raised:
        days.parse_day("2023-02-29", "to")
    assert raised.value.field == "to"


VALUES = (rp.ProgramValue("P1", 10, "USD", 1_000_000),
          rp.ProgramValue("P1", 5 * US_PER_DAY, "USD", 1_500_000))


def test_points_are_valued_at_the_value_in_force_rounded_down() -> None:
    assert rp.value_at(VALUES, "P1", 10) is None  # defined after: not yet in force
    assert rp.value_at(VALUES, "P1", 11) == VALUES[0]
    assert rp.value_at(VALUES, "P1", 6 * US_PER_DAY) == VALUES[1]
    assert rp.value_minor(3, VALUES[1]) == 4  # 4.5 cents, rounded down as the till does
    found = rp.liability("1970-01-07", {("P1", "USD", "card_available"): 70,
                                        ("P1", "USD", "card_held"): 30},
                         {("P1", "VESTED"): 5, ("P1", "PENDING"): 2, ("P1", "DEBT"): 1},
                         VALUES)
    assert found.stored_value == (rp.StoredValueLiability("P1", "USD", 70, 30, 100),)
    assert found.points == (rp.PointsLiability("P1", "USD", 5, 2, 7, 1_500_000, 10, 1),)


def test_a_new_kind_lands_on_adjustments_and_the_roll_forward_ties() -> None:
    rows = rp.roll_forward(
        "1970-01-02", "1970-01-03",
        {("P1", "USD"): 1_000}, {("P1", "USD"): {"LOADED": 500, "PURCHASE": -300,
                                                 "RETURN": 20, "AUTHORIZED": 0,
                                                 "exchange.out.v1": -45}},
        {("P1", "USD"): 1_175},
        {"P1": 10}, {"P1": {"EARNED": 8, "REDEEMED": -3, "EXPIRED": -1}}, {"P1": 14},
        {"P1": {"DEBT_DEBT_ADDED": 2}}, VALUES)
    sv, points = rows
    assert dict(sv.lines) == {"loaded": 500, "exchanged_in": 0, "refunded": 20, "spent": 300,
                              "exchanged_out": 0, "expired": 0, "written_off": 0,
                              "adjustments": -45}
    assert (points.opening, dict(points.lines)["redeemed"], points.closing) == (10, 3, 14)
    assert points.memo == (("DEBT_DEBT_ADDED", 2),)
    with pytest.raises(AssertionError):  # a closing that does not tie is a bug, not a row
        rp.roll_forward("1970-01-02", "1970-01-03", {("P1", "USD"): 0},
                        {("P1", "USD"): {"LOADED": 5}}, {("P1", "USD"): 4}, {}, {}, {}, {},
                        VALUES)


def test_breakage_is_valued_on_the_day_the_points_expired() -> None:
    rows = rp.breakage([], [("1970-01-02", "P1", -10), ("1970-01-06", "P1", -10),
                            ("1970-02-01", "P1", -1)], VALUES,
                       [("1970-01-02", "P1", "USD", 10), ("1970-01-06", "P1", "USD", 9)])
    assert rows == (rp.Breakage("1970-01", "POINTS", "P1", "USD", 20, 10 + 15, 19),
                    rp.Breakage("1970-02", "POINTS", "P1", "USD", 1, 1, 0))


@pytest.mark.parametrize(("account", "parsed"), [
    (postings.clearing("P1", "P2"), ("clearing", "P1", "P2")),
    (postings.funding("P1"), ("partner_sv_funding", "P1", "")),
    (postings.coupon_funding("SUPPLIER-9"), ("coupons_funding", "SUPPLIER-9", "")),
    (postings.coupon_given("P2"), ("coupons_given", "P2", "")),
    (postings.points_outstanding("P1"), ("points_outstanding", "P1", "")),
    (postings.points_funding("P2"), ("points_funding", "P2", "")),
    (postings.exchange_fee("P1"), ("exchange_fee", "P1", "")),
    (postings.exchange_clearing("P1", "P2"), ("exchange", "P1", "P2")),
    (postings.exchange_difference("P1", "P2"), ("exchange_difference", "P1", "P2")),
    (postings.points_sold("S9", "P1"), ("points_sold", "S9", "P1")),
    (postings.points_redeemed("P1", "S9"), ("points_redeemed", "P1", "S9")),
    (postings.points_breakage("P1"), ("points_breakage", "P1", "")),
    (postings.points_written_off("P1"), ("points_written_off", "P1", "")),
    ("newkind:P1", ("newkind", "P1", "")),
    ("newkind:P1:P2:side", ("newkind_side", "P1", "P2")),
])
def test_accounts_become_classes_entities_and_counterparties(account: str,
                                                             parsed: tuple[str, str, str],
                                                             ) -> None:
    assert account_class(account) == parsed


def test_an_exchange_moves_points_between_programs_and_an_unknown_lot_is_counted() -> None:
    """The handler of PointsExchanged, on a stand-in event with its fields (the integration
    traffic has no exchanges); and a lot no known event earned does not stop the model."""
    from types import SimpleNamespace

    from projections.finance import Batch, FinanceModel, _card, _exchanged

    model = FinanceModel()
    b = Batch(model)
    day = 20_000 * US_PER_DAY
    b.earn(7, "P1", "P1", "lot-1", 100, day, day)  # vested at once
    moved = SimpleNamespace(taken=(("lot-1", 40),), lot=SimpleNamespace(
        lot_id="lot-2", amount=25, vests_at_us=day + 1, program="P2"))
    _exchanged(b, 7, _card("6000", "P1", "USD"), "P1", moved, day + 1)
    on = days.day_of(day)
    assert b.points[(on, "P1", "P1", "VESTED", "EXCHANGED_OUT")] == -40
    assert b.points[(on, "P2", "P1", "VESTED", "EXCHANGED_IN")] == 25
    assert b.card_points == {(7, "P1"): [60, 0], (7, "P2"): [25, 0]}
    assert dict(rp._lines({"EXCHANGED_IN": 25, "EXCHANGED_OUT": -40}, rp.POINTS_LINES,
                          rp.POINTS_ORDER)) == {**dict.fromkeys(rp.POINTS_ORDER, 0),
                                                 "exchanged_in": 25, "exchanged_out": 40}
    b.take(7, "P1", "lot-from-elsewhere", -5, day + 2, "REDEEMED", "P1")
    assert model.unknown_lots == 1 and b.card_points[(7, "P1")] == [55, 0]
