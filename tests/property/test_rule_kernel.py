"""The numba kernel and the plain-Python reference evaluator agree, point for point and rule
by rule, on random rule sets and random batches of baskets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.purchases.commands import LINES_MAX
from domain.rules.model import (
    LINE_AMOUNT_MAX,
    MULTIPLIER_BP_MAX,
    MULTIPLIER_BP_ONE,
    POINTS_MAX,
    POINTS_PER_PURCHASE_MAX,
    QUANTITY_MAX,
    RATE_DEN_MAX,
    RATE_NUM_MAX,
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


# ------------------------------------------------------------------------------ at the bounds
# Every value a publisher or a till may send, taken at its extremes (domain/rules/model.py says
# why each bound keeps the kernel's int64 arithmetic exact): the kernel still equals the
# reference, whose Python integers cannot overflow.

EXTREME_BP = [0, 1, MULTIPLIER_BP_ONE, MULTIPLIER_BP_MAX - 1, MULTIPLIER_BP_MAX]


@st.composite
def extreme_rules(draw: st.DrawFn, index: int) -> Rule:
    effect = draw(st.sampled_from([Effect.EARN, Effect.MULTIPLY, Effect.MULTIPLY,
                                   Effect.MULTIPLY, Effect.THRESHOLD_BONUS, Effect.CAP,
                                   Effect.DISCOUNT]))
    return Rule(
        rule_id=f"x{index}", effect=effect,
        rate_num=draw(st.sampled_from([1, RATE_NUM_MAX - 1, RATE_NUM_MAX])),
        rate_den=draw(st.sampled_from([1, 3, RATE_DEN_MAX])),
        rounding=draw(st.sampled_from(list(Rounding))),
        multiplier_bp=draw(st.sampled_from(EXTREME_BP)),
        stacking=draw(st.sampled_from([Stacking.COMBINE, Stacking.COMBINE, Stacking.EXCLUSIVE])),
        priority=draw(st.sampled_from([-1000, 0, 1000])),
        threshold_minor=draw(st.sampled_from([1, LINE_AMOUNT_MAX, LINE_AMOUNT_MAX * 1000])),
        discount_bp=draw(st.sampled_from([1, MULTIPLIER_BP_ONE])),
        points=draw(st.sampled_from([0, 1, POINTS_MAX])) if effect == Effect.CAP else
        draw(st.sampled_from([1, POINTS_MAX])))


@st.composite
def extreme_rule_sets(draw: st.DrawFn) -> RuleSet:
    count = draw(st.integers(1, 40))
    return validate(RuleSet(rule_set_id="rs", version=1, scope="alliance", valid_from_us=0,
                            valid_to_us=1,
                            rules=tuple(draw(extreme_rules(i)) for i in range(count))))


extreme_lines = st.builds(
    Line, sku=st.just("sku-0"), category=st.just("food"),
    quantity=st.sampled_from([1, QUANTITY_MAX]),
    unit_price_minor=st.sampled_from([0, 1, LINE_AMOUNT_MAX // QUANTITY_MAX])) | st.builds(
    Line, sku=st.just("sku-1"), category=st.just("toys"), quantity=st.just(1),
    unit_price_minor=st.sampled_from([LINE_AMOUNT_MAX - 1, LINE_AMOUNT_MAX]))


@settings(max_examples=200, deadline=None)
@given(rule_set=extreme_rule_sets(),
       line=extreme_lines, copies=st.sampled_from([1, 2, LINES_MAX]))
def test_kernel_equals_reference_at_the_bounds(rule_set: RuleSet, line: Line,
                                               copies: int) -> None:
    basket = check_basket(Basket(lines=(line,) * copies, card_class="STANDARD", weekday=0,
                                 minute_of_day=0))
    compiled = compile_rule_set(rule_set)
    out = evaluate_batch(compiled, encode_baskets(compiled, [basket]))
    award = evaluate(rule_set, basket)
    assert int(out.points[0]) == award.points <= POINTS_PER_PURCHASE_MAX
    assert int(out.eligible[0]) == award.eligible_minor
    assert {r: int(p) for r, p in enumerate(out.by_rule[0]) if p} == award.by_rule
    assert int(out.discount[0]) == award.discount_minor


def test_two_hundredfold_multipliers_on_a_big_line_do_not_overflow() -> None:
    """The fuzzing find: EARN 1000/1 and two COMBINE 100x multipliers on a 10-million line
    gave 776,627,963,145,224 points from the kernel (int64 wrapped) and 1e16 from the
    reference. The product of multipliers now stops at 100x, and a purchase earns at most
    POINTS_PER_PURCHASE_MAX: both evaluators give exactly that."""
    rule_set = validate(RuleSet(rule_set_id="big", version=1, scope="alliance",
                                valid_from_us=0, valid_to_us=1, rules=(
        Rule(rule_id="earn", effect=Effect.EARN, rate_num=1000, rate_den=1),
        Rule(rule_id="m1", effect=Effect.MULTIPLY, multiplier_bp=1_000_000),
        Rule(rule_id="m2", effect=Effect.MULTIPLY, multiplier_bp=1_000_000))))
    basket = Basket(lines=(Line("sku", "cat", 1, 1_000_000_000),), card_class="STANDARD",
                    weekday=0, minute_of_day=0)
    compiled = compile_rule_set(rule_set)
    out = evaluate_batch(compiled, encode_baskets(compiled, [basket]))
    award = evaluate(rule_set, basket)
    assert award.points == int(out.points[0]) == POINTS_PER_PURCHASE_MAX
    assert {r: int(p) for r, p in enumerate(out.by_rule[0]) if p} == award.by_rule
    # 1e12 base, 100x at most: 1e14 before the per-purchase bound cut it to 1e12
    assert sum(award.by_rule.values()) == award.points
