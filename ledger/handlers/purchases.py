"""Purchases, their simulation and returns: the store and its wall clock, the basket evaluated
by the rule kernel (every purchase of a batch prepared together, one kernel call per
combination of rule sets in force), coupons, points and stored value."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from domain import access
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import APPROVALS, InvalidInput, Result, shown
from domain.coupons import decide as coupons
from domain.purchases import commands as pc
from domain.purchases import decide as purchases
from domain.registry import decide as registry
from domain.rules.model import Basket, RuleSet
from ledger import limits
from ledger.codec import CouponUseView, Outcome, PurchaseView
from ledger.handlers.context import Ctx, view
from ledger.handlers.coupons import coupon_ids, coupon_view
from ledger.pricing import key_of
from ledger.refusals import Denied, check
from ledger.state import State
from ledger.work import Request, Work

Prepared = tuple[tuple[str, ...], Basket, purchases.Evaluation]


def store_of(registry_state: registry.RegistryState, principal: Any, command: Any) -> Any:
    """The store where a purchase happens (domain/access.py says which), within scope."""
    simulate = isinstance(command, pc.SimulatePurchase)
    store_id, denial = access.purchase_store(principal, simulate,
                                             command.store_id if simulate else "")
    check(denial)
    store = registry_state.stores.get(store_id)
    if store is None:
        raise InvalidInput("store_id", f"unknown store {shown(store_id)}")
    check(access.simulate_purchase(principal, store.store_id, store.partner_id))
    return store


def local_time(purchase: pc.Purchase, store: Any, now_us: int) -> dt.datetime:
    """The store's wall clock: the till's, or now in the store's timezone."""
    if purchase.local_time:
        return pc.local_moment(purchase.local_time)
    return dt.datetime.fromtimestamp(now_us / 1e6, ZoneInfo(store.timezone))


def basket_of(purchase: pc.Purchase, state: cards.CardState, local: dt.datetime) -> Basket:
    return Basket(lines=purchase.lines, card_class=state.card_class, tier=state.tier,
                  weekday=local.weekday(), minute_of_day=local.hour * 60 + local.minute)


def _purchase_of(command: Any) -> pc.Purchase:
    return command.purchase if isinstance(command, pc.SimulatePurchase) else command


def prepare(batch: list[Request], work: Work, state: State, rule_book: Any,
            now_us: int) -> None:
    """Evaluate the baskets of every purchase in the batch with one kernel call per
    combination of rule sets in force; the decisions that follow pick the results up (one
    whose inputs changed meanwhile evaluates again). A purchase that will be refused is
    skipped: its decision answers with the error."""
    items: list[tuple[int, tuple[RuleSet, ...], Basket]] = []
    for request in batch:
        command = request.command
        if not isinstance(command, pc.Purchase | pc.SimulatePurchase):
            continue
        credential = state.registry.credentials.get(request.credential_id)
        if credential is None:
            continue
        try:
            store = store_of(state.registry, credential.principal, command)
        except (Denied, InvalidInput):
            continue
        purchase = _purchase_of(command)
        card = state.card(purchase.card_number)
        if card is None:
            continue
        rule_sets = state.registry.rule_sets_in_force(store.store_id, now_us)
        basket = basket_of(purchase, card, local_time(purchase, store, now_us))
        items.append((id(request), rule_sets, basket))
    if not items:
        return
    evaluations = rule_book.evaluate([(sets, basket) for _, sets, basket in items])
    for (key, sets, basket), evaluation in zip(items, evaluations, strict=True):
        work.prepared[key] = (key_of(sets), basket, evaluation)


def _evaluation(ctx: Ctx, rule_sets: tuple[RuleSet, ...],
                basket: Basket) -> purchases.Evaluation:
    known: Prepared | None = ctx.work.prepared.pop(id(ctx.request), None)
    if known is not None and known[0] == key_of(rule_sets) and known[1] == basket:
        return known[2]
    return ctx.services.rule_book.evaluate([(rule_sets, basket)])[0]


def _override(ctx: Ctx, approver_id: str, store: Any) -> None:
    credential = ctx.registry.credentials.get(approver_id)
    approver = credential.principal if credential is not None and not credential.revoked \
        else None
    check(access.approve_override(approver, store.store_id))


def purchase(ctx: Ctx) -> Outcome:
    command: pc.Purchase | pc.SimulatePurchase = ctx.command
    tag = type(command).__struct_config__.tag
    simulate = isinstance(command, pc.SimulatePurchase)
    bought = _purchase_of(command)
    store = store_of(ctx.registry, ctx.principal, command)
    state = ctx.card(bought.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), tag)
    now_us = ctx.now_us
    if simulate:  # what expiry would write, applied to a copy: nothing is written
        state = cards.fold(list(ctx.expiries(state, now_us)), state.copy()) or state
    else:
        state = ctx.expire_all(state)
    if bought.override_discount_minor:
        _override(ctx, bought.override_approver, store)
    rule_sets = ctx.registry.rule_sets_in_force(store.store_id, now_us)
    local = local_time(bought, store, now_us)
    basket = basket_of(bought, state, local)
    evaluation = _evaluation(ctx, rule_sets, basket)
    program = ctx.registry.program_of(state.issuing_partner_id)
    to_issue = coupons.campaigns_to_issue(
        evaluation.coupon_campaigns, ctx.registry.campaigns, state.currency, now_us,
    ) if ctx.services.coupon_key is not None else ()
    decision = purchases.decide_purchase(state, bought, purchases.PurchaseContext(
        ctx.meta(), now_us, ctx.acquirer_entity(store.store_id, store.partner_id), program,
        evaluation, basket.weekday, basket.minute_of_day,
        coupon_ids(ctx, state, bought.coupon_codes), to_issue, rule_sets,
        local.date().isoformat(), ctx.issuer_entity(state),
        ctx.registry.programs.get(bought.redeem_program) if bought.redeem_program else None,
        ctx.registry.agreements))
    event = decision.event
    if event is not None and (
            ctx.over_cap(state, event.acquirer_partner_id, event.sv_charged_minor)
            or ctx.over_cap(state, event.acquirer_partner_id,
                            event.points_redeemed_value_minor,
                            event.redeemed_owner or event.points_owner)):
        decision = purchases.PurchaseDecision(
            Result.DECLINED_NET_DEBIT_CAP, "the card's issuer (or its points program's owner) "
            "is over its net debit cap: pay by other means or at its own stores")
        event = None
    if event is None:
        return Outcome(int(decision.result), tag, state.card_number,
                       card=view(state, now_us), purchase=PurchaseView(
                           total_minor=bought.total_minor,
                           rule_sets=evaluation.rule_sets, decline_reason=decision.reason))
    after = cards.evolve(state.copy(), event) if simulate else ctx.emit(state, (event,))
    lot = event.lot
    return Outcome(int(decision.result), tag, after.card_number,
                   approved_amount_minor=event.sv_charged_minor,
                   card=view(after, now_us), purchase=PurchaseView(
                       event.purchase_id if not simulate else "", event.total_minor,
                       event.discount_minor, event.sv_charged_minor, event.points_redeemed,
                       event.points_redeemed_value_minor, event.other_tender_minor,
                       (lot.amount if lot else 0) + event.debt_settled,
                       lot.amount if lot and lot.vests_at_us > now_us else 0,
                       lot.vests_at_us if lot else 0, lot.expires_at_us if lot else 0,
                       event.rule_sets, event.awards, tier=event.tier_after,
                       coupons_used=_uses(event.coupons_used),
                       coupons_issued=tuple(
                           coupon_view(ctx, after.card_number, c, with_code=not simulate)
                           for c in event.coupons_issued),
                       coupon_discount_minor=sum(u.amount_minor for u in event.coupons_used),
                       stamps=event.stamps,
                       override_discount_minor=event.override_discount_minor,
                       override_approver=event.override_approver,
                       debt_settled=event.debt_settled,
                       redeemed_program=(event.redeemed_owner or event.points_owner)
                       if event.points_redeemed else ""))


def take_return(ctx: Ctx) -> Outcome:
    command: pc.Return = ctx.command
    state = ctx.card(command.card_number)
    for _ in range(limits.REPLACEMENT_HOPS_MAX):  # a replacement card took it over
        if state is None or command.purchase_id in state.purchases or not state.replaced_by:
            break
        state = ctx.card(state.replaced_by)
    record = state.purchases.get(command.purchase_id) if state is not None else None
    if state is None or record is None:
        late = ctx.let_go(command.card_number, command.purchase_id, purchases=True)
        return Outcome(int(Result.DECLINED_RETURN_WINDOW_CLOSED if late
                           else Result.DECLINED_PURCHASE_NOT_FOUND), "Return")
    bought_at = ctx.registry.stores.get(record.store_id)  # its partner, if its own entity
    check(access.take_return(ctx.principal, bought_at.partner_id if bought_at is not None
                             else record.acquirer_partner_id))
    state = ctx.expire_all(state)
    decision = purchases.decide_return(state, command, ctx.meta(), ctx.now_us,
                                       ctx.registry.program_of(state.issuing_partner_id),
                                       ctx.issuer_entity(state))
    if decision.result not in APPROVALS:
        return Outcome(int(decision.result), "Return", state.card_number,
                       card=view(state, ctx.now_us))
    event = decision.events[0]
    assert isinstance(event, ev.PurchaseReturned)
    state = ctx.emit(state, decision.events)
    return Outcome(int(decision.result), "Return", state.card_number,
                   approved_amount_minor=event.sv_refunded_minor, card=view(state, ctx.now_us),
                   purchase=PurchaseView(
                       command.purchase_id, sv_refunded_minor=event.sv_refunded_minor,
                       points_restored=sum(p for _, p in event.points_restored),
                       points_clawed=sum(p for _, p in event.points_clawed),
                       points_written_off=event.points_written_off,
                       points_debt_added=event.points_debt_added,
                       coupons_used=_uses(event.coupons_restored),
                       redeemed_program=(record.redeemed_owner or record.points_owner)
                       if event.points_restored else ""))


def _uses(uses: tuple[coupons.CouponUse, ...]) -> tuple[CouponUseView, ...]:
    return tuple(CouponUseView(u.coupon_id, u.amount_minor, u.used_up) for u in uses)


HANDLERS = {pc.Purchase: purchase, pc.SimulatePurchase: purchase, pc.Return: take_return}
PREPARE = (prepare,)
CARDS = {pc.SimulatePurchase: lambda c: c.purchase.card_number}
