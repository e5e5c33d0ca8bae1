"""Campaign profitability nets returns: a return takes off the lines it brings back (their
sales and margin, exactly) and its share of what each campaign gave the purchase (points,
their value, discounts), the share the ledger claws points back by; a purchase returned in
full gives back everything it was given, and a coupon its return restores no longer counts as
used. Returns count in the period they are recorded in."""

from __future__ import annotations

from typing import Any

import pytest

from domain.purchases.commands import Return, ReturnLine
from projections.campaigns import campaigns_from_log
from tests.integration.test_engine_stories import approved, call
from tests.integration.test_purchase_stories import (
    basket,
    buy,
    campaign,
    give_coupon,
    new_card,
    purchase,
    setup_program,
)

pytestmark = pytest.mark.backends("sqlite")

DAY_S = 86_400


def rows(ledger: Any, start_us: int, end_us: int, owner: str = "") -> dict[str, dict[str, Any]]:
    return {f.name: f.row() for f in campaigns_from_log(ledger.store, start_us, end_us, owner)}


def test_returns_are_netted_in_the_period_they_are_recorded_in(ledger, alliance, clock):
    setup_program(ledger, alliance)  # p1-everyday@1: a point a dollar, a point = a cent
    approved(call(ledger, alliance.p1_manager, campaign(
        "gift-5", clock, value_minor=5_00, restore_on_return=True)))
    number = new_card(ledger, alliance, load=0)
    code = give_coupon(ledger, alliance, number, "gift-5")
    start = clock.now_us
    sale = buy(ledger, alliance, purchase(number, basket(
        ("mug", "home", 2, 10_00, 4_00), ("pen", "office", 1, 3_00, 1_00)), coupons=(code,)))
    sale_id = sale.purchase.purchase_id
    clock.advance(40 * DAY_S)
    middle = clock.now_us
    # One mug of 23.00 back: 10/23 of what the campaigns gave, cumulatively rounded down.
    approved(call(ledger, alliance.t1, Return(sale_id, (ReturnLine(0, 1),), "chipped")))
    sold = rows(ledger, start, middle)
    assert {k: sold["p1-everyday@1"][k] for k in (
        "owner", "purchases", "returns", "sales_minor", "margin_minor", "points",
        "points_value_minor", "discount_minor")} == {
        "owner": "P1", "purchases": 1, "returns": 0, "sales_minor": 23_00,
        "margin_minor": 9_00, "points": 23, "points_value_minor": 23, "discount_minor": 0}
    assert (sold["gift-5"]["discount_minor"], sold["gift-5"]["coupons_used"],
            sold["gift-5"]["coupons_issued"]) == (5_00, 1, 1)

    later = rows(ledger, middle, clock.now_us + 1)  # the return alone, in its own period
    assert {k: later["p1-everyday@1"][k] for k in (
        "purchases", "returns", "sales_minor", "margin_minor", "points", "points_value_minor",
        "given_minor", "margin_after_minor")} == {
        "purchases": 0, "returns": 1, "sales_minor": -10_00, "margin_minor": -4_00,
        "points": -(23 * 10 // 23), "points_value_minor": -10, "given_minor": -10,
        "margin_after_minor": -4_00 + 10}
    assert (later["gift-5"]["discount_minor"], later["gift-5"]["coupons_used"]) == (
        -(5_00 * 10_00 // 23_00), 0)

    both = rows(ledger, start, clock.now_us + 1)
    assert (both["p1-everyday@1"]["sales_minor"], both["p1-everyday@1"]["margin_minor"],
            both["p1-everyday@1"]["points"], both["gift-5"]["discount_minor"]) == (
        13_00, 5_00, 23 - 10, 5_00 - 217)

    # The rest back: the purchase gives back exactly what it was given, and the coupon
    # (restored by the full return) is no longer counted as used.
    approved(call(ledger, alliance.t1, Return(sale_id, (ReturnLine(0, 1), ReturnLine(1, 1)),
                                              "changed my mind")))
    net = rows(ledger, start, clock.now_us + 1)
    rules, coupons = net["p1-everyday@1"], net["gift-5"]
    assert (rules["purchases"], rules["returns"]) == (1, 2)
    assert all(rules[k] == 0 for k in ("sales_minor", "margin_minor", "points",
                                       "points_value_minor", "discount_minor", "given_minor"))
    assert (coupons["sales_minor"], coupons["discount_minor"], coupons["coupons_used"],
            coupons["coupons_issued"]) == (0, 0, 0, 1)
    # Owners: both are P1's; P2 owns none of them.
    assert set(rows(ledger, start, clock.now_us + 1, "P1")) == {"p1-everyday@1", "gift-5"}
    assert rows(ledger, start, clock.now_us + 1, "P2") == {}
