"""What the rules in force give a basket: the kernel's (or the reference's) result, before
and after the rules on the card's history."""

from __future__ import annotations

import msgspec

from domain.cards.events import RuleAward


class Evaluation(msgspec.Struct, frozen=True):
    """What the rules in force give a basket (from the kernel or the reference evaluator)."""

    points: int
    eligible_minor: int
    rule_sets: tuple[str, ...]
    awards: tuple[RuleAward, ...]
    discount_minor: int = 0
    coupon_campaigns: tuple[str, ...] = ()  # of the THRESHOLD_BONUS rules that fired
