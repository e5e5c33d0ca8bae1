"""Rules that depend on the card's history, applied after the kernel's evaluation of the basket:
stamps ("buy N, the next one free", counted per card across purchases), first-purchase bonuses
and caps per card per period. Pure: the card's state, the rules in force and the basket come
in; the adjusted evaluation and the new stamp counts come out.

- STAMP (`stamps_needed` = N, category/SKU conditions): each matching unit, in line order,
  either earns a stamp or, when the card already holds N, is free (its unit price comes off)
  and the count starts again. Counts are kept per "<rule set id>/<rule id>", so they survive new
  versions of the rule set. A return takes back the stamps its units earned.
- FIRST_PURCHASE_BONUS: `points` on the card's first purchase (none recorded before).
- CAP with `cap_period` DAY, WEEK or MONTH (in the store's calendar: the purchase's local
  date): the points of the rule sets in force are capped at `points` per card per period; the
  cut shows in the explanation as a negative award of the cap rule.
"""

from __future__ import annotations

import msgspec

from domain.cards.decide import CardState
from domain.cards.events import RuleAward, StampProgress
from domain.cards.records import period_of
from domain.purchases.evaluation import Evaluation
from domain.rules.model import Basket, Effect, Rule, RuleSet
from domain.rules.reference import applies_to_basket, applies_to_line


def stamp_key(rule_set: RuleSet, rule: Rule) -> str:
    return f"{rule_set.rule_set_id}/{rule.rule_id}"


def _stateful(rule_sets: tuple[RuleSet, ...], basket: Basket) -> list[tuple[str, RuleSet, Rule]]:
    return [(f"{s.rule_set_id}@{s.version}", s, r) for s in rule_sets for r in s.rules
            if not r.per_basket and applies_to_basket(r, basket)]


def apply(state: CardState, rule_sets: tuple[RuleSet, ...], basket: Basket, local_date: str,
          evaluation: Evaluation, due_minor: int) -> tuple[Evaluation, tuple[StampProgress, ...]]:
    """The evaluation with the card's history applied, and the stamp cards' progress.
    `due_minor` bounds what stamps can take off (the basket after member discounts)."""
    rules = _stateful(rule_sets, basket)
    if not rules:
        return evaluation, ()
    awards = list(evaluation.awards)
    points = evaluation.points
    discount = 0
    stamps: list[StampProgress] = []
    for ref, rule_set, rule in rules:
        if rule.effect == Effect.STAMP:
            progress = _stamp(state, stamp_key(rule_set, rule), rule, basket,
                              due_minor - discount)
            if progress is not None:
                stamps.append(progress)
                discount += progress.discount_minor
                if progress.discount_minor:
                    awards.append(RuleAward(ref, rule.rule_id, 0, progress.discount_minor))
    if not state.history.purchases_made:
        for ref, _, rule in rules:
            if rule.effect == Effect.FIRST_PURCHASE_BONUS and (
                    not (rule.categories or rule.skus)
                    or any(applies_to_line(rule, line) for line in basket.lines)):
                points += rule.points
                awards.append(RuleAward(ref, rule.rule_id, rule.points))
    for ref, _, rule in rules:
        if rule.effect == Effect.CAP:
            period = period_of(local_date, rule.cap_period)
            already = state.history.period_points.get(f"{rule.cap_period}|{period}", 0)
            allowed = max(0, rule.points - already)
            if points > allowed:
                awards.append(RuleAward(ref, rule.rule_id, allowed - points))
                points = allowed
    return msgspec.structs.replace(
        evaluation, points=points, awards=tuple(awards),
        discount_minor=evaluation.discount_minor + discount), tuple(stamps)


def stamp_line(count: int, quantity: int, needed: int, price_minor: int,
               room_minor: int) -> tuple[int, int]:
    """(stamps held after, units free) for `quantity` units of one line, unit by unit: a unit
    is free when `needed` stamps are held and its price still fits in `room_minor` (then the
    stamps start again from 0); otherwise it earns a stamp. In closed form, so a line of a
    million units costs what a line of one does on the writer thread."""
    earning = min(quantity, max(0, needed - count))  # units that earn before a free one is due
    count += earning
    rest = quantity - earning
    if rest == 0:
        return count, 0
    # Free units fall on every (needed + 1)th unit from here, as long as the price fits.
    due = -(-rest // (needed + 1))
    fits = due if price_minor == 0 else room_minor // price_minor
    free = 0 if room_minor < 0 else min(due, fits)
    if free == 0:
        return count + rest, 0
    return rest - 1 - (free - 1) * (needed + 1), free


def _stamp(state: CardState, key: str, rule: Rule, basket: Basket,
           room_minor: int) -> StampProgress | None:
    before = count = state.stamps.get(key, 0)
    free = taken = 0
    stamped: list[tuple[int, int]] = []
    for index, line in enumerate(basket.lines):
        if not applies_to_line(rule, line):
            continue
        count, line_free = stamp_line(count, line.quantity, rule.stamps_needed,
                                      line.unit_price_minor, room_minor - taken)
        free += line_free
        taken += line_free * line.unit_price_minor
        if line.quantity - line_free:
            stamped.append((index, line.quantity - line_free))
    if not stamped and not free:
        return None
    return StampProgress(key, before, count, rule.stamps_needed, free, taken, tuple(stamped))
