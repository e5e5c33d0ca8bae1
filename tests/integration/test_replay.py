"""An auditor's replay: read the whole log, rebuild the registry and every card, and evaluate
each purchase again with the plain-Python reference evaluator and the rule-set versions the
purchase pinned. Every lot comes out identical, point for point, and the cards' purses equal
what the running engine holds, lot by lot."""

from __future__ import annotations

import random

import pytest

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent, RuleAward
from domain.purchases import stateful
from domain.purchases.commands import Return, ReturnLine
from domain.purchases.evaluation import Evaluation
from domain.registry import decide as registry
from domain.registry.events import RegistryEvent
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Basket, Effect, Line, Rule, RuleSet, Stacking
from domain.rules.reference import evaluate
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event
from tests.integration.test_engine_stories import approved, call, new_card
from tests.integration.test_purchase_stories import (
    FOREVER_US,
    program,
    purchase,
    rule_set,
)

# Stories told on SQLite (where each backend runs: tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

CATEGORIES = ("apparel", "wine", "grocery", "tobacco", "books")


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
    state = registry.RegistryState()
    replayed: dict[object, cards.CardState | None] = {}
    purchases = lots = 0
    position = 1
    while page := ledger.store.read_log(position, 500):
        for row in page:
            event = decode_event(row.state)
            position = row.id + 1
            if row.originator_id == REGISTRY_ID:
                assert isinstance(event, RegistryEvent)
                registry.evolve(state, event)
                continue
            assert isinstance(event, CardEvent)
            before = replayed.get(row.originator_id)
            if isinstance(event, ev.PurchaseMade):
                assert before is not None
                purchases += 1
                lots += _check_purchase(state, before, event)
            replayed[row.originator_id] = cards.evolve(before, event)
    assert purchases >= 40 and lots >= 30  # the traffic did what the test needs
    final = [card for card in replayed.values() if card is not None]
    assert any(card.stamps for card in final)  # stamp cards moved
    versions = {ref for card in replayed.values() if card for ref in
                {lot.rule_set for lot in card.lots.values()}}
    assert any("campaign@1" in v for v in versions) and any("campaign@2" in v for v in versions)
    for stream_id, card in replayed.items():
        assert card is not None
        live = ledger.card(card.card_number)
        assert card_stream_id(card.card_number) == stream_id
        assert live is not None and live.lots == card.lots  # lot by lot, remainders included
        assert live.points_written_off == card.points_written_off


def _check_purchase(state: registry.RegistryState, before: cards.CardState,
                    event: ev.PurchaseMade) -> int:
    pinned = []
    for ref in event.rule_sets:
        rule_set_id, version = ref.rsplit("@", 1)
        pinned.append(state.rule_sets[rule_set_id][int(version) - 1])
    merged = RuleSet(rule_set_id="replay", version=1, scope="alliance", valid_from_us=0,
                     valid_to_us=1, rules=tuple(r for s in pinned for r in s.rules))
    basket = Basket(lines=event.lines, card_class=before.card_class, tier=before.tier,
                    weekday=event.weekday, minute_of_day=event.minute_of_day)
    award = evaluate(merged, basket)
    origin = [(ref, r.rule_id) for ref, s in zip(event.rule_sets, pinned, strict=True)
              for r in s.rules]
    awards = tuple(RuleAward(*origin[i], award.by_rule.get(i, 0),
                             award.discount_by_rule.get(i, 0))
                   for i in sorted(set(award.by_rule) | set(award.discount_by_rule)))
    basket_only = Evaluation(award.points, award.eligible_minor, event.rule_sets, awards,
                             award.discount_minor)
    total = sum(line.amount_minor for line in event.lines)
    # the rules on the card's history, from the card as it was before the purchase
    evaluation, stamps = stateful.apply(before, tuple(pinned), basket, event.local_date,
                                        basket_only, total - award.discount_minor)
    assert event.discount_minor == evaluation.discount_minor and event.stamps == stamps
    if event.lot is None:
        assert evaluation.points == event.debt_settled
        return 0
    assert event.lot.amount + event.debt_settled == evaluation.points
    assert event.lot.rule_set == ",".join(event.rule_sets)

    def explained(given: tuple[RuleAward, ...]) -> dict[tuple[str, str], tuple[int, int]]:
        return {(a.rule_set, a.rule_id): (a.points, a.discount_minor) for a in given}
    assert explained(event.awards) == explained(evaluation.awards)
    return 1
