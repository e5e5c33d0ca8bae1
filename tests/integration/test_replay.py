"""An auditor's replay (`projections/audit.py`, the `loyalty-ledger audit replay` command):
read the whole log, rebuild the registry and every card, and evaluate each purchase again
with the plain-Python reference evaluator and the rule-set versions the purchase pinned. Every
lot comes out identical, point for point, and the cards' purses equal what the running engine
holds, lot by lot."""

from __future__ import annotations

import random

import pytest

from domain.purchases.commands import Return, ReturnLine
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule, RuleSet, Stacking
from ledger.codec import card_stream_id
from projections.audit import replay
from tests.integration.test_engine_stories import approved, call, new_card
from tests.integration.test_purchase_stories import (
    FOREVER_US,
    program,
    purchase,
    rule_set,
)

CATEGORIES = ("apparel", "wine", "grocery", "tobacco", "books")

# Stories told on SQLite (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")


def _campaign(version: int, valid_from_us: int) -> RuleSet:
    boost = 20_000 + 5_000 * version
    return rule_set(
        Rule(rule_id="base", effect=Effect.EARN, rate_num=version, rate_den=100),
        Rule(rule_id="wine", effect=Effect.MULTIPLY, categories=("wine",), multiplier_bp=boost,
             stacking=Stacking.EXCLUSIVE),
        Rule(rule_id="vip", effect=Effect.MULTIPLY, card_classes=("VIP",),
             multiplier_bp=15_000),
        Rule(rule_id="evening", effect=Effect.MULTIPLY, minute_from=17 * 60,
             minute_to=21 * 60, weekdays=(4, 5), multiplier_bp=12_500),
        Rule(rule_id="no-tobacco", effect=Effect.EXCLUDE, categories=("tobacco",)),
        Rule(rule_id="bonus", effect=Effect.THRESHOLD_BONUS, threshold_minor=80_00, points=40),
        Rule(rule_id="cap", effect=Effect.CAP, points=400),
        Rule(rule_id="vip-discount", effect=Effect.DISCOUNT, card_classes=("VIP",),
             discount_bp=500 * version),
        Rule(rule_id="books-stamps", effect=Effect.STAMP, categories=("books",),
             stamps_needed=3 + version),
        Rule(rule_id="welcome", effect=Effect.FIRST_PURCHASE_BONUS, points=30),
        Rule(rule_id="weekly-cap", effect=Effect.CAP, cap_period="WEEK", points=600),
        rule_set_id="campaign", version=version, valid_from_us=valid_from_us,
        valid_to_us=FOREVER_US)


def _traffic(ledger, alliance, clock, rnd: random.Random) -> None:
    approved(call(ledger, alliance.p1_manager, program(vesting_days=3)))
    approved(call(ledger, alliance.p1_manager, PublishRuleSet(_campaign(1, 0))))
    store_rules = rule_set(Rule(rule_id="s1-books", effect=Effect.MULTIPLY,
                                categories=("books",), multiplier_bp=30_000),
                           rule_set_id="s1-books", scope="store:S1")
    approved(call(ledger, alliance.s1_manager, PublishRuleSet(store_rules)))
    approved(call(ledger, alliance.p1_manager,
                  PublishRuleSet(_campaign(2, clock.now_us + 10 * 86_400_000_000))))
    numbers = [new_card(ledger, alliance, load=5_000_00,
                        card_class=rnd.choice(("VIP", "STANDARD"))) for _ in range(6)]
    sales: list[tuple[str, int]] = []
    for step in range(60):
        if step == 30:
            clock.advance(11 * 86_400)  # version 2 of the campaign is in force from here
        number = rnd.choice(numbers)
        lines = tuple(Line(f"sku-{rnd.randrange(20)}", rnd.choice(CATEGORIES),
                           rnd.randint(1, 3), rnd.randrange(1_00, 60_00))
                      for _ in range(rnd.randint(1, 5)))
        local = f"2026-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}T{rnd.randint(8, 21):02d}:" \
                f"{rnd.randint(0, 59):02d}"
        points = rnd.choice((0, 0, 0, 25))
        terminal = rnd.choice((alliance.t1, alliance.t3))
        reply = call(ledger, terminal, purchase(number, lines, points=points, local_time=local))
        if reply.purchase and reply.purchase.purchase_id:
            sales.append((reply.purchase.purchase_id, len(lines)))
        if sales and rnd.random() < 0.2:
            sale_id, count = rnd.choice(sales)
            call(ledger, alliance.t1, Return(sale_id, (ReturnLine(rnd.randrange(count), 1),),
                                             "replay test"))
        clock.advance(rnd.randint(0, 2 * 86_400))


def test_replaying_the_log_with_pinned_versions_gives_identical_lots(ledger, alliance, clock):
    _traffic(ledger, alliance, clock, random.Random(20261130))
    report = replay(ledger.store)
    assert report.differences == []
    assert report.purchases >= 40 and report.lots >= 30  # the traffic did what the test needs
    final = list(report.cards.values())
    assert any(card.stamps for card in final)  # stamp cards moved
    versions = {ref for card in final for ref in {lot.rule_set for lot in card.lots.values()}}
    assert any("campaign@1" in v for v in versions) and any("campaign@2" in v for v in versions)
    for stream_id, card in report.cards.items():
        live = ledger.card(card.card_number)
        assert card_stream_id(card.card_number) == stream_id
        assert live is not None and live.lots == card.lots  # lot by lot, remainders included
        assert live.points_written_off == card.points_written_off
    assert report.postings >= 40 and report.replies_compared >= 40
    assert sum(report.balances.values()) == 0
    for card in final:  # every card's available value is what its own legs left on it
        assert report.balances.get(f"card:{card.card_number}:available", 0) \
            == card.balance_minor - card.held_minor


def test_a_replay_as_of_a_time_sees_only_what_was_recorded_by_then(ledger, alliance, clock):
    from domain.cards import commands as cc
    from tests.integration.test_engine_stories import USD

    number = new_card(ledger, alliance, load=1_000)
    between = clock.now_us
    clock.advance(60)
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 500, USD, "second")))
    then = replay(ledger.store, as_of_us=between)
    now = replay(ledger.store)
    assert then.differences == [] and now.differences == []
    (card_then,) = then.cards.values()
    (card_now,) = now.cards.values()
    assert (card_then.balance_minor, card_now.balance_minor) == (1_000, 1_500)
    assert then.balances[f"card:{number}:available"] == 1_000
    assert now.balances[f"card:{number}:available"] == 1_500


def test_an_amount_changed_in_the_log_differs_from_the_reply_the_till_got(ledger, alliance,
                                                                          clock):
    """The replay checks the card after each event against the reply the engine stored for
    its request (kept for the retry window): an edited amount is named with its position."""
    import msgspec

    from domain.cards import commands as cc
    from ledger.codec import decode_event, encode
    from tests.integration.test_engine_stories import USD
    from tests.support.lanes import lane_of_card, lane_tables

    number = new_card(ledger, alliance, load=1_000)
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 500, USD, "second")))
    store = ledger.store
    lane = lane_of_card(store, number)  # one log: 0
    position = store.lane_head(lane)
    (row,) = store.read_lane(lane, position, 1)
    event = decode_event(row.state)
    forged = msgspec.structs.replace(event, amount_minor=50_000,
                                     legs=tuple(msgspec.structs.replace(
                                         leg, amount_minor=leg.amount_minor * 100)
                                         for leg in event.legs))
    with lane_tables(store, lane) as (session, events, _, key):
        session.execute(f"UPDATE {events} SET state = ? WHERE {key} = ?",
                        (encode(forged), position))
    report = replay(store)
    where = f"{position} in lane {lane}" if store.split else f"{position}"
    assert any(f"log id {where}: the reply gave card {number} balance 1500, the replay "
               f"51000" in d for d in report.differences), report.differences
