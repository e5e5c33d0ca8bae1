"""The plain-Python evaluator: the specification the numba kernel (ledger/rule_kernel.py) must
match to the point. Readable first; speed is the kernel's job.

Order of evaluation for one basket:
1. for each line, the applicable rules (conditions hold: card class, tier, weekday, time of
   day, category or SKU);
2. the DISCOUNT rule with the highest priority (then lowest position), if any, takes
   floor(amount * discount_bp / 10000) off the line; the line's amount is then what is paid;
3. an applicable EXCLUDE rule: the line earns nothing and is not eligible spend;
4. the EARN rule with the highest priority (then lowest position) gives the line's base points
   = round(amount * rate_num / rate_den) with that rule's rounding; no EARN rule: 0;
5. multipliers: the best applicable EXCLUSIVE one alone, else the product of the COMBINE ones
   (each step min(floor(product * bp / 10000), MULTIPLIER_PRODUCT_MAX), i.e. 100x at most);
   line points = floor(base * product / 10000).
   The explanation gives the base to the EARN rule and the uplift to the multipliers: the
   exclusive one all of it; COMBINE ones, in rule order, what each step added
   (floor(base * product_so_far / 10000) - the step before; negative below 1x);
6. THRESHOLD_BONUS rules whose conditions hold for the basket (category/SKU conditions: some
   line matches) add their points when eligible spend >= threshold;
7. the lowest applicable CAP, and in any case POINTS_PER_PURCHASE_MAX, caps the total; the cut
   is taken from the bonuses first, then from the lines in reverse order (positive gifts
   only), so the explanation still sums to the total.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.rules.model import (
    MULTIPLIER_BP_ONE,
    MULTIPLIER_PRODUCT_MAX,
    POINTS_PER_PURCHASE_MAX,
    Basket,
    Effect,
    Line,
    Rounding,
    Rule,
    RuleSet,
    Stacking,
)


@dataclass
class Award:
    """Points for one basket and which rule gave what (rule index -> points); discounts and
    which rule gave them (rule index -> minor units)."""

    points: int = 0
    eligible_minor: int = 0
    by_rule: dict[int, int] = field(default_factory=dict)
    discount_minor: int = 0
    discount_by_rule: dict[int, int] = field(default_factory=dict)
    fired: list[int] = field(default_factory=list)  # THRESHOLD_BONUS rules that fired

    def give(self, rule_index: int, points: int) -> None:
        if points:
            self.by_rule[rule_index] = self.by_rule.get(rule_index, 0) + points


def rounded(numerator: int, denominator: int, mode: Rounding) -> int:
    if mode == Rounding.FLOOR:
        return numerator // denominator
    if mode == Rounding.CEIL:
        return -((-numerator) // denominator)
    return (2 * numerator + denominator) // (2 * denominator)  # half up


def applies_to_basket(rule: Rule, basket: Basket) -> bool:
    if rule.card_classes and basket.card_class not in rule.card_classes:
        return False
    if rule.tiers and basket.tier not in rule.tiers:
        return False
    if rule.weekdays and basket.weekday not in rule.weekdays:
        return False
    return rule.minute_from <= basket.minute_of_day < rule.minute_to


def applies_to_line(rule: Rule, line: Line) -> bool:
    if not rule.categories and not rule.skus:
        return True
    return line.category in rule.categories or line.sku in rule.skus


def _better(rules: tuple[Rule, ...], a: int, b: int) -> bool:
    """Rule a beats rule b: higher priority, then lower position."""
    return (rules[a].priority, -a) > (rules[b].priority, -b)


def evaluate(rule_set: RuleSet, basket: Basket) -> Award:
    """Rules on the card's history (`not rule.per_basket`) are left to
    domain/purchases/stateful.py."""
    rules = rule_set.rules
    live = [i for i, rule in enumerate(rules)
            if rule.per_basket and applies_to_basket(rule, basket)]
    award = Award()
    line_gifts: list[tuple[int, int]] = []  # (rule index, points) per line, in order
    for line in basket.lines:
        here = [i for i in live if applies_to_line(rules[i], line)]
        amount = line.amount_minor
        discount = -1
        for i in here:
            if rules[i].effect == Effect.DISCOUNT and (discount < 0
                                                       or _better(rules, i, discount)):
                discount = i
        if discount >= 0:
            off = amount * rules[discount].discount_bp // MULTIPLIER_BP_ONE
            if off:
                award.discount_minor += off
                award.discount_by_rule[discount] = award.discount_by_rule.get(discount, 0) + off
            amount -= off
        if any(rules[i].effect == Effect.EXCLUDE for i in here):
            continue
        award.eligible_minor += amount
        earn = -1
        for i in here:
            if rules[i].effect == Effect.EARN and (earn < 0 or _better(rules, i, earn)):
                earn = i
        if earn < 0:
            continue
        rule = rules[earn]
        base = rounded(amount * rule.rate_num, rule.rate_den, rule.rounding)
        exclusive = -1
        combine: list[int] = []
        for i in here:
            if rules[i].effect != Effect.MULTIPLY:
                continue
            if rules[i].stacking == Stacking.EXCLUSIVE:
                if exclusive < 0 or _better(rules, i, exclusive):
                    exclusive = i
            else:
                combine.append(i)
        line_gifts.append((earn, base))
        if exclusive >= 0:
            uplift = base * rules[exclusive].multiplier_bp // MULTIPLIER_BP_ONE - base
            line_gifts.append((exclusive, uplift))
            continue
        product, before = MULTIPLIER_BP_ONE, base
        for i in combine:
            product = min(product * rules[i].multiplier_bp // MULTIPLIER_BP_ONE,
                          MULTIPLIER_PRODUCT_MAX)
            after = base * product // MULTIPLIER_BP_ONE
            line_gifts.append((i, after - before))
            before = after
    bonuses: list[tuple[int, int]] = []
    cap = POINTS_PER_PURCHASE_MAX
    for i in live:
        rule = rules[i]
        if rule.effect == Effect.THRESHOLD_BONUS:
            if (rule.categories or rule.skus) and not any(
                    applies_to_line(rule, line) for line in basket.lines):
                continue
            if award.eligible_minor >= rule.threshold_minor:
                bonuses.append((i, rule.points))
                award.fired.append(i)
        elif rule.effect == Effect.CAP and rule.points < cap:
            cap = rule.points
    total = sum(p for _, p in line_gifts) + sum(p for _, p in bonuses)
    if total > cap:
        excess = total - cap
        gifts = line_gifts + bonuses
        for k in range(len(gifts) - 1, -1, -1):  # bonuses first, then lines from the end
            cut = min(excess, max(0, gifts[k][1]))
            gifts[k] = (gifts[k][0], gifts[k][1] - cut)
            excess -= cut
        line_gifts, bonuses = gifts[:len(line_gifts)], gifts[len(line_gifts):]
        total = cap
    for index, points in line_gifts + bonuses:
        award.give(index, points)
    award.points = total
    return award
