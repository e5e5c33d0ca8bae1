"""Rule-set commands, and which published version is in force at a moment."""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from domain.common import InvalidInput
from domain.rules.model import RULE_ID_PATTERN, RuleSet, check_scope, validate


class PublishRuleSet(msgspec.Struct, frozen=True, array_like=True, tag="PublishRuleSet"):
    rule_set: RuleSet

    def validate(self) -> None:
        validate(self.rule_set)


class GetRuleSet(msgspec.Struct, frozen=True, array_like=True, tag="GetRuleSet"):
    rule_set_id: str
    version: int  # 0 = the latest

    def validate(self) -> None:
        if not RULE_ID_PATTERN.fullmatch(self.rule_set_id):
            raise InvalidInput("rule_set_id", "must be 1..48 of [A-Za-z0-9_.-]")


class ListRuleSets(msgspec.Struct, frozen=True, array_like=True, tag="ListRuleSets"):
    scope: str  # "" = every scope the caller may see

    def validate(self) -> None:
        if self.scope:
            check_scope(self.scope, "scope")


def in_force(versions: Sequence[RuleSet], at_us: int) -> RuleSet | None:
    """The version in force at `at_us`: the newest one whose window has begun (a new version
    supersedes the older ones from its valid_from), if its window has not ended."""
    for rule_set in reversed(versions):
        if rule_set.valid_from_us <= at_us:
            return rule_set if at_us < rule_set.valid_to_us else None
    return None
