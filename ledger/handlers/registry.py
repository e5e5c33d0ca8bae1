"""The registry: partners, stores, terminals, credentials, card classes, points programs,
rule-set versions and coupon campaigns (one stream, held whole in memory); rule-set reads."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable

from domain import access
from domain.common import APPROVALS, Principal, Result, shown
from domain.coupons.model import DefineCouponCampaign
from domain.exchange.rates import PublishExchangeRate
from domain.points.program import DefineProgram
from domain.registry import commands as rc
from domain.registry import decide as registry
from domain.registry.events import RegistryEvent, SettlementPeriodClosed
from domain.rules.commands import GetRuleSet, ListRuleSets, PublishRuleSet
from domain.settlement.agreements import PublishAgreement, RegisterStoreEntity
from domain.settlement.periods import CloseSettlementPeriod
from ledger import limits
from ledger.codec import REGISTRY_ID, Outcome
from ledger.handlers.context import Ctx
from ledger.refusals import NotFound, check
from ledger.work import Work


def new_token() -> tuple[str, str, bytes]:
    """A credential id, its bearer token (shown once) and the token's SHA-256 (stored)."""
    credential_id = "c" + secrets.token_hex(8)
    token = f"llk_{credential_id}_{secrets.token_urlsafe(32)}"
    return credential_id, token, hashlib.sha256(token.encode()).digest()


def emit(ctx: Ctx, event: RegistryEvent) -> None:
    emit_to(ctx.state.registry, ctx.work, event)


def emit_to(state: registry.RegistryState, work: Work, event: RegistryEvent) -> None:
    registry.evolve(state, event)
    work.registry_touched = True
    work.append(REGISTRY_ID, state.version, event)


def _store_partner(ctx: Ctx) -> Callable[[str], str | None]:
    stores = ctx.registry.stores

    def partner_of(store_id: str) -> str | None:
        store = stores.get(store_id)
        return store.partner_id if store is not None else None
    return partner_of


def _credential_principal(ctx: Ctx, credential_id: str) -> Principal | None:
    credential = ctx.registry.credentials.get(credential_id)
    return credential.principal if credential is not None else None


def write(ctx: Ctx) -> Outcome:
    command = ctx.command
    tag = type(command).__struct_config__.tag
    check(access.registry_write(ctx.principal, command, _store_partner(ctx),
                                lambda c: _credential_principal(ctx, c)))
    credential_id, token, digest = ("", "", b"")
    if isinstance(command, rc.CreateCredential):
        credential_id, token, digest = new_token()
    decision = registry.decide(ctx.registry, command, ctx.meta(), credential_id, digest)
    if decision.result not in APPROVALS:
        return Outcome(int(decision.result), tag)
    period_id = 0
    for event in decision.events:
        emit(ctx, event)
        if isinstance(event, SettlementPeriodClosed):
            period_id = event.period_id
            ctx.state.period_closed(ctx.work)
    return Outcome(int(decision.result), tag, credential_id=credential_id, token=token,
                   period_id=period_id)


def read_rules(ctx: Ctx) -> Outcome:
    command: GetRuleSet | ListRuleSets = ctx.command
    tag = type(command).__struct_config__.tag
    partner_of = _store_partner(ctx)

    def allowed(scope: str) -> str | None:
        return access.read_rules(ctx.principal, scope,
                                 access.scope_store_partner(scope, partner_of))

    if isinstance(command, GetRuleSet):
        versions = ctx.registry.rule_sets.get(command.rule_set_id)
        if not versions:
            raise NotFound(f"no rule set {shown(command.rule_set_id)}")
        if command.version > len(versions):
            raise NotFound(f"rule set {shown(command.rule_set_id)} has {len(versions)} "
                           "versions")
        check(allowed(versions[0].scope))
        return Outcome(int(Result.APPROVED), tag,
                       rule_sets=(versions[command.version - 1 if command.version else -1],))
    found = [versions[-1] for versions in ctx.registry.rule_sets.values()
             if command.scope in ("", versions[0].scope) and allowed(versions[0].scope) is None]
    found.sort(key=lambda r: (r.scope, r.rule_set_id))
    return Outcome(int(Result.APPROVED), tag, rule_sets=tuple(found[:limits.RULE_SETS_PAGE_MAX]))


HANDLERS = {
    rc.RegisterPartner: write, rc.RegisterStore: write, rc.RegisterTerminal: write,
    rc.CreateCredential: write, rc.RevokeCredential: write, rc.DefineCardClass: write,
    DefineProgram: write, PublishRuleSet: write, DefineCouponCampaign: write,
    CloseSettlementPeriod: write, PublishAgreement: write, RegisterStoreEntity: write,
    PublishExchangeRate: write,
    GetRuleSet: read_rules, ListRuleSets: read_rules,
}
