"""Rules a domain expert states, as tables: who may write what in the registry, where a
purchase happens, who approves a special discount, which terminal a Batch operation acts for,
when a coupon may be given and which campaigns a purchase hands out."""

from __future__ import annotations

from typing import Any

import pytest

from domain import access
from domain.common import InvalidInput, Principal, Result, Role
from domain.coupons import decide as coupons
from domain.coupons.model import Campaign, DefineCouponCampaign
from domain.points.program import DefineProgram
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Rule, RuleSet

ADMIN = Principal(Role.ADMIN)
P1 = Principal(Role.PARTNER_MANAGER, "P1")
P2 = Principal(Role.PARTNER_MANAGER, "P2")
S1 = Principal(Role.STORE_MANAGER, "P1", "S1")
T1 = Principal(Role.TERMINAL, "P1", "S1", "T1")
GW = Principal(Role.GATEWAY, "P1", "S1")
AUDITOR = Principal(Role.AUDITOR)
STORES = {"S1": "P1", "S2": "P1", "A1": "P2"}
CREDENTIALS = {"c-t1": T1, "c-p2": P2}


def campaign(**changes: Any) -> Campaign:
    values: dict[str, Any] = dict(campaign_id="C", owner="P1", currency="USD", kind=1,
                                  value_minor=500, percent_bp=0, min_spend_minor=0,
                                  valid_from_us=0, valid_to_us=1_000, stores=(), categories=(),
                                  partial_use=False, restore_on_return=False, funded_by="P1")
    values.update(changes)
    return Campaign(**values)


def rules(scope: str) -> PublishRuleSet:
    return PublishRuleSet(RuleSet(rule_set_id="r", version=1, scope=scope, valid_from_us=0,
                                  valid_to_us=1, rules=(Rule(rule_id="e", effect=Effect.EARN,
                                                             rate_num=1),)))


REGISTRY_WRITES = [
    (ADMIN, rc.RegisterPartner("P3", "x", "USD"), True),
    (P1, rc.RegisterPartner("P3", "x", "USD"), False),
    (P1, rc.RegisterStore("P1", "S9", "x", "UTC"), True),
    (P1, rc.RegisterStore("P2", "S9", "x", "UTC"), False),
    (P1, rc.RegisterTerminal("S2", "T9"), True),
    (P1, rc.RegisterTerminal("A1", "T9"), False),
    (S1, rc.RegisterTerminal("S1", "T9"), False),
    (P1, rc.DefineCardClass("VIP", 10, 3600), False),
    (P1, DefineProgram("P1", "USD", 1, 1, 1, "UTC", 0, (), 1), True),
    (P1, DefineProgram("P2", "USD", 1, 1, 1, "UTC", 0, (), 1), False),
    (P1, rules("store:S2"), True),
    (P1, rules("store:A1"), False),
    (S1, rules("store:S1"), True),
    (S1, rules("partner:P1"), False),
    (S1, DefineCouponCampaign(campaign()), False),
    (P1, DefineCouponCampaign(campaign()), True),
    (P1, rc.RevokeCredential("c-t1"), True),
    (P1, rc.RevokeCredential("c-p2"), False),
    (AUDITOR, rc.RevokeCredential("c-t1"), False),
]


@pytest.mark.parametrize(("who", "command", "allowed"), REGISTRY_WRITES,
                         ids=[f"{w.role.name}-{type(c).__name__}-{a}"
                              for w, c, a in REGISTRY_WRITES])
def test_registry_writes(who: Principal, command: Any, allowed: bool) -> None:
    denial = access.registry_write(who, command, STORES.get, CREDENTIALS.get)
    assert (denial is None) == allowed, denial


@pytest.mark.parametrize("command", [rc.RegisterTerminal("S9", "T9"),
                                     rc.RevokeCredential("c-unknown")])
def test_registry_writes_naming_unknown_things_are_invalid(command: Any) -> None:
    with pytest.raises(InvalidInput):
        access.registry_write(ADMIN, command, STORES.get, CREDENTIALS.get)


PURCHASE_STORES = [
    (T1, False, "", ("S1", None)),
    (T1, True, "S1", ("S1", None)),
    (T1, True, "S2", ("", "denied")),
    (S1, True, "", ("S1", None)),
    (P1, True, "S2", ("S2", None)),
    (S1, False, "", ("", "denied")),  # a manager records no purchase: a till does
]


@pytest.mark.parametrize(("who", "simulate", "named", "expected"), PURCHASE_STORES)
def test_where_a_purchase_happens(who: Principal, simulate: bool, named: str,
                                  expected: tuple[str, str | None]) -> None:
    store, denial = access.purchase_store(who, simulate, named)
    assert (store, "denied" if denial else None) == expected


def test_a_simulation_by_someone_without_a_store_must_name_one() -> None:
    with pytest.raises(InvalidInput, match="store_id"):
        access.purchase_store(P1, True, "")


@pytest.mark.parametrize(("approver", "allowed"), [
    (S1, True), (Principal(Role.STORE_MANAGER, "P1", "S2"), False), (P1, False), (T1, False),
    (None, False)])
def test_who_approves_a_special_discount_at_s1(approver: Principal | None,
                                               allowed: bool) -> None:
    assert (access.approve_override(approver, "S1") is None) == allowed


TERMINALS = {"T1": "S1", "T3": "S2"}


@pytest.mark.parametrize(("who", "named", "expected"), [
    (T1, "", ("T1", None)), (T1, "T1", ("T1", None)), (T1, "T3", ("", "denied")),
    (GW, "T1", ("T1", None)), (GW, "T3", ("", "denied")), (GW, "T9", ("", "denied")),
    (ADMIN, "T1", ("", None))])
def test_the_terminal_a_batch_operation_acts_for(who: Principal, named: str,
                                                 expected: tuple[str, str | None]) -> None:
    terminal, denial = access.acting_terminal(who, named, TERMINALS.get)
    assert (terminal, "denied" if denial else None) == expected


def test_a_gateway_must_name_a_terminal() -> None:
    with pytest.raises(InvalidInput, match="terminal_id"):
        access.acting_terminal(GW, "", TERMINALS.get)


@pytest.mark.parametrize(("status", "currency", "now_us", "expected"), [
    (2, "USD", 10, None), (1, "USD", 10, None), (3, "USD", 10, Result.DECLINED_CARD_NOT_ACTIVE),
    (4, "USD", 10, Result.DECLINED_CARD_NOT_ACTIVE),
    (2, "EUR", 10, Result.DECLINED_CURRENCY_MISMATCH),
    (2, "USD", 1_000, Result.DECLINED_INVALID_STATE)])
def test_when_a_coupon_may_be_given(status: int, currency: str, now_us: int,
                                    expected: Result | None) -> None:
    assert coupons.issue_decline(status, currency, campaign(), now_us) == expected


def test_which_campaigns_a_purchase_hands_out() -> None:
    known = {f"C{i}": campaign(campaign_id=f"C{i}") for i in range(12)}
    known["EUR"] = campaign(campaign_id="EUR", currency="EUR")
    known["OVER"] = campaign(campaign_id="OVER", valid_to_us=5)
    fired = ("EUR", "OVER", "NONE", *(f"C{i}" for i in range(12)))
    found = coupons.campaigns_to_issue(fired, known, "USD", 10)
    assert [c.campaign_id for c in found] == [f"C{i}" for i in range(10)]
    assert coupons.COUPONS_ISSUED_PER_PURCHASE_MAX == 10
