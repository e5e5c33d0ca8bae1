"""Rule evaluation speed: the numba kernel against the plain-Python reference and against the
`rule-engine` package (PyPI) evaluating the same rules, in one run on one core.

    .venv/bin/python -m benchmarks.rules [--baskets 20000] [--seconds 2]

The promotion is a store manager's realistic spring campaign (13 rules: base earn, exclusions,
class, tier, category and SKU multipliers, a happy hour, threshold bonuses, a cap); baskets
have 1-12 lines. `rule-engine` evaluates each rule's conditions (it is a condition language);
the points arithmetic around it is the reference's, so all three give identical points, which
the run checks before timing anything.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from domain.rules.model import (
    MULTIPLIER_BP_ONE,
    Basket,
    Effect,
    Line,
    Rule,
    RuleSet,
    Stacking,
    validate,
)
from domain.rules.reference import Award, evaluate, rounded
from ledger.rule_kernel import compile_rule_set, encode_baskets, evaluate_batch, warm_up

CATEGORIES = ["food", "drink", "wine", "tobacco", "toys", "books", "beauty", "home"]
SKUS = [f"sku-{i:04d}" for i in range(400)]


def spring_campaign(scope: str = "partner:RETAIL") -> RuleSet:
    return validate(RuleSet(rule_set_id="spring", version=1, scope=scope,
                            valid_from_us=0, valid_to_us=2**62, rules=(
        Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=100),
        Rule(rule_id="books-x3-earn", effect=Effect.EARN, categories=("books",), rate_num=3,
             rate_den=100, priority=1),
        Rule(rule_id="no-tobacco", effect=Effect.EXCLUDE, categories=("tobacco",)),
        Rule(rule_id="no-gift-cards", effect=Effect.EXCLUDE, skus=("sku-0000", "sku-0001")),
        Rule(rule_id="vip-double", effect=Effect.MULTIPLY, card_classes=("VIP",),
             multiplier_bp=20_000),
        Rule(rule_id="gold-tier", effect=Effect.MULTIPLY, tiers=("gold",),
             multiplier_bp=15_000),
        Rule(rule_id="happy-hour", effect=Effect.MULTIPLY, weekdays=(4, 5),
             minute_from=17 * 60, minute_to=20 * 60, multiplier_bp=15_000),
        Rule(rule_id="wine-x5", effect=Effect.MULTIPLY, categories=("wine",),
             multiplier_bp=50_000, stacking=Stacking.EXCLUSIVE),
        Rule(rule_id="beauty-skus", effect=Effect.MULTIPLY,
             skus=tuple(f"sku-{i:04d}" for i in range(100, 140)), multiplier_bp=30_000,
             stacking=Stacking.EXCLUSIVE, priority=1),
        Rule(rule_id="home-weekend", effect=Effect.MULTIPLY, categories=("home",),
             weekdays=(5, 6), multiplier_bp=20_000),
        Rule(rule_id="spend-100", effect=Effect.THRESHOLD_BONUS, threshold_minor=10_000,
             points=50),
        Rule(rule_id="toys-50", effect=Effect.THRESHOLD_BONUS, categories=("toys",),
             threshold_minor=5_000, points=20),
        Rule(rule_id="cap", effect=Effect.CAP, points=5_000),
    )))


def random_baskets(count: int, seed: int = 7) -> list[Basket]:
    rng = random.Random(seed)
    return [Basket(lines=tuple(Line(rng.choice(SKUS), rng.choice(CATEGORIES), rng.randint(1, 4),
                                    rng.randint(50, 20_000))
                               for _ in range(rng.randint(1, 12))),
                   card_class=rng.choice(["STANDARD", "STANDARD", "VIP"]),
                   tier=rng.choice(["", "silver", "gold"]), weekday=rng.randint(0, 6),
                   minute_of_day=rng.randint(0, 1439)) for _ in range(count)]


# ------------------------------------------------------------------------------ rule-engine


def _condition(rule: Rule) -> str:
    parts = []
    if rule.card_classes:
        parts.append(f"card_class in {list(rule.card_classes)!r}")
    if rule.tiers:
        parts.append(f"tier in {list(rule.tiers)!r}")
    if rule.weekdays:
        parts.append(f"weekday in {list(rule.weekdays)!r}")
    parts.append(f"minute >= {rule.minute_from} and minute < {rule.minute_to}")
    if rule.categories or rule.skus:
        parts.append(f"(category in {list(rule.categories)!r} or sku in {list(rule.skus)!r})")
    return " and ".join(parts)


class RuleEngineEvaluator:
    """The same rule set with each rule's conditions compiled by `rule-engine`; the arithmetic
    follows the reference (domain/rules/reference.py) so the points are comparable."""

    def __init__(self, rule_set: RuleSet) -> None:
        import rule_engine

        self.rules = rule_set.rules
        self.conditions = [rule_engine.Rule(_condition(rule)) for rule in self.rules]

    def evaluate(self, basket: Basket) -> Award:
        rules = self.rules
        award = Award()
        gifts: list[tuple[int, int]] = []
        base_context = {"card_class": basket.card_class, "tier": basket.tier,
                        "weekday": basket.weekday, "minute": basket.minute_of_day}
        for line in basket.lines:
            context = {**base_context, "category": line.category, "sku": line.sku}
            here = [i for i, condition in enumerate(self.conditions)
                    if rules[i].effect in (Effect.EARN, Effect.MULTIPLY, Effect.EXCLUDE)
                    and condition.matches(context)]
            if any(rules[i].effect == Effect.EXCLUDE for i in here):
                continue
            award.eligible_minor += line.amount_minor
            earns = [i for i in here if rules[i].effect == Effect.EARN]
            if not earns:
                continue
            earn = max(earns, key=lambda i: (rules[i].priority, -i))
            base = rounded(line.amount_minor * rules[earn].rate_num, rules[earn].rate_den,
                           rules[earn].rounding)
            exclusive = [i for i in here if rules[i].effect == Effect.MULTIPLY
                         and rules[i].stacking == Stacking.EXCLUSIVE]
            product = MULTIPLIER_BP_ONE
            for i in here:
                if rules[i].effect == Effect.MULTIPLY and rules[i].stacking == Stacking.COMBINE:
                    product = product * rules[i].multiplier_bp // MULTIPLIER_BP_ONE
            if exclusive:
                product = rules[max(exclusive, key=lambda i: (rules[i].priority, -i))].multiplier_bp
            gifts.append((earn, base * product // MULTIPLIER_BP_ONE))
        cap = -1
        for i, rule in enumerate(rules):
            if rule.effect == Effect.THRESHOLD_BONUS:
                line_free = {**base_context, "category": None, "sku": None}
                if rule.categories or rule.skus:
                    hit = any(self.conditions[i].matches({**base_context, "category": ln.category,
                                                          "sku": ln.sku}) for ln in basket.lines)
                else:
                    hit = self.conditions[i].matches(line_free)
                if hit and award.eligible_minor >= rule.threshold_minor:
                    gifts.append((i, rule.points))
            elif rule.effect == Effect.CAP and self.conditions[i].matches(
                    {**base_context, "category": None, "sku": None}):
                cap = rule.points if cap < 0 else min(cap, rule.points)
        total = sum(p for _, p in gifts)
        if 0 <= cap < total:
            excess = total - cap
            for k in range(len(gifts) - 1, -1, -1):
                cut = min(excess, gifts[k][1])
                gifts[k] = (gifts[k][0], gifts[k][1] - cut)
                excess -= cut
            total = cap
        for index, points in gifts:
            award.give(index, points)
        award.points = total
        return award


# ------------------------------------------------------------------------------ timing


def _rate(work: Callable[[], Any], lines: int, seconds: float) -> float:
    """Lines per second of `work` (which evaluates `lines` lines), best of repeated runs."""
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while runs < 3 or time.perf_counter() < deadline:
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
        runs += 1
    return lines / best


def measure(baskets: int = 20_000, seconds: float = 2.0) -> dict[str, float]:
    warm_up()
    rule_set = spring_campaign()
    compiled = compile_rule_set(rule_set)
    batch = random_baskets(baskets)
    small = batch[: max(1, baskets // 20)]  # rule-engine is slow: a twentieth of the baskets
    engine = RuleEngineEvaluator(rule_set)
    encoded = encode_baskets(compiled, batch)
    points = evaluate_batch(compiled, encoded).points
    for index, basket in enumerate(small):  # all three agree before anything is timed
        expected = evaluate(rule_set, basket).points
        assert int(points[index]) == expected == engine.evaluate(basket).points
    lines = int(encoded.line_start[-1])
    small_lines = sum(len(b.lines) for b in small)
    one = [batch[0]]
    one_encoded = encode_baskets(compiled, one)
    results = {
        "kernel, batch (lines/s)": _rate(lambda: evaluate_batch(compiled, encoded), lines,
                                         seconds),
        "kernel + encoding, batch (lines/s)": _rate(
            lambda: evaluate_batch(compiled, encode_baskets(compiled, batch)), lines, seconds),
        "reference, batch (lines/s)": _rate(lambda: [evaluate(rule_set, b) for b in batch],
                                            lines, seconds),
        "rule-engine, batch (lines/s)": _rate(lambda: [engine.evaluate(b) for b in small],
                                              small_lines, seconds),
        "kernel, one purchase (us)": 1e6 / _rate(lambda: evaluate_batch(compiled, one_encoded),
                                                 1, seconds / 2),
        "reference, one purchase (us)": 1e6 / _rate(lambda: evaluate(rule_set, one[0]), 1,
                                                    seconds / 2),
    }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baskets", type=int, default=20_000)
    parser.add_argument("--seconds", type=float, default=2.0)
    ns = parser.parse_args()
    results = measure(ns.baskets, ns.seconds)
    for name, value in results.items():
        print(f"{name:<40}{value:>16,.1f}")
    for numerator in ("kernel, batch (lines/s)", "kernel + encoding, batch (lines/s)"):
        for baseline in ("reference, batch (lines/s)", "rule-engine, batch (lines/s)"):
            ratio = results[numerator] / results[baseline]
            name = f"{numerator.split(',')[0]} / {baseline.split(',')[0]}"
            print(f"{name:<40}{ratio:>15,.0f}x  (target >= 30x: "
                  f"{'pass' if ratio >= 30 else 'MISS'})")


if __name__ == "__main__":
    main()
