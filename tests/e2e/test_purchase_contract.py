"""The basket flow over real gRPC, on both backends: a partner manager defines its points
program and publishes a promotion; a till simulates, then records a purchase, retries it, and
takes a return; GetBalance shows the points; every malformed request is refused with the field
named and nothing written."""

from __future__ import annotations

import grpc
import pytest

from grpc_api import translate
from grpc_api.generated import pos_pb2 as pb
from ledger.codec import card_stream_id, decode_event
from tests.support.alliance import Alliance
from tests.support.rpc import (
    R,
    Server,
    balance,
    batch_status,
    call,
    db_state,
    issue,
    rid,
    status_of,
)

# On SQLite; the tests marked backends("sqlite", "postgres") are the end-to-end smoke run on
# PostgreSQL (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

SPRING = pb.RuleSet(
    rule_set_id="spring-2026", version=1, scope="partner:P1",
    valid_from="2026-01-01T00:00:00Z", valid_to="2099-01-01T00:00:00Z",
    rules=[
        pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100),
        pb.Rule(rule_id="apparel-double", effect=pb.MULTIPLY, categories=["apparel"],
                multiplier_bp=20_000),
        pb.Rule(rule_id="no-gift-cards", effect=pb.EXCLUDE, categories=["gift-card"]),
        pb.Rule(rule_id="spend-100", effect=pb.THRESHOLD_BONUS, threshold_minor=100_00,
                points=200),
        pb.Rule(rule_id="cap", effect=pb.CAP, points=5_000),
        pb.Rule(rule_id="vip-5", effect=pb.DISCOUNT, card_classes=["VIP"], discount_bp=500),
        pb.Rule(rule_id="tea-card", effect=pb.STAMP, categories=["grocery"], stamps_needed=5),
        pb.Rule(rule_id="monthly", effect=pb.CAP, cap_period="MONTH", points=20_000),
    ])

BASKET = [
    pb.PurchaseLine(sku="jacket-7", category="apparel", quantity=1, unit_price_minor=89_00,
                    margin_minor=40_00),
    pb.PurchaseLine(sku="gc-50", category="gift-card", quantity=1, unit_price_minor=50_00),
    pb.PurchaseLine(sku="tea-2", category="grocery", quantity=2, unit_price_minor=6_00),
]


def _setup(server: Server, alliance: Alliance) -> None:
    manager = alliance.tokens["p1_manager"]
    reply = call(server.programs.DefineProgram, pb.DefineProgramRequest(
        request_id=rid("prog"), owner="P1", currency="USD", point_value_micros=1_000_000,
        expiry_kind=pb.END_OF_YEAR, expiry_n=1, timezone="Asia/Shanghai", vesting_days=0,
        tiers=[pb.TierLevel(name="SILVER", threshold_minor=100_00),
               pb.TierLevel(name="GOLD", threshold_minor=1_000_00)]), manager)
    assert reply.result == R.APPROVED
    reply = call(server.programs.PublishRuleSet,
                 pb.PublishRuleSetRequest(request_id=rid("pub"), rule_set=SPRING), manager)
    assert reply.result == R.APPROVED


def _purchase(number: str, **fields: object) -> pb.PurchaseRequest:
    values: dict[str, object] = dict(request_id=rid("buy"), card_number=number, currency="USD",
                                     lines=BASKET, stored_value_minor=151_00,
                                     local_time="2026-04-03T12:30:00", receipt_ref="R-1")
    values.update(fields)
    return pb.PurchaseRequest(**values)  # type: ignore[arg-type]


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_a_promotion_defined_then_used_at_the_till(server: Server, alliance: Alliance) -> None:
    _setup(server, alliance)
    got = call(server.programs.GetRuleSet, pb.GetRuleSetRequest(rule_set_id="spring-2026"),
               alliance.tokens["t1"])
    # Read back with every default spelled out (rate_den 1, 1x, FLOOR, COMBINE): the same rules.
    assert translate.rule_set(got.rule_set) == translate.rule_set(SPRING)
    assert got.rule_set.rules[4].multiplier_bp == 10_000
    listed = call(server.programs.ListRuleSets, pb.ListRuleSetsRequest(scope="partner:P1"),
                  alliance.tokens["auditor"])
    assert [r.rule_set_id for r in listed.rule_sets] == ["spring-2026"]
    number = issue(server, alliance, 7001, load=200_00)
    t1 = alliance.tokens["t1"]
    request = _purchase(number)
    before = db_state(server.ledger)
    dry = call(server.pos.SimulatePurchase, pb.SimulatePurchaseRequest(purchase=request), t1)
    assert db_state(server.ledger) == before  # a dry run writes nothing
    # jacket 89.00 x2 = 178, tea 12.00 = 12, gift card excluded; 101.00 eligible -> +200
    assert dry.points_earned == 390 and dry.purchase_id == ""
    # the base to the EARN rule, the jacket's doubling to the multiplier that gave it
    assert sorted((a.rule_id, a.points) for a in dry.explanation) == [
        ("apparel-double", 89), ("base", 190 - 89), ("spend-100", 200)]
    reply = call(server.pos.Purchase, request, t1)
    assert reply.result == R.APPROVED and reply.points_earned == 390
    assert reply.stored_value_charged_minor == 151_00 and reply.other_tender_minor == 0
    assert list(reply.rule_sets) == ["spring-2026@1"]
    assert reply.points_expire_at.startswith("2027-12-31T16:00:00")  # end of 2027, Shanghai
    assert reply.card.points == 390 and reply.card.balance_minor == 49_00
    assert reply.tier == "SILVER" and reply.card.tier == "SILVER"  # 101.00 eligible spend
    assert [(s.stamp_card, s.after, s.needed) for s in reply.stamps] == [
        ("spring-2026/tea-card", 2, 5)]
    made = decode_event(server.ledger.store.stream(card_stream_id(number))[-1].state)
    assert made.lines[0].margin_minor == 40_00  # recorded for the partners' reports
    again = call(server.pos.Purchase, request, t1)
    assert again.replayed and again.purchase_id == reply.purchase_id
    shown = balance(server, alliance, number)
    assert (shown.points, shown.balance_minor) == (390, 49_00)
    back = call(server.pos.Return, pb.ReturnRequest(
        request_id=rid("ret"), purchase_id=reply.purchase_id,
        lines=[pb.ReturnLine(line_index=2, quantity=1)], reason="damaged"), t1)
    # 6.00 of 151.00: 151.00 x 6/151 = 6.00 back; 390 x 6/151 = 15 points clawed back
    assert back.result == R.APPROVED
    assert (back.stored_value_refunded_minor, back.points_clawed_back) == (6_00, 15)
    assert back.card.points == 375 and back.card.balance_minor == 55_00


def test_malformed_requests_name_the_field_and_write_nothing(server: Server,
                                                            alliance: Alliance) -> None:
    _setup(server, alliance)
    number = issue(server, alliance, 7002, load=100_00)
    t1, manager = alliance.tokens["t1"], alliance.tokens["p1_manager"]
    before = db_state(server.ledger)
    bad_line = pb.PurchaseLine(sku="tea-2", category="grocery", quantity=-1,
                               unit_price_minor=6_00)
    impossible = pb.RuleSet(rule_set_id="night", version=1, scope="partner:P1", rules=[
        pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100),
        pb.Rule(rule_id="late", effect=pb.MULTIPLY, multiplier_bp=20_000,
                minute_from=23 * 60, minute_to=2 * 60)])
    cases = [
        (server.pos.Purchase, _purchase(number, lines=[bad_line]), t1, "lines[0].quantity"),
        (server.pos.Purchase, _purchase(number, lines=[]), t1, "lines"),
        (server.pos.Purchase, _purchase(number, local_time="03/04/2026 12:30"), t1,
         "local_time"),
        (server.pos.Purchase, _purchase(number, local_time="2026-02-30T12:30"), t1,
         "local_time"),
        (server.pos.Purchase, _purchase(number, points_to_redeem=-5), t1, "points_to_redeem"),
        (server.pos.Purchase, _purchase(number, request_id=""), t1, "request_id"),
        (server.pos.SimulatePurchase, pb.SimulatePurchaseRequest(
            purchase=_purchase("1234"), store_id="S1"), t1, "card_number"),
        (server.pos.Return, pb.ReturnRequest(request_id=rid(), purchase_id="nope",
                                             lines=[pb.ReturnLine(quantity=1)]), t1,
         "purchase_id"),
        (server.pos.Return, pb.ReturnRequest(request_id=rid(), purchase_id=f"{number}.3",
                                             lines=[pb.ReturnLine(quantity=0)]), t1,
         "lines[0].quantity"),
        (server.programs.PublishRuleSet, pb.PublishRuleSetRequest(
            request_id=rid(), rule_set=impossible), manager, "rules[1] (late).minute_from"),
        (server.programs.PublishRuleSet, pb.PublishRuleSetRequest(
            request_id=rid(), rule_set=pb.RuleSet(rule_set_id="x", version=1, scope="alliance",
                                                  valid_from="yesterday",
                                                  rules=SPRING.rules)), manager,
         "rule_set.valid_from"),
        (server.programs.PublishRuleSet, pb.PublishRuleSetRequest(
            request_id=rid(), rule_set=pb.RuleSet(rule_set_id="x", version=1, scope="alliance",
                                                  rules=[pb.Rule(rule_id="r", effect=9)])),
         manager, "rule_set.rules[0].effect"),
        (server.programs.DefineProgram, pb.DefineProgramRequest(
            request_id=rid(), owner="P1", currency="USD", point_value_micros=0,
            timezone="UTC"), manager, "point_value_micros"),
        (server.programs.DefineProgram, pb.DefineProgramRequest(
            request_id=rid(), owner="P1", currency="USD", point_value_micros=1,
            timezone="Mars/Olympus"), manager, "timezone"),
    ]
    for method, request, token, field in cases:
        status = status_of(method, request, token)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, (
            field, status)
        assert status.details.startswith(field), (field, status.details)
    assert db_state(server.ledger) == before
    denied = status_of(server.programs.PublishRuleSet, pb.PublishRuleSetRequest(
        request_id=rid(), rule_set=SPRING), alliance.tokens["s1_manager"])
    assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED
    missing = status_of(server.programs.GetRuleSet, pb.GetRuleSetRequest(rule_set_id="nope"),
                        t1)
    assert missing is not None and missing.code == grpc.StatusCode.NOT_FOUND
    assert db_state(server.ledger) == before


@pytest.mark.backends("sqlite", "postgres")  # the PostgreSQL smoke run
def test_coupons_over_grpc(server: Server, alliance: Alliance) -> None:
    _setup(server, alliance)
    manager, t1 = alliance.tokens["p1_manager"], alliance.tokens["t1"]
    reply = call(server.programs.DefineCouponCampaign, pb.DefineCouponCampaignRequest(
        request_id=rid("camp"), campaign=pb.CouponCampaign(
            campaign_id="welcome-10", owner="P1", currency="USD", kind=pb.COUPON_VALUE,
            value_minor=10_00, valid_to="2099-01-01T00:00:00Z", partial_use=True,
            funded_by="P1")), manager)
    assert reply.result == R.APPROVED
    number = issue(server, alliance, 7003, load=100_00)
    given = call(server.programs.IssueCoupon, pb.IssueCouponRequest(
        request_id=rid("give"), card_number=number, campaign_id="welcome-10"),
        alliance.tokens["s1_manager"])
    assert given.result == R.APPROVED and given.coupon.code.startswith(given.coupon.coupon_id)
    assert given.coupon.valid_to == "2099-01-01T00:00:00Z"
    tea = [pb.PurchaseLine(sku="tea-2", category="grocery", quantity=1, unit_price_minor=6_00)]
    paid = call(server.pos.Purchase, _purchase(number, lines=tea, stored_value_minor=0,
                                               coupon_codes=[given.coupon.code]), t1)
    assert paid.result == R.APPROVED and paid.coupon_discount_minor == 6_00
    assert [(u.coupon_id, u.amount_minor, u.used_up) for u in paid.coupons_used] == [
        (given.coupon.coupon_id, 6_00, False)]
    listed = call(server.programs.ListCoupons, pb.ListCouponsRequest(card_number=number), t1)
    assert [(c.remaining_minor, c.status, c.code) for c in listed.coupons] == [
        (4_00, pb.COUPON_ACTIVE, "")]
    manager = alliance.tokens["s1_manager"]
    special = call(server.pos.Purchase, _purchase(
        number, lines=tea, stored_value_minor=4_00, override_token=manager,
        override_discount_minor=2_00, override_reason="last one, damaged box"), t1)
    assert special.result == R.APPROVED and special.override_discount_minor == 2_00
    assert special.override_approved_by == server.ledger.authenticate(manager).credential_id
    refused = status_of(server.pos.Purchase, _purchase(
        number, lines=tea, override_token="llk_nobody_x", override_discount_minor=2_00,
        override_reason="x"), t1)
    assert refused is not None and refused.code == grpc.StatusCode.PERMISSION_DENIED
    forged = status_of(server.pos.Purchase, _purchase(
        number, lines=tea, coupon_codes=[given.coupon.coupon_id + "-" + "A" * 16]), t1)
    assert forged is not None and forged.code == grpc.StatusCode.INVALID_ARGUMENT
    assert forged.details.startswith("coupon_codes[0]")


def test_a_gateway_sends_purchases_and_returns_in_a_batch(server: Server,
                                                        alliance: Alliance) -> None:
    _setup(server, alliance)
    number = issue(server, alliance, 7004, load=500_00)
    tea = [pb.PurchaseLine(sku="tea-2", category="grocery", quantity=2, unit_price_minor=6_00)]
    first = _purchase(number, lines=tea, stored_value_minor=12_00)
    ops = [pb.PosOperation(terminal_id="T1", purchase=first),
           pb.PosOperation(terminal_id="T1", purchase=_purchase(number, lines=tea,
                                                                stored_value_minor=0)),
           pb.PosOperation(terminal_id="T1", purchase=_purchase(number, lines=[])),
           pb.PosOperation(terminal_id="T1", authorize=pb.AuthorizeRequest(
               request_id=rid("auth"), card_number=number, amount_minor=1_00,
               currency="USD"))]
    replies, status = batch_status(server, alliance.tokens["gw1"],
                                   pb.BatchRequest(operations=ops))
    assert status is None
    bought, other, malformed, authorized = replies[0].replies
    assert bought.purchase.result == R.APPROVED and bought.purchase.points_earned == 12
    assert other.purchase.other_tender_minor == 12_00
    assert malformed.error.startswith("INVALID_ARGUMENT: lines")
    assert authorized.reply.result == R.APPROVED
    back = [pb.PosOperation(terminal_id="T1", purchase_return=pb.ReturnRequest(
        request_id=rid("ret"), purchase_id=bought.purchase.purchase_id,
        lines=[pb.ReturnLine(line_index=0, quantity=2)])),
            pb.PosOperation(terminal_id="T1", purchase=first)]  # a retry of the first
    replies, status = batch_status(server, alliance.tokens["gw1"],
                                   pb.BatchRequest(operations=back))
    returned, retried = replies[0].replies
    assert returned.purchase.stored_value_refunded_minor == 12_00
    assert retried.purchase.replayed and retried.purchase.purchase_id == \
        bought.purchase.purchase_id
