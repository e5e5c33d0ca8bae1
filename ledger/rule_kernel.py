"""Rule sets compiled to arrays and evaluated by one numba kernel call per batch of baskets.

`domain/rules/reference.py` is the specification; `evaluate_batch` must give the same points,
rule by rule, for every basket (tests/property/test_rule_kernel.py checks it on random rule
sets and baskets). Strings (categories, SKUs, card classes, tiers) become small integers at
compile time; a basket's strings that no rule names become -1 and match nothing.

`warm_up()` compiles the kernel (or loads it from numba's on-disk cache) so that no request
ever waits for a compile; the server calls it before it reports ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numba
import numpy as np
import numpy.typing as npt

from domain.rules.model import (
    MULTIPLIER_BP_ONE,
    MULTIPLIER_PRODUCT_MAX,
    POINTS_PER_PURCHASE_MAX,
    Basket,
    Effect,
    Rounding,
    Rule,
    RuleSet,
    Stacking,
)

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]
ALL_DAYS = 0b1111111


@dataclass(frozen=True)
class CompiledRuleSet:
    rule_set: RuleSet
    categories: dict[str, int]
    skus: dict[str, int]
    classes: dict[str, int]
    tiers: dict[str, int]
    # one entry per rule
    effect: I64
    rate_num: I64
    rate_den: I64
    rounding: I64
    multiplier_bp: I64
    exclusive: B
    priority: I64
    threshold_minor: I64
    points: I64
    discount_bp: I64
    weekday_mask: I64
    minute_from: I64
    minute_to: I64
    line_condition: B  # the rule names categories or SKUs
    class_any: B
    tier_any: B
    # membership matrices: rule x value
    rule_category: B
    rule_sku: B
    rule_class: B
    rule_tier: B


@dataclass(frozen=True)
class BasketBatch:
    """Baskets as arrays: lines of basket b are line_start[b]:line_start[b+1]."""

    line_start: I64
    line_category: I64
    line_sku: I64
    line_amount: I64
    card_class: I64
    tier: I64
    weekday: I64
    minute: I64
    lines_max: int


def _vocabulary(rules: Sequence[Rule], field: str) -> dict[str, int]:
    values: dict[str, int] = {}
    for rule in rules:
        for value in getattr(rule, field):
            values.setdefault(value, len(values))
    return values


def _membership(rules: Sequence[Rule], field: str, vocabulary: dict[str, int]) -> B:
    matrix = np.zeros((len(rules), max(1, len(vocabulary))), dtype=np.bool_)
    for r, rule in enumerate(rules):
        for value in getattr(rule, field):
            matrix[r, vocabulary[value]] = True
    return matrix


def compile_rule_set(rule_set: RuleSet) -> CompiledRuleSet:
    """Arrays for the kernel; `rule_set` must have passed domain.rules.model.validate."""
    rules = rule_set.rules
    vocab = {field: _vocabulary(rules, field)
             for field in ("categories", "skus", "card_classes", "tiers")}

    def column(values: Sequence[int]) -> I64:
        return np.asarray(values, dtype=np.int64)

    return CompiledRuleSet(
        rule_set=rule_set, categories=vocab["categories"], skus=vocab["skus"],
        classes=vocab["card_classes"], tiers=vocab["tiers"],
        # rules on the card's history are applied after the kernel: here they do nothing
        effect=column([int(r.effect) if r.per_basket else 0 for r in rules]),
        rate_num=column([r.rate_num for r in rules]),
        rate_den=column([max(1, r.rate_den) for r in rules]),
        rounding=column([int(r.rounding) for r in rules]),
        multiplier_bp=column([r.multiplier_bp for r in rules]),
        exclusive=np.asarray([r.stacking == Stacking.EXCLUSIVE for r in rules], dtype=np.bool_),
        priority=column([r.priority for r in rules]),
        threshold_minor=column([r.threshold_minor for r in rules]),
        points=column([r.points for r in rules]),
        discount_bp=column([r.discount_bp for r in rules]),
        weekday_mask=column([sum(1 << d for d in r.weekdays) if r.weekdays else ALL_DAYS
                             for r in rules]),
        minute_from=column([r.minute_from for r in rules]),
        minute_to=column([r.minute_to for r in rules]),
        line_condition=np.asarray([bool(r.categories or r.skus) for r in rules],
                                  dtype=np.bool_),
        class_any=np.asarray([not r.card_classes for r in rules], dtype=np.bool_),
        tier_any=np.asarray([not r.tiers for r in rules], dtype=np.bool_),
        rule_category=_membership(rules, "categories", vocab["categories"]),
        rule_sku=_membership(rules, "skus", vocab["skus"]),
        rule_class=_membership(rules, "card_classes", vocab["card_classes"]),
        rule_tier=_membership(rules, "tiers", vocab["tiers"]),
    )


def encode_baskets(compiled: CompiledRuleSet, baskets: Sequence[Basket]) -> BasketBatch:
    """The baskets' strings as the compiled rule set's integers (-1: named by no rule)."""
    starts = [0]
    categories: list[int] = []
    skus: list[int] = []
    amounts: list[int] = []
    cat_ids, sku_ids = compiled.categories, compiled.skus
    for basket in baskets:
        for line in basket.lines:
            categories.append(cat_ids.get(line.category, -1))
            skus.append(sku_ids.get(line.sku, -1))
            amounts.append(line.quantity * line.unit_price_minor)
        starts.append(len(amounts))
    return BasketBatch(
        line_start=np.asarray(starts, dtype=np.int64),
        line_category=np.asarray(categories, dtype=np.int64),
        line_sku=np.asarray(skus, dtype=np.int64),
        line_amount=np.asarray(amounts, dtype=np.int64),
        card_class=np.asarray([compiled.classes.get(b.card_class, -1) for b in baskets],
                              dtype=np.int64),
        tier=np.asarray([compiled.tiers.get(b.tier, -1) for b in baskets], dtype=np.int64),
        weekday=np.asarray([b.weekday for b in baskets], dtype=np.int64),
        minute=np.asarray([b.minute_of_day for b in baskets], dtype=np.int64),
        lines_max=max((len(b.lines) for b in baskets), default=0))


EARN, MULTIPLY, EXCLUDE = int(Effect.EARN), int(Effect.MULTIPLY), int(Effect.EXCLUDE)
THRESHOLD_BONUS, CAP = int(Effect.THRESHOLD_BONUS), int(Effect.CAP)
DISCOUNT = int(Effect.DISCOUNT)
FLOOR, CEIL = int(Rounding.FLOOR), int(Rounding.CEIL)


@numba.njit(cache=True, nogil=True)
def _kernel(effect, rate_num, rate_den, rounding, multiplier_bp, exclusive, priority,
            threshold_minor, points, discount_bp, weekday_mask, minute_from, minute_to,
            line_condition, class_any, tier_any, rule_category, rule_sku, rule_class, rule_tier,
            line_start, line_category, line_sku, line_amount, card_class, tier, weekday, minute,
            lines_max, product_max, points_max, out_points, out_eligible, out_by_rule,
            out_discount,
            out_discount_by_rule, out_fired):  # pragma: no cover (compiled)
    n_rules = effect.shape[0]
    n_baskets = line_start.shape[0] - 1
    live = np.zeros(n_rules, dtype=np.bool_)
    # per line: the EARN rule's base and each multiplier's uplift; then the bonuses
    gift_rule = np.empty(lines_max * (n_rules + 1) + n_rules, dtype=np.int64)
    gift_points = np.empty(lines_max * (n_rules + 1) + n_rules, dtype=np.int64)
    combine = np.empty(n_rules, dtype=np.int64)
    for b in range(n_baskets):
        for r in range(n_rules):
            ok = (weekday_mask[r] >> weekday[b]) & 1 == 1
            ok = ok and minute_from[r] <= minute[b] < minute_to[r]
            if ok and not class_any[r]:
                ok = card_class[b] >= 0 and rule_class[r, card_class[b]]
            if ok and not tier_any[r]:
                ok = tier[b] >= 0 and rule_tier[r, tier[b]]
            live[r] = ok
        gifts = 0
        eligible = 0
        for line in range(line_start[b], line_start[b + 1]):
            cat = line_category[line]
            sku = line_sku[line]
            excluded = False
            earn = -1
            best_exclusive = -1
            best_discount = -1
            n_combine = 0
            for r in range(n_rules):
                if not live[r]:
                    continue
                if line_condition[r] and not ((cat >= 0 and rule_category[r, cat])
                        or (sku >= 0 and rule_sku[r, sku])):
                    continue
                e = effect[r]
                if e == EXCLUDE:
                    excluded = True
                elif e == DISCOUNT:
                    if best_discount < 0 or priority[r] > priority[best_discount]:
                        best_discount = r
                elif e == EARN:
                    if earn < 0 or priority[r] > priority[earn]:
                        earn = r
                elif e == MULTIPLY:
                    if exclusive[r]:
                        if best_exclusive < 0 or priority[r] > priority[best_exclusive]:
                            best_exclusive = r
                    else:
                        combine[n_combine] = r
                        n_combine += 1
            amount = line_amount[line]
            if best_discount >= 0:
                off = amount * discount_bp[best_discount] // MULTIPLIER_BP_ONE
                out_discount[b] += off
                out_discount_by_rule[b, best_discount] += off
                amount -= off
            if excluded:
                continue
            eligible += amount
            if earn < 0:
                continue
            numerator = amount * rate_num[earn]
            denominator = rate_den[earn]
            if rounding[earn] == FLOOR:
                base = numerator // denominator
            elif rounding[earn] == CEIL:
                base = -((-numerator) // denominator)
            else:
                base = (2 * numerator + denominator) // (2 * denominator)
            gift_rule[gifts] = earn
            gift_points[gifts] = base
            gifts += 1
            if best_exclusive >= 0:
                gift_rule[gifts] = best_exclusive
                gift_points[gifts] = (base * multiplier_bp[best_exclusive] // MULTIPLIER_BP_ONE
                                      - base)
                gifts += 1
                continue
            product = MULTIPLIER_BP_ONE
            before = base
            for k in range(n_combine):
                r = combine[k]
                product = min(product * multiplier_bp[r] // MULTIPLIER_BP_ONE, product_max)
                after = base * product // MULTIPLIER_BP_ONE
                gift_rule[gifts] = r
                gift_points[gifts] = after - before
                gifts += 1
                before = after
        cap = points_max
        for r in range(n_rules):
            if not live[r]:
                continue
            if effect[r] == THRESHOLD_BONUS:
                if line_condition[r]:
                    matched = False
                    for line in range(line_start[b], line_start[b + 1]):
                        cat = line_category[line]
                        sku = line_sku[line]
                        if (cat >= 0 and rule_category[r, cat]) or (sku >= 0 and rule_sku[r, sku]):
                            matched = True
                            break
                    if not matched:
                        continue
                if eligible >= threshold_minor[r]:
                    out_fired[b, r] = 1
                    gift_rule[gifts] = r
                    gift_points[gifts] = points[r]
                    gifts += 1
            elif effect[r] == CAP and points[r] < cap:
                cap = points[r]
        total = 0
        for g in range(gifts):
            total += gift_points[g]
        if total > cap:
            excess = total - cap
            for g in range(gifts - 1, -1, -1):
                cut = min(excess, max(0, gift_points[g]))
                gift_points[g] -= cut
                excess -= cut
            total = cap
        for g in range(gifts):
            out_by_rule[b, gift_rule[g]] += gift_points[g]
        out_points[b] = total
        out_eligible[b] = eligible


@dataclass(frozen=True)
class BatchResult:
    """Per basket: points, eligible spend, discount; per basket and rule: points, discount."""

    points: I64
    eligible: I64
    by_rule: I64
    discount: I64
    discount_by_rule: I64
    fired: I64  # [basket, rule]: 1 = a THRESHOLD_BONUS that fired


def evaluate_batch(compiled: CompiledRuleSet, batch: BasketBatch) -> BatchResult:
    n = batch.line_start.shape[0] - 1
    rules = compiled.effect.shape[0]
    out = BatchResult(np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64),
                      np.zeros((n, rules), dtype=np.int64), np.zeros(n, dtype=np.int64),
                      np.zeros((n, rules), dtype=np.int64), np.zeros((n, rules), dtype=np.int64))
    c = compiled
    _kernel(c.effect, c.rate_num, c.rate_den, c.rounding, c.multiplier_bp, c.exclusive,
            c.priority, c.threshold_minor, c.points, c.discount_bp, c.weekday_mask,
            c.minute_from, c.minute_to, c.line_condition, c.class_any, c.tier_any,
            c.rule_category, c.rule_sku, c.rule_class, c.rule_tier, batch.line_start,
            batch.line_category, batch.line_sku, batch.line_amount, batch.card_class,
            batch.tier, batch.weekday, batch.minute, batch.lines_max, MULTIPLIER_PRODUCT_MAX,
            POINTS_PER_PURCHASE_MAX, out.points, out.eligible,
            out.by_rule, out.discount, out.discount_by_rule, out.fired)
    return out


def warm_up() -> None:
    """Compile the kernel now (or load it from numba's cache), not on a customer's request."""
    from domain.rules.model import Line

    rule_set = RuleSet(rule_set_id="warm-up", version=1, scope="alliance", valid_from_us=0,
                       valid_to_us=1, rules=(Rule(rule_id="earn", effect=Effect.EARN,
                                                  rate_num=1, rate_den=100),))
    compiled = compile_rule_set(rule_set)
    basket = Basket(lines=(Line("sku", "cat", 1, 100),), card_class="X", weekday=0,
                    minute_of_day=0)
    evaluate_batch(compiled, encode_baskets(compiled, [basket]))
