"""Rule sets: the reference evaluator on store-manager stories, and validation that names the
rule and the field of a bad rule set."""

from __future__ import annotations

import pytest

from domain.common import InvalidInput
from domain.rules.model import (
    Basket,
    Effect,
    Line,
    Rounding,
    Rule,
    RuleSet,
    RuleSetInvalid,
    Stacking,
    check_basket,
    validate,
)
from domain.rules.reference import evaluate

SATURDAY, TUESDAY = 5, 1
EVENING, MORNING = 18 * 60 + 30, 9 * 60


def rule_set(*rules: Rule) -> RuleSet:
    return validate(RuleSet(rule_set_id="spring", version=1, scope="partner:RETAIL",
                            valid_from_us=0, valid_to_us=10**16, rules=rules))


BASE = Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=100)  # 1 pt per 1.00
PROMO = rule_set(
    BASE,
    Rule(rule_id="no-tobacco", effect=Effect.EXCLUDE, categories=("tobacco",)),
    Rule(rule_id="vip-double", effect=Effect.MULTIPLY, card_classes=("VIP",),
         multiplier_bp=20_000),
    Rule(rule_id="happy-hour", effect=Effect.MULTIPLY, weekdays=(4, 5),
         minute_from=17 * 60, minute_to=20 * 60, multiplier_bp=15_000),
    Rule(rule_id="wine-x5", effect=Effect.MULTIPLY, categories=("wine",), multiplier_bp=50_000,
         stacking=Stacking.EXCLUSIVE),
    Rule(rule_id="spend-100", effect=Effect.THRESHOLD_BONUS, threshold_minor=10_000,
         points=50),
)


def basket(*lines: Line, card_class: str = "STANDARD", weekday: int = TUESDAY,
           minute: int = MORNING, tier: str = "") -> Basket:
    return check_basket(Basket(lines=lines, card_class=card_class, tier=tier, weekday=weekday,
                               minute_of_day=minute))


def test_a_vips_happy_hour_basket() -> None:
    award = evaluate(PROMO, basket(Line("bread", "food", 2, 2_500),  # 50.00: 50 x 2 x 1.5
                                   Line("cigs", "tobacco", 1, 9_000),  # excluded
                                   Line("bordeaux", "wine", 1, 6_000),  # 60 x 5 (exclusive)
                                   card_class="VIP", weekday=SATURDAY, minute=EVENING))
    assert award.eligible_minor == 11_000
    # base 50 + 60; the uplift by the rule that gave it: vip-double +50, happy-hour +50 (bread),
    # wine-x5 +240 (alone); the bonus
    assert award.by_rule == {0: 110, 2: 50, 3: 50, 4: 240, 5: 50}
    assert award.points == 500


def test_the_same_basket_outside_happy_hour_for_a_standard_card() -> None:
    award = evaluate(PROMO, basket(Line("bread", "food", 2, 2_500),
                                   Line("cigs", "tobacco", 1, 9_000),
                                   Line("bordeaux", "wine", 1, 6_000)))
    assert award.points == 50 + 300 + 50


@pytest.mark.parametrize(("mode", "points"), [(Rounding.FLOOR, 2), (Rounding.HALF_UP, 3),
                                              (Rounding.CEIL, 3)])
def test_rounding_is_explicit(mode: Rounding, points: int) -> None:
    rules = rule_set(Rule(rule_id="b", effect=Effect.EARN, rate_num=1, rate_den=100,
                          rounding=mode))
    assert evaluate(rules, basket(Line("x", "food", 1, 250))).points == points


def test_a_cap_takes_bonuses_first_and_the_explanation_still_adds_up() -> None:
    rules = rule_set(BASE, Rule(rule_id="bonus", effect=Effect.THRESHOLD_BONUS,
                                threshold_minor=100, points=80),
                     Rule(rule_id="cap", effect=Effect.CAP, points=100))
    award = evaluate(rules, basket(Line("tv", "electronics", 1, 9_000)))
    assert award.points == 100 and award.by_rule == {0: 90, 1: 10}


def test_the_higher_priority_earn_rule_wins_a_line() -> None:
    rules = rule_set(BASE, Rule(rule_id="books", effect=Effect.EARN, categories=("books",),
                                rate_num=3, rate_den=100, priority=1))
    award = evaluate(rules, basket(Line("novel", "books", 1, 2_000),
                                   Line("milk", "food", 1, 2_000)))
    assert award.by_rule == {1: 60, 0: 20}


def test_a_tier_only_rule_needs_the_tier() -> None:
    rules = rule_set(BASE, Rule(rule_id="gold", effect=Effect.MULTIPLY, tiers=("gold",),
                                multiplier_bp=30_000))
    line = Line("milk", "food", 1, 1_000)
    assert evaluate(rules, basket(line, tier="gold")).points == 30
    assert evaluate(rules, basket(line, tier="silver")).points == 10


@pytest.mark.parametrize(("bad", "field"), [
    (Rule(rule_id="w", effect=Effect.EARN, rate_num=1, rate_den=100, minute_from=600,
          minute_to=600), "rules[1] (w).minute_from"),
    (Rule(rule_id="w", effect=Effect.EARN, rate_num=0, rate_den=100), "rules[1] (w).rate_num"),
    (Rule(rule_id="w", effect=Effect.EARN, rate_num=1, rate_den=0), "rules[1] (w).rate_den"),
    (Rule(rule_id="w", effect=Effect.MULTIPLY, multiplier_bp=-1), "rules[1] (w).multiplier_bp"),
    (Rule(rule_id="w", effect=Effect.MULTIPLY, weekdays=(7,)), "rules[1] (w).weekdays"),
    (Rule(rule_id="w", effect=Effect.EXCLUDE, categories=("has space",)),
     "rules[1] (w).categories"),
    (Rule(rule_id="w", effect=Effect.THRESHOLD_BONUS, threshold_minor=0, points=5),
     "rules[1] (w).threshold_minor"),
    (Rule(rule_id="base", effect=Effect.CAP, points=5), "rules[1] (base).rule_id"),
])
def test_a_bad_rule_set_names_the_rule_and_field(bad: Rule, field: str) -> None:
    with pytest.raises(RuleSetInvalid) as raised:
        rule_set(BASE, bad)
    assert raised.value.field == field


def test_an_impossible_validity_window_is_refused() -> None:
    with pytest.raises(RuleSetInvalid, match="valid_to"):
        validate(RuleSet(rule_set_id="x", version=1, scope="alliance", valid_from_us=5,
                         valid_to_us=5, rules=(BASE,)))


@pytest.mark.parametrize(("line", "field"), [
    (Line("x", "food", 0, 100), "lines[0].quantity"),
    (Line("x", "food", -1, 100), "lines[0].quantity"),
    (Line("x", "food", 1, -5), "lines[0].unit_price_minor"),
    (Line("", "food", 1, 5), "lines[0].sku"),
    (Line("x", "food", 10, 10**9), "lines[0]"),
])
def test_a_malformed_basket_names_the_line_and_field(line: Line, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        basket(line)
    assert raised.value.field == field
