"""The rules in force, compiled once and evaluated in batches by the numba kernel.

Several rule sets may be in force at a store (alliance, partner, store): they are evaluated as
one rule set, their rules in that order, so stacking, priorities and caps act across them. A
combination is compiled the first time it is needed and kept (a handful exist at a time); the
writer evaluates every basket of a batch that shares a combination in one kernel call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from domain.cards.events import RuleAward
from domain.purchases.decide import Evaluation
from domain.rules.model import Basket, RuleSet
from ledger import limits
from ledger.rule_kernel import CompiledRuleSet, compile_rule_set, encode_baskets, evaluate_batch

Key = tuple[str, ...]  # the "<id>@<version>" of each rule set in force, in order

NOTHING = Evaluation(0, 0, (), ())


def key_of(rule_sets: Sequence[RuleSet]) -> Key:
    return tuple(f"{r.rule_set_id}@{r.version}" for r in rule_sets)


@dataclass(frozen=True)
class _Combined:
    compiled: CompiledRuleSet
    origin: tuple[tuple[str, str], ...]  # per rule of the combination: (rule set ref, rule id)
    campaigns: tuple[str, ...]  # per rule: the coupon campaign it issues ("" = none)


class RuleBook:
    def __init__(self, cache_max: int = limits.RULE_COMBINATIONS_MAX) -> None:
        self._combined: OrderedDict[Key, _Combined] = OrderedDict()
        self._cache_max = cache_max
        self.kernel_calls = 0  # statistics: how well purchases share a kernel call

    def _get(self, key: Key, rule_sets: Sequence[RuleSet]) -> _Combined:
        combined = self._combined.get(key)
        if combined is None:
            rules = tuple(rule for rule_set in rule_sets for rule in rule_set.rules)
            origin = tuple((ref, rule.rule_id) for ref, rule_set in zip(key, rule_sets,
                                                                        strict=True)
                           for rule in rule_set.rules)
            merged = RuleSet(rule_set_id="in-force", version=1, scope="alliance",
                             valid_from_us=0, valid_to_us=1, rules=rules)
            combined = self._combined[key] = _Combined(
                compile_rule_set(merged), origin, tuple(r.coupon_campaign for r in rules))
            while len(self._combined) > self._cache_max:
                self._combined.popitem(last=False)
        self._combined.move_to_end(key)
        return combined

    def evaluate(self, items: Sequence[tuple[Sequence[RuleSet], Basket]]) -> list[Evaluation]:
        """The evaluation of every (rule sets in force, basket), one kernel call per
        combination of rule sets."""
        results: list[Evaluation] = [NOTHING] * len(items)
        groups: dict[Key, list[int]] = {}
        sets: dict[Key, Sequence[RuleSet]] = {}
        for index, (rule_sets, _) in enumerate(items):
            if rule_sets:
                key = key_of(rule_sets)
                groups.setdefault(key, []).append(index)
                sets[key] = rule_sets
        for key, indexes in groups.items():
            combined = self._get(key, sets[key])
            batch = encode_baskets(combined.compiled, [items[i][1] for i in indexes])
            out = evaluate_batch(combined.compiled, batch)
            self.kernel_calls += 1
            for row, index in enumerate(indexes):
                given = (out.by_rule[row] != 0) | (out.discount_by_rule[row] != 0)
                awards = tuple(RuleAward(*combined.origin[r], int(out.by_rule[row, r]),
                                         int(out.discount_by_rule[row, r]))
                               for r in given.nonzero()[0])
                campaigns = tuple(combined.campaigns[r] for r in out.fired[row].nonzero()[0]
                                  if combined.campaigns[r])
                results[index] = Evaluation(int(out.points[row]), int(out.eligible[row]), key,
                                            awards, int(out.discount[row]), campaigns)
        return results
