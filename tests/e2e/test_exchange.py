"""The points exchange over real gRPC: ADMIN publishes a rate, a till of the airline quotes a
retail card's points into miles and executes the quote; a retry replays; GetCard shows every
purse; the used, expired and foreign quote are declined with their Result; who may call; and
every malformed request is INVALID_ARGUMENT naming the field, with nothing written."""

from __future__ import annotations

from typing import Any

import grpc
import pytest

from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import pos_pb2 as pb
from tests.support.alliance import Alliance
from tests.support.rpc import R, Server, call, db_state, get_card, issue, rid, status_of

pytestmark = pytest.mark.backends("sqlite")

RATE = xpb.ExchangeRate(from_program="P1", to_program="P2", version=1, numerator=1,
                        denominator=2, rounding=xpb.ROUND_DOWN, fee_fixed_points=10, fee_bp=100,
                        min_points=100, max_points=100_000, daily_limit_points=20_000)


def _setup(server: Server, alliance: Alliance) -> xpb_grpc.ExchangeServiceStub:
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
    exchange = xpb_grpc.ExchangeServiceStub(server.channel)
    reply = call(exchange.PublishExchangeRate,
                 xpb.PublishExchangeRateRequest(request_id=rid("rate"), rate=RATE),
                 alliance.admin_token)
    assert reply.result == R.APPROVED, reply
    return exchange


def _loyal_card(server: Server, alliance: Alliance, seed: int, points: int) -> str:
    number = issue(server, alliance, seed)
    reply = call(server.pos.Purchase, pb.PurchaseRequest(
        request_id=rid("buy"), card_number=number, currency="USD",
        lines=[pb.PurchaseLine(sku="tv", category="electronics", quantity=1,
                               unit_price_minor=points * 100)],
        local_time="2026-04-03T12:30:00", receipt_ref="R-1"), alliance.tokens["t1"])
    assert reply.result == R.APPROVED, reply
    return number


def _quote(exchange: Any, token: str, number: str, **fields: Any) -> xpb.ExchangeReply:
    values: dict[str, Any] = dict(card_number=number, from_program="P1", to_program="P2",
                                  points_taken=1_000)
    values.update(fields)
    return call(exchange.QuoteExchange, xpb.QuoteExchangeRequest(**values), token)


def test_quote_execute_retry_and_every_purse_shown(server: Server, alliance: Alliance,
                                                  clock: Any) -> None:
    exchange = _setup(server, alliance)
    number = _loyal_card(server, alliance, 91_001, 5_000)
    lounge = alliance.tokens["t_air"]
    before = db_state(server.ledger)
    offer = _quote(exchange, lounge, number)
    assert db_state(server.ledger) == before  # a quote writes nothing
    assert (offer.result, offer.points_taken, offer.fee_points, offer.points_given) == (
        R.APPROVED, 1_000, 20, 490)
    assert offer.expires_at.endswith("Z") and offer.rate_version == 1
    request = xpb.ExecuteExchangeRequest(request_id=rid("x"), card_number=number,
                                         quote_id=offer.quote_id)
    done = call(exchange.ExecuteExchange, request, lounge)
    assert done.result == R.APPROVED and not done.replayed and done.lot_id
    assert dict(done.card.purse_points) == {"": 4_000, "P2": 490}
    again = call(exchange.ExecuteExchange, request, lounge)
    assert again.replayed and again.points_given == 490 and again.lot_id == done.lot_id
    card = get_card(server, alliance, number).card
    assert dict(card.purse_points) == {"": 4_000, "P2": 490} and card.points == 4_000
    reused = call(exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
        request_id=rid("x"), card_number=number, quote_id=offer.quote_id), lounge)
    assert reused.result == R.DECLINED_QUOTE_USED and reused.decline_reason
    foreign = call(exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
        request_id=rid("x"), card_number=number,
        quote_id=_quote(exchange, lounge, number).quote_id), alliance.tokens["t1"])
    assert foreign.result == R.DECLINED_QUOTE_FOREIGN
    stale = _quote(exchange, alliance.tokens["gw1"], number).quote_id
    clock.advance(61)  # the ledger's clock (tests/conftest.py)
    late = call(exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
        request_id=rid("x"), card_number=number, quote_id=stale), alliance.tokens["gw1"])
    assert late.result == R.DECLINED_QUOTE_EXPIRED


def test_who_may_call(server: Server, alliance: Alliance) -> None:
    exchange = _setup(server, alliance)
    number = _loyal_card(server, alliance, 91_002, 2_000)
    request = xpb.QuoteExchangeRequest(card_number=number, from_program="P1", to_program="P2",
                                       points_taken=500)
    assert status_of(exchange.QuoteExchange, request, alliance.tokens["p2_manager"]).code == \
        grpc.StatusCode.PERMISSION_DENIED
    assert status_of(exchange.QuoteExchange, request, None).code == \
        grpc.StatusCode.UNAUTHENTICATED
    offer = call(exchange.QuoteExchange, request, alliance.tokens["auditor"])
    assert offer.result == R.APPROVED
    before = db_state(server.ledger)
    for name in ("auditor", "p1_manager", "s1_manager", "finance"):
        denied = status_of(exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
            request_id=rid("x"), card_number=number, quote_id=offer.quote_id),
            alliance.tokens[name])
        assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED, name
    rate = xpb.ExchangeRate()
    rate.CopyFrom(RATE)
    rate.version = 2
    denied = status_of(exchange.PublishExchangeRate, xpb.PublishExchangeRateRequest(
        request_id=rid("rate"), rate=rate), alliance.tokens["p1_manager"])
    assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert db_state(server.ledger) == before


def _rate(**fields: Any) -> xpb.ExchangeRate:
    rate = xpb.ExchangeRate()
    rate.CopyFrom(RATE)
    rate.version = 2
    for name, value in fields.items():
        setattr(rate, name, value)
    return rate


CARD = "6000000000000015"
QUOTE_ID = "A" * 40 + "." + "B" * 22
BAD: list[tuple[str, str, Any, str]] = [
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number="123", from_program="P1", to_program="P2", points_taken=5), "card_number"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="", to_program="P2", points_taken=5), "from_program"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="P1", to_program="P 2", points_taken=5), "to_program"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="P1", to_program="P1", points_taken=5), "to_program"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="P1", to_program="P2"), "points_taken"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="P1", to_program="P2", points_taken=-5),
     "points_taken"),
    ("QuoteExchange", "t1", xpb.QuoteExchangeRequest(
        card_number=CARD, from_program="P1", to_program="P2", points_wanted=10**13),
     "points_wanted"),
    ("ExecuteExchange", "t1", xpb.ExecuteExchangeRequest(
        request_id="x-bad", card_number=CARD, quote_id=""), "quote_id"),
    ("ExecuteExchange", "t1", xpb.ExecuteExchangeRequest(
        request_id="x-bad", card_number=CARD, quote_id="x" * 600), "quote_id"),
    ("ExecuteExchange", "t1", xpb.ExecuteExchangeRequest(
        request_id="x-bad", card_number="6000000000000016", quote_id=QUOTE_ID), "card_number"),
    ("ExecuteExchange", "t1", xpb.ExecuteExchangeRequest(
        request_id="", card_number=CARD, quote_id=QUOTE_ID), "request_id"),
    ("ExecuteExchange", "t1", xpb.ExecuteExchangeRequest(
        request_id="has space", card_number=CARD, quote_id=QUOTE_ID), "request_id"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(from_program="")), "rate.from_program"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(from_program="P9")), "rate.from_program"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(to_program="P1")), "rate.to_program"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(version=0)), "rate.version"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(version=5)), "rate.version"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(valid_from="yesterday")), "rate.valid_from"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(numerator=0)), "rate.numerator"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(denominator=-1)), "rate.denominator"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(rounding=0)), "rate.rounding"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(rounding=9)), "rate.rounding"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(fee_bp=5_001)), "rate.fee_bp"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(fee_fixed_points=100)), "rate.fee_fixed_points"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(min_points=0)), "rate.min_points"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(max_points=50)), "rate.max_points"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(daily_limit_points=-1)), "rate.daily_limit_points"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=_rate(quote_ttl_s=4_000)), "rate.quote_ttl_s"),
    ("PublishExchangeRate", "admin", xpb.PublishExchangeRateRequest(
        request_id="x-bad", rate=RATE), "rate.version"),  # v1 is published: immutable
]


def test_every_bad_input_is_invalid_argument_naming_the_field(server: Server,
                                                              alliance: Alliance) -> None:
    exchange = _setup(server, alliance)
    before = db_state(server.ledger)
    for method, who, request, field in BAD:
        token = alliance.admin_token if who == "admin" else alliance.tokens[who]
        status = status_of(getattr(exchange, method), request, token)
        assert status is not None and status.code == grpc.StatusCode.INVALID_ARGUMENT, (
            method, field, status)
        assert status.details.startswith(field), (field, status.details)
    assert db_state(server.ledger) == before
