"""The periodic job's step for one card (the ledger's own request, never from the wire):
lapsed holds, expired points and coupons recorded, then the tier review."""

from __future__ import annotations

from domain.cards import events as ev
from domain.common import InvalidInput, Result
from domain.coupons import decide as coupons
from domain.purchases import commands as pc
from domain.purchases import decide as purchases
from ledger.codec import MaintenanceView, Outcome
from ledger.handlers.context import Ctx, system_meta, view
from ledger.refusals import Denied


def maintain(ctx: Ctx) -> Outcome:
    command: pc.MaintainCard = ctx.command
    if not ctx.request.system:
        raise Denied("card maintenance (expiry, tier review) is the ledger's own job")
    if command.as_of_us > ctx.now_us:
        raise InvalidInput("as_of", "must not be in the future: points are never expired "
                           "early")
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "MaintainCard")
    state = ctx.expire_holds(state)  # holds whose time is up, recorded too
    meta = system_meta(ctx.now_us)
    tier_before = state.tier
    expired = purchases.expired_points(state, command.as_of_us, meta, ctx.own_program(state))
    lapsed = tuple(ev.CouponExpired(meta, coupon_id, remaining) for coupon_id, remaining
                   in coupons.expired_coupons(state.coupons, command.as_of_us))
    program = ctx.registry.program_of(state.issuing_partner_id)
    period_end = program.period_end_at_or_before(command.as_of_us) if program else 0
    events = expired + lapsed + purchases.review_tier(state, program, period_end, meta)
    if events:
        state = ctx.emit(state, events)
    return Outcome(int(Result.APPROVED), "MaintainCard", state.card_number,
                   card=view(state, ctx.now_us), maintenance=MaintenanceView(
                       sum(e.amount for e in expired), tier_before, state.tier, len(lapsed)))


HANDLERS = {pc.MaintainCard: maintain}
