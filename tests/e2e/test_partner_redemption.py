"""Redeeming another program's points at a partner, over real gRPC on both stores (issue 9,
section 2): a retail card exchanges its points into the airline's miles and spends the miles
at a hotel, a third partner. Without an agreement between the airline and the hotel the miles
are declined (DECLINED_NO_AGREEMENT); once ADMIN publishes one, they pay; part of the basket
comes back; the period's statements show the airline owing the hotel for the miles redeemed
there at the agreed rate per mile; the airline's points liability dropped by what the miles
paid. The airline's net debit cap counts its miles redeemed elsewhere; every bad value of the
new field is INVALID_ARGUMENT naming it, with nothing written."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from domain.common import Principal, Role
from domain.registry import commands as rc
from grpc_api.generated import agreements_pb2 as apb
from grpc_api.generated import agreements_pb2_grpc as apb_grpc
from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance, ok
from tests.support.rpc import (
    R,
    Server,
    authorize,
    call,
    db_state,
    get_card,
    issue,
    rid,
    status_of,
)

pytestmark = pytest.mark.backends("sqlite", "postgres")

RATE = xpb.ExchangeRate(from_program="P1", to_program="P2", version=1, numerator=1,
                        denominator=2, rounding=xpb.ROUND_DOWN, fee_fixed_points=10, fee_bp=100,
                        min_points=100, max_points=100_000)


def _hotel(server: Server, alliance: Alliance) -> str:
    """P3, a hotel group with one store (H1) and a till there; the till's token."""
    ledger, admin = server.ledger, alliance.admin
    for command in (rc.RegisterPartner("P3", "Hotels", "USD"),
                    rc.RegisterStore("P3", "H1", "Harbour hotel", "Europe/Paris"),
                    rc.RegisterTerminal("H1", "TH1")):
        assert ok(ledger.call(admin, command, request_id=rid("hotel"))).result == R.APPROVED
    reply = ok(ledger.call(admin, rc.CreateCredential(
        Principal(Role.TERMINAL, "P3", "H1", "TH1"), "hotel till"), request_id=rid("cred")))
    return reply.token


def _programs_and_rate(server: Server, alliance: Alliance) -> None:
    """P1's points (1 cent, a point per dollar at P1's stores) and P2's miles (1.5 cents),
    and a rate from P1 to P2 (half a mile a point, 10 points and 1 % fee)."""
    for owner, value, manager in (("P1", 1_000_000, "p1_manager"),
                                  ("P2", 1_500_000, "p2_manager")):
        reply = call(server.programs.DefineProgram, pb.DefineProgramRequest(
            request_id=rid("prog"), owner=owner, currency="USD", point_value_micros=value,
            expiry_kind=pb.END_OF_YEAR, expiry_n=1, timezone="UTC"), alliance.tokens[manager])
        assert reply.result == R.APPROVED, reply
    reply = call(server.programs.PublishRuleSet, pb.PublishRuleSetRequest(
        request_id=rid("pub"), rule_set=pb.RuleSet(
            rule_set_id="base", version=1, scope="partner:P1", valid_to="2099-01-01T00:00:00Z",
            rules=[pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100)])),
        alliance.tokens["p1_manager"])
    assert reply.result == R.APPROVED, reply
    reply = call(xpb_grpc.ExchangeServiceStub(server.channel).PublishExchangeRate,
                 xpb.PublishExchangeRateRequest(request_id=rid("rate"), rate=RATE),
                 alliance.admin_token)
    assert reply.result == R.APPROVED, reply


def _card_with_miles(server: Server, alliance: Alliance, seed: int) -> str:
    """A P1 card that earned 5,000 points and exchanged 1,000 of them for 490 miles."""
    number = issue(server, alliance, seed)
    earned = _buy(server, alliance.tokens["t1"], number, (500_000,), 0)
    assert earned.result == R.APPROVED and earned.points_earned == 5_000, earned
    exchange = xpb_grpc.ExchangeServiceStub(server.channel)
    lounge = alliance.tokens["t_air"]
    offer = call(exchange.QuoteExchange, xpb.QuoteExchangeRequest(
        card_number=number, from_program="P1", to_program="P2", points_taken=1_000), lounge)
    done = call(exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
        request_id=rid("x"), card_number=number, quote_id=offer.quote_id), lounge)
    assert done.result == R.APPROVED and done.points_given == 490, done
    return number


def _buy(server: Server, token: str, number: str, prices: tuple[int, ...], points: int,
         program: str = "", request_id: str = "") -> Any:
    return call(server.pos.Purchase, pb.PurchaseRequest(
        request_id=request_id or rid("buy"), card_number=number, currency="USD",
        lines=[pb.PurchaseLine(sku=f"item-{i}", category="rooms", quantity=1,
                               unit_price_minor=price) for i, price in enumerate(prices)],
        points_to_redeem=points, redeem_program=program, local_time="2026-04-03T12:30:00",
        receipt_ref="R-1"), token)


def _agreement(server: Server, alliance: Alliance, agreement: apb.Agreement) -> None:
    reply = call(apb_grpc.AgreementServiceStub(server.channel).PublishAgreement,
                 apb.PublishAgreementRequest(request_id=rid("agr"), agreement=agreement),
                 alliance.admin_token)
    assert reply.result == R.APPROVED, reply


def _miles_liability(server: Server, alliance: Alliance) -> tuple[int, int]:
    reply = call(fpb_grpc.FinanceServiceStub(server.channel).GetLiability,
                 fpb.GetLiabilityRequest(), alliance.tokens["finance"])
    miles = [p for p in reply.points if p.program_id == "P2"]
    return (miles[0].outstanding_points, miles[0].value_minor) if miles else (0, 0)


def test_miles_spent_at_a_hotel_with_an_agreement_and_settled_at_the_agreed_rate(
        server: Server, alliance: Alliance) -> None:
    hotel = _hotel(server, alliance)
    _programs_and_rate(server, alliance)
    number = _card_with_miles(server, alliance, 93_001)
    assert _miles_liability(server, alliance) == (490, 735)

    # no agreement links the airline and the hotel: the miles do not pay there
    before = db_state(server.ledger)
    refused = _buy(server, hotel, number, (600, 400), 400, "P2")
    assert refused.result == R.DECLINED_NO_AGREEMENT and "P3" in refused.decline_reason
    assert db_state(server.ledger).last_event == before.last_event  # no event written
    # the card's own points still pay anywhere, as before
    assert dict(get_card(server, alliance, number).card.purse_points) == {"": 4_000, "P2": 490}

    _agreement(server, alliance, apb.Agreement(
        agreement_id="air-hotel", version=1, entity_a="P2", entity_b="P3",
        points_reimbursement_micros=1_200_000))  # 1.2 cents a mile, the mile being worth 1.5
    before = db_state(server.ledger)
    simulated = call(server.pos.SimulatePurchase, pb.SimulatePurchaseRequest(
        purchase=pb.PurchaseRequest(
            card_number=number, currency="USD", points_to_redeem=400, redeem_program="P2",
            lines=[pb.PurchaseLine(sku="a", category="rooms", quantity=1,
                                   unit_price_minor=1_000)])), hotel)
    assert (simulated.result, simulated.points_redeemed_program) == (R.APPROVED, "P2")
    assert dict(simulated.card.purse_points) == {"": 4_000, "P2": 90}  # what it would leave
    assert db_state(server.ledger) == before  # and nothing written
    request_id = rid("stay")
    stay = _buy(server, hotel, number, (600, 400), 400, "P2", request_id)
    assert stay.result == R.APPROVED, stay
    assert (stay.points_redeemed, stay.points_redeemed_value_minor,
            stay.points_redeemed_program) == (400, 600, "P2")
    assert (stay.points_earned, stay.other_tender_minor) == (0, 400)  # no P1 rules at P3
    assert dict(stay.card.purse_points) == {"": 4_000, "P2": 90}
    again = _buy(server, hotel, number, (600, 400), 400, "P2", request_id)
    assert again.replayed and again.points_redeemed_program == "P2"
    assert _miles_liability(server, alliance) == (90, 135)  # 735 - 600

    # the 400-cent line comes back: 160 miles (400 x 400 / 1,000) return to the purse
    back = call(server.pos.Return, pb.ReturnRequest(
        request_id=rid("ret"), purchase_id=stay.purchase_id,
        lines=[pb.ReturnLine(line_index=1, quantity=1)], reason="one night less"), hotel)
    assert back.result == R.APPROVED, back
    assert (back.points_restored, back.points_redeemed_program) == (160, "P2")
    assert dict(back.card.purse_points) == {"": 4_000, "P2": 250}
    assert _miles_liability(server, alliance) == (250, 375)  # 735 - (600 - 240)

    closed = call(server.settlement.CloseSettlementPeriod, pb.CloseSettlementPeriodRequest(
        request_id=rid("close"), note="April"), alliance.tokens["finance"])
    assert closed.result == R.APPROVED, closed
    reply = call(server.settlement.GetSettlementStatement,
                 pb.GetSettlementStatementRequest(period_id=closed.period_id),
                 alliance.tokens["finance"])
    lines = {(s.entity_id, line.counterparty_id, line.category):
             (line.receivable_minor, line.payable_minor)
             for s in reply.statements for line in s.lines}
    # 240 miles net at the agreed 1.2 cents: 288 (at the point value they were 360)
    assert lines[("P2", "P3", "POINTS_REDEEMED_ACROSS")] == (0, 288)
    assert lines[("P3", "P2", "POINTS_REDEEMED_ACROSS")] == (288, 0)
    assert lines[("P1", "P2", "EXCHANGE")] == (0, 735)  # the miles bought: P1 paid P2
    nets = {s.entity_id: s.multilateral_net_minor for s in reply.statements}
    assert nets == {"P1": -735, "P2": 735 - 288, "P3": 288}  # they sum to zero
    # multilateral netting: P1 pays the hotel what the airline owes it
    assert {(i.payer_id, i.payee_id, i.amount_minor) for i in reply.instructions} == {
        ("P1", "P2", 447), ("P1", "P3", 288)}


def test_miles_pay_at_the_airlines_own_stores_and_count_against_its_cap(
        server: Server, alliance: Alliance) -> None:
    hotel = _hotel(server, alliance)
    _programs_and_rate(server, alliance)
    number = _card_with_miles(server, alliance, 93_002)  # P1 owes P2 7.35 for the miles
    # at the airline's own lounge no agreement is needed
    lounge = _buy(server, alliance.tokens["t_air"], number, (300,), 100, "P2")
    assert lounge.result == R.APPROVED and lounge.points_redeemed_program == "P2", lounge
    # an alliance-wide agreement links every pair; the airline may owe at most 3.00 net
    _agreement(server, alliance, apb.Agreement(agreement_id="alliance", version=1))
    _agreement(server, alliance, apb.Agreement(
        agreement_id="cap-P2", version=1, entity_a="P2", net_debit_cap_minor=300,
        cap_currency="USD"))
    airline_card = issue(server, alliance, 93_003, by="p2_manager", store="A1", load=5_000)
    hold = authorize(server, alliance.tokens["t1"], airline_card, 1_000)
    assert call(server.pos.Capture, pb.CaptureRequest(
        request_id=rid("cap"), authorization_id=hold.authorization_id),
        alliance.tokens["t1"]).result == R.APPROVED  # P2 owes P1 10.00: its net is 2.65
    spent = _buy(server, hotel, number, (600,), 20, "P2")  # 0.30 more: 2.95
    assert spent.result == R.APPROVED, spent
    over = _buy(server, hotel, number, (600,), 10, "P2")  # 0.15 more: 3.10 > 3.00
    assert over.result == R.DECLINED_NET_DEBIT_CAP, over
    home = _buy(server, alliance.tokens["t_air"], number, (600,), 10, "P2")
    assert home.result == R.APPROVED, home  # its own stores keep working
    own = _buy(server, hotel, number, (600,), 100)  # P1's points: P1 is under no cap
    assert own.result == R.APPROVED and own.points_redeemed_program == "P1", own


CARD = "6000000000000015"
BAD: list[tuple[dict[str, Any], str]] = [
    ({"redeem_program": "P 2"}, "redeem_program"),
    ({"redeem_program": "x" * 40}, "redeem_program"),
    ({"redeem_program": "P2;--"}, "redeem_program"),
    ({"redeem_program": "P2", "points_to_redeem": 0}, "redeem_program"),
]


def test_every_bad_redeem_program_is_invalid_argument_naming_it(
        server: Server, alliance: Alliance) -> None:
    before = db_state(server.ledger)
    for fields, field in BAD:
        values: dict[str, Any] = dict(
            request_id=rid("bad"), card_number=CARD, currency="USD", points_to_redeem=10,
            lines=[pb.PurchaseLine(sku="a", category="b", quantity=1, unit_price_minor=100)])
        values.update(fields)
        for method, request in (
                (server.pos.Purchase, pb.PurchaseRequest(**values)),
                (server.pos.SimulatePurchase, pb.SimulatePurchaseRequest(
                    purchase=pb.PurchaseRequest(**values)))):
            status = status_of(method, request, alliance.tokens["t1"])
            assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, (
                fields, status)
            assert status.details.startswith(field), status.details
    assert db_state(server.ledger) == before
