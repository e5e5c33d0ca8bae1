"""The numba kernel and the plain-Python reference evaluator agree, point for point and rule
by rule, on random rule sets and random batches of baskets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.rules.model import (
    Basket,
    Effect,
    Line,
    Rounding,
    Rule,
    RuleSet,
    Stacking,
    check_basket,
    validate,
)
from domain.rules.reference import evaluate
from ledger.rule_kernel import compile_rule_set, encode_baskets, evaluate_batch

CATEGORIES = ["food", "drink", "toys", "tobacco", "books"]
SKUS = [f"sku-{i}" for i in range(8)]
CLASSES = ["STANDARD", "VIP", "STAFF"]
TIERS = ["", "silver", "gold"]


def some(values: list[str]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.one_of(st.just(()), st.lists(st.sampled_from(values), min_size=1, max_size=3,
                                           unique=True).map(tuple))


@st.composite
def rules(draw: st.DrawFn, index: int) -> Rule:
    effect = draw(st.sampled_from([Effect.EARN, Effect.MULTIPLY, Effect.EXCLUDE,
                                   Effect.THRESHOLD_BONUS, Effect.CAP, Effect.DISCOUNT]))
    start = draw(st.integers(0, 1439))
    return Rule(
        rule_id=f"r{index}", effect=effect,
        categories=draw(some(CATEGORIES)), skus=draw(some(SKUS)),
        card_classes=draw(some(CLASSES)), tiers=draw(some(TIERS[1:])),
        weekdays=tuple(sorted(draw(st.sets(st.integers(0, 6), max_size=3)))),
        minute_from=draw(st.sampled_from([0, start])),
        minute_to=draw(st.sampled_from([1440, min(1440, start + draw(st.integers(1, 600)))])),
        rate_num=draw(st.integers(1, 20)),
        rate_den=draw(st.sampled_from([1, 2, 3, 4, 7, 100, 1000])),
        rounding=draw(st.sampled_from(list(Rounding))),
        multiplier_bp=draw(st.sampled_from([0, 5_000, 10_000, 15_000, 20_000, 33_333, 100_000])),
        stacking=draw(st.sampled_from(list(Stacking))),
        priority=draw(st.integers(-2, 2)),
        threshold_minor=draw(st.integers(1, 50_000)),
        discount_bp=draw(st.sampled_from([1, 500, 1_000, 3_333, 10_000])),
        cap_period=draw(st.sampled_from(["", "", "MONTH"])) if effect == Effect.CAP else "",
        points=draw(st.integers(0, 5_000)) if effect == Effect.CAP else
        draw(st.integers(1, 5_000)))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(1, 12))
    return validate(RuleSet(rule_set_id="rs", version=1, scope="alliance", valid_from_us=0,
                            valid_to_us=1, rules=tuple(draw(rules(i)) for i in range(count))))


lines = st.builds(Line, sku=st.sampled_from([*SKUS, "sku-unknown"]),
                  category=st.sampled_from([*CATEGORIES, "other"]),
                  quantity=st.integers(1, 12),
                  unit_price_minor=st.one_of(st.integers(0, 20), st.integers(0, 250_000)))
baskets = st.builds(Basket, lines=st.lists(lines, min_size=1, max_size=8).map(tuple),
                    card_class=st.sampled_from([*CLASSES, "UNKNOWN"]),
                    tier=st.sampled_from(TIERS), weekday=st.integers(0, 6),
                    minute_of_day=st.integers(0, 1439))


@settings(max_examples=300, deadline=None)
@given(rule_set=rule_sets(), batch=st.lists(baskets, min_size=1, max_size=6))
def test_kernel_equals_reference(rule_set: RuleSet, batch: list[Basket]) -> None:
    compiled = compile_rule_set(rule_set)
    out = evaluate_batch(compiled, encode_baskets(compiled, batch))
    for b, basket in enumerate(batch):
        check_basket(basket)
        award = evaluate(rule_set, basket)
        assert int(out.points[b]) == award.points
        assert int(out.eligible[b]) == award.eligible_minor
        assert {r: int(p) for r, p in enumerate(out.by_rule[b]) if p} == award.by_rule
        assert sum(award.by_rule.values()) == award.points >= 0
        assert int(out.discount[b]) == award.discount_minor
        assert {r: int(d) for r, d in enumerate(out.discount_by_rule[b]) if d} == \
            award.discount_by_rule
        assert 0 <= award.discount_minor <= sum(line.amount_minor for line in basket.lines)
        assert [r for r in range(len(rule_set.rules)) if out.fired[b, r]] == sorted(award.fired)
