"""The rules in force, evaluated together: one kernel call per combination of rule sets, and
the same points, rule by rule, as the reference evaluator on the concatenated rules."""

from __future__ import annotations

from domain.rules.model import Basket, Effect, Line, Rule, RuleSet
from domain.rules.reference import evaluate
from ledger.pricing import RuleBook


def _set(rule_set_id: str, scope: str, *rules: Rule) -> RuleSet:
    return RuleSet(rule_set_id=rule_set_id, version=1, scope=scope, valid_from_us=0,
                   valid_to_us=2**62, rules=rules)


ALLIANCE = _set("alliance-base", "alliance",
                Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=100))
PARTNER = _set("p1-spring", "partner:P1",
               Rule(rule_id="wine", effect=Effect.MULTIPLY, categories=("wine",),
                    multiplier_bp=30_000),
               Rule(rule_id="big", effect=Effect.THRESHOLD_BONUS, threshold_minor=50_00,
                    points=25))
STORE = _set("s1-cap", "store:S1", Rule(rule_id="cap", effect=Effect.CAP, points=100))


def _basket(*lines: tuple[str, str, int, int], card_class: str = "STANDARD") -> Basket:
    return Basket(lines=tuple(Line(*line) for line in lines), card_class=card_class,
                  weekday=2, minute_of_day=600)


BASKETS = [
    _basket(("w1", "wine", 2, 20_00), ("b1", "bread", 1, 3_00)),
    _basket(("b1", "bread", 1, 3_00)),
    _basket(("w1", "wine", 10, 20_00)),  # capped by the store's rule set
]


def test_rule_sets_in_force_act_as_one_and_name_their_rules():
    book = RuleBook()
    combos = [(ALLIANCE, PARTNER), (ALLIANCE, PARTNER, STORE)]
    items = [(combo, basket) for combo in combos for basket in BASKETS]
    results = book.evaluate(items)
    assert book.kernel_calls == 2  # one per combination, whatever the number of baskets
    for (combo, basket), got in zip(items, results, strict=True):
        merged = RuleSet(rule_set_id="m", version=1, scope="alliance", valid_from_us=0,
                         valid_to_us=1, rules=tuple(r for s in combo for r in s.rules))
        want = evaluate(merged, basket)
        assert (got.points, got.eligible_minor) == (want.points, want.eligible_minor)
        origin = [(f"{s.rule_set_id}@1", r.rule_id) for s in combo for r in s.rules]
        assert {(a.rule_set, a.rule_id): a.points for a in got.awards} == {
            origin[i]: p for i, p in want.by_rule.items()}
        assert got.rule_sets == tuple(f"{s.rule_set_id}@1" for s in combo)
    assert results[2].points == 600 + 25 and results[5].points == 100


def test_no_rule_set_in_force_earns_nothing_without_a_kernel_call():
    book = RuleBook()
    assert book.evaluate([((), BASKETS[0])])[0].points == 0
    assert book.kernel_calls == 0
