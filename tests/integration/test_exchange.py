"""Stories of the points exchange through the engine, on both stores: a retail card earns
points, a till quotes them into airline miles (nothing written), executes the quote (one event,
the points leave earliest-expiry-first and arrive as a lot under the airline's policy), and the
quote cannot be used again, late, elsewhere or forged; a rate published between quote and
execution changes new quotes only; limits, missing points, retries, restarts and a second
process; every bad input refused naming its field with nothing written."""

from __future__ import annotations

import concurrent.futures
from typing import Any

import msgspec

from domain.cards import commands as cc
from domain.cards import events as ev
from domain.common import Result
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.quote import Quote, quote_key, sign
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind, expires_at_us
from domain.purchases.commands import MaintainCard
from domain.rules.commands import PublishRuleSet
from domain.settlement.agreements import Agreement, PublishAgreement
from domain.settlement.model import Category
from domain.settlement.periods import CloseSettlementPeriod
from ledger.codec import Outcome
from ledger.engine import Failure, Ledger, Refusal, Request
from ledger.store import open_store
from projections.settlement import period_statements, settlement_runner
from tests.integration.test_engine_stories import (
    approved,
    call,
    card_events,
    new_card,
    result,
    version,
    view,
)
from tests.integration.test_purchase_stories import (
    EARN_1_PER_USD,
    basket,
    buy,
    purchase,
    rule_set,
)
from tests.support.alliance import TEST_COUPON_KEY, started_ledger

DAY_US = 86_400 * 1_000_000
MINUTE_US = 60 * 1_000_000
# P1 (retail): 1 point = 1 cent, points expire 12 months after earning. P2 (airline): 1 mile
# = 1.5 cents, miles expire at the end of the year after the one they arrive in.
RETAIL = DefineProgram("P1", "USD", 1_000_000, int(ExpiryKind.MONTHS_AFTER), 12, "UTC", 0)
AIRLINE = DefineProgram("P2", "USD", 1_500_000, int(ExpiryKind.END_OF_YEAR), 1, "UTC", 0)
# 2 points for a mile, rounded down, after a fee of 10 points + 1%; 100..100,000 points an
# exchange, 20,000 a day.
RATE = ExchangeRate("P1", "P2", 1, 0, 1, 2, int(Rounding.DOWN), 10, 100, 100, 100_000,
                    20_000, 0)


def setup(ledger: Ledger, alliance: Any) -> None:
    approved(call(ledger, alliance.p1_manager, RETAIL))
    approved(call(ledger, alliance.p2_manager, AIRLINE))
    approved(call(ledger, alliance.p1_manager, PublishRuleSet(rule_set(EARN_1_PER_USD))))
    approved(call(ledger, alliance.admin, PublishExchangeRate(RATE)))


def earn(ledger: Ledger, alliance: Any, number: str, points: int) -> None:
    """`points` P1 points from a purchase paid outside the ledger (1 point a dollar)."""
    buy(ledger, alliance, purchase(number, basket(("tv", "electronics", 1, points * 100))))


def loyal_card(ledger: Ledger, alliance: Any, points: int = 10_000) -> str:
    number = new_card(ledger, alliance)
    earn(ledger, alliance, number, points)
    return number


def quote(ledger: Ledger, credential: str, number: str, taken: int = 1_000, wanted: int = 0,
          to: str = "P2", source: str = "P1") -> Outcome:
    reply = call(ledger, credential, QuoteExchange(number, source, to, taken, wanted),
                 request_id="")
    assert isinstance(reply, Outcome), reply
    return reply


def execute(ledger: Ledger, credential: str, number: str, quote_id: str,
            request_id: str | None = None) -> Outcome | Failure:
    return call(ledger, credential, ExecuteExchange(number, quote_id), request_id)


def purses(ledger: Ledger, alliance: Any, number: str) -> dict[str, int]:
    return {p.program: p.points for p in view(ledger, alliance, number).purses}


def log_end(ledger: Ledger) -> int:
    return ledger.store.max_notification_id()


# ------------------------------------------------------------------------------ the story


def test_a_quote_writes_nothing_and_its_execution_moves_points_between_purses(
        ledger, alliance, clock):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance, 600)
    clock.advance(10 * 86_400)
    earn(ledger, alliance, number, 900)  # a later lot: it expires later
    before = log_end(ledger)
    offer = quote(ledger, alliance.t_air, number, 1_000)  # at the airline's lounge
    assert offer.result == Result.APPROVED and log_end(ledger) == before
    x = offer.exchange
    assert (x.points_taken, x.fee_points, x.points_given, x.rate_version) == (1_000, 20, 490, 1)
    assert x.expires_at_us == clock.now_us + 60 * 1_000_000

    done = approved(execute(ledger, alliance.t_air, number, x.quote_id))
    assert done.exchange.points_given == 490 and done.exchange.lot_id
    assert purses(ledger, alliance, number) == {"": 500, "P2": 490}
    assert view(ledger, alliance, number).points == 500  # the card's own program, as before
    exchanged = card_events(ledger.store, number)[-1]
    assert isinstance(exchanged, ev.PointsExchanged)
    first_lot, second_lot = (e.lot.lot_id for e in card_events(ledger.store, number)
                             if isinstance(e, ev.PurchaseMade))
    assert exchanged.taken == ((first_lot, 600), (second_lot, 400))  # earliest expiry first
    assert exchanged.lot.expires_at_us == expires_at_us(clock.now_us, AIRLINE.program().expiry)
    assert {leg.account: leg.amount_minor for leg in exchanged.legs} == {
        "points:P1:outstanding": -10_00, "exchange_fee:P1": 20, "exchange_difference:P1:P2":
        2_45, "exchange:P1:P2": 7_35, "points:P2:funding": -7_35, "points:P2:outstanding": 7_35}
    # Purchases still redeem only the card's own points.
    spend = call(ledger, alliance.t1, purchase(number, basket(("tv", "electronics", 1, 10_00)),
                                               points=501))
    assert result(spend) == Result.DECLINED_INSUFFICIENT_POINTS


def test_points_wanted_and_the_way_back_into_the_cards_own_program(ledger, alliance):
    setup(ledger, alliance)
    approved(call(ledger, alliance.admin, PublishExchangeRate(ExchangeRate(
        "P2", "P1", 1, 0, 3, 2, int(Rounding.HALF_UP), 0, 0, 1, 10_000, 0, 0))))
    number = loyal_card(ledger, alliance, 5_000)
    offer = quote(ledger, alliance.t1, number, taken=0, wanted=1_000)
    assert offer.exchange.points_given == 1_000 and offer.exchange.points_taken == 2_030
    approved(execute(ledger, alliance.t1, number, offer.exchange.quote_id))
    back = quote(ledger, alliance.t1, number, 333, to="P1", source="P2")
    assert back.exchange.points_given == 500  # 333 * 3 / 2 = 499.5, half up
    approved(execute(ledger, alliance.t1, number, back.exchange.quote_id))
    assert purses(ledger, alliance, number) == {"": 5_000 - 2_030 + 500, "P2": 667}


def test_a_rate_published_between_quote_and_execution_changes_new_quotes_only(
        ledger, alliance, clock):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance)
    old = quote(ledger, alliance.t1, number, 1_000).exchange
    approved(call(ledger, alliance.admin, PublishExchangeRate(msgspec.structs.replace(
        RATE, version=2, valid_from_us=clock.now_us, denominator=4))))
    clock.advance(30)
    new = quote(ledger, alliance.t1, number, 1_000).exchange
    assert (old.rate_version, old.points_given) == (1, 490)
    assert (new.rate_version, new.points_given) == (2, 245)
    done = approved(execute(ledger, alliance.t1, number, old.quote_id))
    assert done.exchange.points_given == 490 and purses(ledger, alliance, number)["P2"] == 490
    assert card_events(ledger.store, number)[-1].rate == "P1>P2@1"
    # A rate that starts later is not in force yet.
    approved(call(ledger, alliance.admin, PublishExchangeRate(msgspec.structs.replace(
        RATE, version=3, valid_from_us=clock.now_us + DAY_US, denominator=1))))
    assert quote(ledger, alliance.t1, number, 1_000).exchange.rate_version == 2


# ------------------------------------------------------------------------------ declines


def test_an_expired_a_used_and_a_foreign_quote_are_declined_with_nothing_written(
        ledger, alliance, clock):
    setup(ledger, alliance)
    number, other = loyal_card(ledger, alliance), loyal_card(ledger, alliance)
    late = quote(ledger, alliance.t1, number).exchange.quote_id
    clock.advance(60)
    at = version(ledger.store, number)
    assert result(execute(ledger, alliance.t1, number, late)) == Result.DECLINED_QUOTE_EXPIRED

    fresh = quote(ledger, alliance.t1, number).exchange.quote_id
    assert result(execute(ledger, alliance.t1, other, fresh)) == Result.DECLINED_QUOTE_FOREIGN
    assert result(execute(ledger, alliance.t_air, number, fresh)) == \
        Result.DECLINED_QUOTE_FOREIGN  # quoted for P1's till: P2's may not take it
    terms, mac = fresh.split(".")
    tampered = f"{terms[:-2]}{'A' if terms[-2] != 'A' else 'B'}{terms[-1]}.{mac}"
    assert result(execute(ledger, alliance.t1, number, tampered)) == \
        Result.DECLINED_QUOTE_FOREIGN
    forged = sign(quote_key(b"another deployment's key"),
                  Quote(number, "P1", "P2", 1, 100, 11, 10**6, clock.now_us,
                        clock.now_us + MINUTE_US, "P1", b"forged"))
    assert result(execute(ledger, alliance.t1, number, forged)) == \
        Result.DECLINED_QUOTE_FOREIGN
    assert version(ledger.store, number) == at and version(ledger.store, other) == at

    approved(execute(ledger, alliance.t1, number, fresh))
    again = execute(ledger, alliance.t2, number, fresh)  # another till of the same partner
    assert result(again) == Result.DECLINED_QUOTE_USED
    assert version(ledger.store, number) == at + 1


def test_limits_and_missing_points(ledger, alliance, clock):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance, 60_000)
    assert quote(ledger, alliance.t1, number, 99).result == Result.DECLINED_EXCHANGE_LIMIT
    assert quote(ledger, alliance.t1, number, 100_001).result == Result.DECLINED_EXCHANGE_LIMIT
    assert quote(ledger, alliance.t1, number, 20_001).result == Result.DECLINED_EXCHANGE_LIMIT
    assert "daily limit" in quote(ledger, alliance.t1, number, 20_001).exchange.decline_reason
    # Two quotes that each fit the day, executed one after the other: the second does not.
    first = quote(ledger, alliance.t1, number, 15_000).exchange.quote_id
    second = quote(ledger, alliance.t1, number, 15_000).exchange.quote_id
    approved(execute(ledger, alliance.t1, number, first))
    assert result(execute(ledger, alliance.t1, number, second)) == \
        Result.DECLINED_EXCHANGE_LIMIT
    assert quote(ledger, alliance.t1, number, 5_001).result == Result.DECLINED_EXCHANGE_LIMIT
    # The next UTC day counts afresh.
    clock.advance(86_400)
    approved(execute(ledger, alliance.t1, number,
                     quote(ledger, alliance.t1, number, 20_000).exchange.quote_id))
    # Points spent between the quote and its execution.
    poor = loyal_card(ledger, alliance, 1_500)
    offer = quote(ledger, alliance.t1, poor, 1_000).exchange.quote_id
    assert quote(ledger, alliance.t1, poor, 1_501).result == Result.DECLINED_INSUFFICIENT_POINTS
    buy(ledger, alliance, purchase(poor, basket(("tv", "electronics", 1, 10_00)), points=600))
    assert result(execute(ledger, alliance.t1, poor, offer)) == \
        Result.DECLINED_INSUFFICIENT_POINTS
    # No rate the other way; a blocked card; an unknown card.
    assert quote(ledger, alliance.t1, number, 100, to="P1", source="P2").result == \
        Result.DECLINED_NO_EXCHANGE_RATE
    approved(call(ledger, alliance.s1_manager, cc.BlockCard(poor, "lost")))
    assert quote(ledger, alliance.t1, poor, 100).result == Result.DECLINED_CARD_NOT_ACTIVE
    assert quote(ledger, alliance.t1, "6000000000000023").result == \
        Result.DECLINED_CARD_NOT_FOUND


# ------------------------------------------------------------------------------ once


def test_a_retry_replays_and_used_holds_across_a_restart_and_another_process(
        ledger, alliance, clock, store, store_url):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance)
    offer = quote(ledger, alliance.t1, number).exchange.quote_id
    done = approved(execute(ledger, alliance.t1, number, offer, request_id="x-1"))
    retry = approved(execute(ledger, alliance.t1, number, offer, request_id="x-1"))
    assert retry.replayed and retry.exchange == done.exchange
    assert result(execute(ledger, alliance.t1, number, "A" * 30 + "." + "B" * 22,
                          request_id="x-1")) == Result.DUPLICATE_REQUEST_MISMATCH
    # Another process on the same database knows it was used (it follows the log).
    second_store = open_store(store_url)
    try:
        with started_ledger(second_store, clock_us=clock) as other:
            assert result(execute(other, alliance.t1, number, offer)) == \
                Result.DECLINED_QUOTE_USED
    finally:
        second_store.close()
    for _ in range(21):  # past a snapshot: the used quote is in the snapshotted state too
        earn(ledger, alliance, number, 1)
    ledger.stop()
    restarted = Ledger(store, clock_us=clock, coupon_key=TEST_COUPON_KEY).start()
    try:
        assert result(execute(restarted, alliance.t1, number, offer)) == \
            Result.DECLINED_QUOTE_USED
        replay = approved(execute(restarted, alliance.t1, number, offer, request_id="x-1"))
        assert replay.replayed and replay.exchange == done.exchange
        assert {p.program: p.points for p in view(restarted, alliance, number).purses} == {
            "": 10_000 - 1_000 + 21, "P2": 490}
        assert restarted.card(number) == ledger.card(number)
    finally:
        restarted.stop()


def test_miles_expire_under_the_airlines_policy(ledger, alliance, clock):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance)
    approved(execute(ledger, alliance.t1, number,
                     quote(ledger, alliance.t1, number).exchange.quote_id))
    lot = card_events(ledger.store, number)[-1].lot
    clock.now_us = lot.expires_at_us
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    ledger.submit(Request("", MaintainCard(number, lot.expires_at_us), done.set_result,
                          system=True))
    assert done.result(timeout=60).maintenance.points_expired == 9_000 + 490  # both purses
    expired = {e.lot_id: e.amount for e in card_events(ledger.store, number)
               if isinstance(e, ev.PointsExpired)}
    assert expired[lot.lot_id] == 490
    assert purses(ledger, alliance, number) == {}  # spent lots leave the card


# ------------------------------------------------------------------------------ refusals


def test_who_may_quote_execute_and_publish(ledger, alliance):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance)
    for credential in (alliance.p2_manager,):
        reply = call(ledger, credential, QuoteExchange(number, "P1", "P2", 1_000, 0),
                     request_id="")
        assert isinstance(reply, Failure) and reply.code == Refusal.DENIED
    for credential in (alliance.auditor, alliance.finance, alliance.p1_manager):
        assert quote(ledger, credential, number).result == Result.APPROVED
    offer = quote(ledger, alliance.gw1, number).exchange.quote_id
    before = log_end(ledger)
    for credential in (alliance.auditor, alliance.s1_manager, alliance.p1_manager):
        reply = execute(ledger, credential, number, offer)
        assert isinstance(reply, Failure) and reply.code == Refusal.DENIED, credential
        assert "execute points exchanges" in reply.message
    reply = call(ledger, alliance.p1_manager,
                 PublishExchangeRate(msgspec.structs.replace(RATE, version=2)))
    assert isinstance(reply, Failure) and reply.code == Refusal.DENIED
    assert log_end(ledger) == before


def test_rates_naming_unknown_programs_or_other_currencies_are_refused(ledger, alliance):
    setup(ledger, alliance)
    approved(call(ledger, alliance.admin, DefineProgram("alliance", "EUR", 1_000_000, 0, 0,
                                                        "UTC", 0)))
    cases = [
        (msgspec.structs.replace(RATE, from_program="P9"), "rate.from_program"),
        (msgspec.structs.replace(RATE, to_program="alliance"), "rate.to_program"),
        (msgspec.structs.replace(RATE, version=3), "rate.version"),
        (msgspec.structs.replace(RATE, version=1), "rate.version"),  # published: immutable
    ]
    before = log_end(ledger)
    for rate, field in cases:
        command = PublishExchangeRate(rate)
        command.validate()  # well formed: the registry refuses it
        reply = ledger.call(alliance.admin, command, request_id="bad-1", timeout_s=30)
        assert isinstance(reply, Failure) and reply.code == Refusal.INVALID_INPUT, reply
        assert reply.message.startswith(field), reply.message
    assert log_end(ledger) == before
    assert ledger.store.find_keys([("c:" + alliance.admin, "bad-1")]) == {}


def test_an_exchange_and_a_redemption_racing_from_two_processes_never_overspend(
        ledger, alliance, clock, store_url):
    """Two writers on one database: one executes an exchange of 600 points, the other redeems
    600 of the card's 1,000 at a till, at the same moment. Whichever commits first, the other
    is decided again on the card as it then is and declined: never both, never below zero."""
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance, 1_000)
    offer = quote(ledger, alliance.t1, number, 600).exchange.quote_id
    second_store = open_store(store_url)
    try:
        with started_ledger(second_store, clock_us=clock) as other:
            other.card(number)  # both writers hold the card before either writes
            replies: list[concurrent.futures.Future[Any]] = []
            for engine, command in (
                    (ledger, ExecuteExchange(number, offer)),
                    (other, purchase(number, basket(("tv", "electronics", 1, 10_00)),
                                     points=600))):
                done: concurrent.futures.Future[Any] = concurrent.futures.Future()
                engine.submit(Request(alliance.t1, command, done.set_result, "",
                                      f"race-{type(command).__name__}", "",
                                      float("inf")))
                replies.append(done)
            exchanged, bought = (Result(f.result(timeout=60).result) for f in replies)
    finally:
        second_store.close()
    assert sorted((exchanged, bought)) == [Result.APPROVED,
                                           Result.DECLINED_INSUFFICIENT_POINTS]
    points = purses(ledger, alliance, number)
    if exchanged == Result.APPROVED:
        assert points == {"": 400, "P2": 292}  # (600 - 16) / 2
    else:  # the purchase redeemed 600 and earned 10
        assert points == {"": 410}


def test_holds_that_lapsed_are_recorded_before_the_exchange(ledger, alliance, clock):
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance)
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 50_00, "USD", "pay")))
    approved(call(ledger, alliance.t1, cc.Authorize(number, 10_00, "USD", False, "")))
    clock.advance(8 * 86_400)  # past the hold's 7 days
    offer = quote(ledger, alliance.t1, number).exchange.quote_id
    before = version(ledger.store, number)
    done = approved(execute(ledger, alliance.t1, number, offer))
    released, exchanged = card_events(ledger.store, number)[before:]
    assert isinstance(released, ev.AuthorizationReleased) and released.reason == "EXPIRED"
    assert isinstance(exchanged, ev.PointsExchanged)
    assert done.exchange.lot_id == exchanged.lot.lot_id == f"{number}.{before + 2}"
    assert view(ledger, alliance, number).held_minor == 0


def test_an_exchange_is_settled_between_the_program_owners(ledger, alliance, clock):
    """The retail program's owner pays the airline's for the miles it handed out: the value of
    the points given at the airline's point value, in the period the exchange fell in."""
    setup(ledger, alliance)
    number = loyal_card(ledger, alliance, 1_000)
    offer = quote(ledger, alliance.t_air, number, 1_000)
    approved(execute(ledger, alliance.t_air, number, offer.exchange.quote_id))
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("after the exchange")))
    found, instructions = period_statements(settlement_runner(ledger.store), 1)
    p1 = found.statement("USD", "P1")
    assert p1 is not None
    assert [(line.counterparty_id, Category(line.category), line.payable_minor)
            for line in p1.lines] == [("P2", Category.EXCHANGE, 7_35)]  # 490 miles x 1.5 cents
    assert [(i.payer_id, i.payee_id, i.amount_minor) for i in instructions] == [
        ("P1", "P2", 7_35)]


def test_an_agreement_may_give_the_exchange_fee_to_another_entity(ledger, alliance, clock):
    """P1 and P2 agree that P2 earns the fee of exchanges out of P1's program: besides the
    value of the miles, P1 pays P2 the fee (20 points at 1 cent) as a FEE line."""
    setup(ledger, alliance)
    approved(call(ledger, alliance.admin, PublishAgreement(Agreement(
        "p1p2", 1, 0, "P1", "P2", exchange_fee_earner="P2"))))
    number = loyal_card(ledger, alliance, 1_000)
    offer = quote(ledger, alliance.t_air, number, 1_000)
    approved(execute(ledger, alliance.t_air, number, offer.exchange.quote_id))
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("after the exchange")))
    found, _ = period_statements(settlement_runner(ledger.store), 1)
    p1 = found.statement("USD", "P1")
    assert p1 is not None
    assert sorted((Category(line.category), line.payable_minor) for line in p1.lines) == [
        (Category.EXCHANGE, 7_35), (Category.FEE, 20)]
