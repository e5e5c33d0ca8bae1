"""E-coupons given by hand and listed; the codes (an HMAC of the card and coupon under the
server's coupon key) are made and checked here, never stored."""

from __future__ import annotations

from domain import access
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.common import InvalidInput, Result, shown
from domain.coupons import decide as coupons
from domain.coupons.model import Coupon, IssueCoupon, ListCoupons, code_of, coupon_of_code
from ledger.codec import CouponView, Outcome
from ledger.handlers.context import Ctx, view
from ledger.refusals import Unconfigured, check

NO_KEY = "coupons are not configured on this server (LEDGER_COUPON_KEY)"


def coupon_view(ctx: Ctx, card_number: str, coupon: Coupon, with_code: bool) -> CouponView:
    t = coupon.terms
    key = ctx.services.coupon_key
    code = code_of(key, card_number, coupon.coupon_id) if with_code and key is not None else ""
    return CouponView(coupon.coupon_id, code, t.campaign_id, t.kind, t.value_minor,
                      t.percent_bp, coupon.remaining_minor, coupon.status, t.valid_from_us,
                      t.valid_to_us, t.min_spend_minor, t.funded_by)


def coupon_ids(ctx: Ctx, state: cards.CardState, codes: tuple[str, ...]) -> tuple[str, ...]:
    """The coupons the codes name, checked against this card's number or, for coupons a
    replacement took over, the number they were issued to."""
    if not codes:
        return ()
    key = ctx.services.coupon_key
    if key is None:
        raise Unconfigured(NO_KEY)
    found = []
    for index, code in enumerate(codes):
        field = f"coupon_codes[{index}]"
        for number in (*state.previous_numbers, state.card_number):
            try:
                found.append(coupon_of_code(key, number, code, field))
                break
            except InvalidInput:
                continue
        else:
            raise InvalidInput(field, "is not a coupon code of this card")
    return tuple(found)


def issue(ctx: Ctx) -> Outcome:
    command: IssueCoupon = ctx.command
    campaign = ctx.registry.campaigns.get(command.campaign_id)
    if campaign is None:
        raise InvalidInput("campaign_id", f"unknown campaign {shown(command.campaign_id)}")
    check(access.manage_coupons(ctx.principal, campaign.owner))
    if ctx.services.coupon_key is None:
        raise Unconfigured(NO_KEY)
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "IssueCoupon")
    decline = coupons.issue_decline(state.status, state.currency, campaign, ctx.now_us)
    if decline is not None:
        return Outcome(int(decline), "IssueCoupon")
    state = ctx.expire_holds(state)
    coupon = coupons.new_coupon(campaign, state.coupon_id(0), ctx.now_us)
    state = ctx.emit(state, (ev.CouponIssued(ctx.meta(), coupon),))
    return Outcome(int(Result.APPROVED), "IssueCoupon", state.card_number,
                   card=view(state, ctx.now_us),
                   coupons=(coupon_view(ctx, state.card_number, coupon, with_code=True),))


def list_coupons(ctx: Ctx) -> Outcome:
    command: ListCoupons = ctx.command
    state = ctx.card(command.card_number)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ListCoupons")
    check(access.get_balance(ctx.principal, state.issuing_partner_id))
    return Outcome(int(Result.APPROVED), "ListCoupons", state.card_number,
                   card=view(state, ctx.now_us), coupons=tuple(
                       coupon_view(ctx, state.card_number, c, with_code=False)
                       for c in state.coupons.values()))


HANDLERS = {IssueCoupon: issue, ListCoupons: list_coupons}
