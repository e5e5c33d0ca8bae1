"""Using coupons at the till and issuing them. Pure: the card's coupons, the basket, the store
and the clock come in; uses (or the reason a coupon cannot be used) come out.

Coupons apply in the order the till gives them, after member discounts, to what is left to pay.
A coupon's scope amount is the list price of the basket's lines in its categories (every line
when it names none), never more than is left to pay. A value coupon takes up to what it has
left; unless its campaign allows partial use, it is then used up whatever it took. A percentage
coupon takes its percentage of the scope amount, once.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec

from domain.common import CardStatus, Result
from domain.coupons.model import Campaign, Coupon, CouponKind, CouponStatus
from domain.rules.model import Line


class CouponUse(msgspec.Struct, frozen=True, array_like=True):
    coupon_id: str
    amount_minor: int
    used_up: bool  # the coupon is USED after this (else: partly used, value left)
    funded_by: str  # who pays for it at settlement


class NotUsable(Exception):
    def __init__(self, coupon_id: str, problem: str) -> None:
        super().__init__(f"coupon {coupon_id} {problem}")


def apply_coupons(coupons: dict[str, Coupon], coupon_ids: tuple[str, ...],
                  lines: tuple[Line, ...], due_minor: int, store_id: str,
                  now_us: int) -> tuple[CouponUse, ...]:
    """The uses of the coupons, in order; NotUsable names the first one that cannot be used."""
    uses: list[CouponUse] = []
    left = due_minor
    for coupon_id in coupon_ids:
        coupon = coupons.get(coupon_id)
        if coupon is None:  # a valid MAC for a coupon this card never got: impossible
            raise NotUsable(coupon_id, "is not on this card")
        terms = coupon.terms
        if coupon.status == CouponStatus.USED:
            raise NotUsable(coupon_id, "was used already")
        if coupon.status == CouponStatus.EXPIRED or now_us >= terms.valid_to_us:
            raise NotUsable(coupon_id, "has expired")
        if now_us < terms.valid_from_us:
            raise NotUsable(coupon_id, "is not valid yet")
        if terms.stores and store_id not in terms.stores:
            raise NotUsable(coupon_id, f"is not valid at store {store_id}")
        if due_minor < terms.min_spend_minor:
            raise NotUsable(coupon_id, f"needs a spend of at least {terms.min_spend_minor}")
        scope = sum(line.amount_minor for line in lines
                    if not terms.categories or line.category in terms.categories)
        scope = min(scope, left)
        if terms.kind == CouponKind.VALUE:
            amount = min(coupon.remaining_minor, scope)
            used_up = not terms.partial_use or amount == coupon.remaining_minor
        else:
            amount = scope * terms.percent_bp // 10_000
            used_up = True
        if amount <= 0:
            raise NotUsable(coupon_id, "applies to nothing in this basket")
        uses.append(CouponUse(coupon_id, amount, used_up, terms.funded_by))
        left -= amount
    return tuple(uses)


def new_coupon(campaign: Campaign, coupon_id: str, now_us: int) -> Coupon:
    value = campaign.value_minor if campaign.kind == CouponKind.VALUE else 0
    return Coupon(coupon_id, campaign, value, CouponStatus.ACTIVE, now_us)


def expired_coupons(coupons: dict[str, Coupon], now_us: int) -> tuple[tuple[str, int], ...]:
    """(coupon id, value left) of every active coupon whose validity has ended."""
    return tuple((c.coupon_id, c.remaining_minor) for c in coupons.values()
                 if c.status == CouponStatus.ACTIVE and c.terms.valid_to_us <= now_us)


# A purchase issues coupons of at most this many campaigns: a coupon id holds one digit for
# its index within the purchase (CardState.coupon_id).
COUPONS_ISSUED_PER_PURCHASE_MAX = 10


def issue_decline(card_status: int, card_currency: str, campaign: Campaign,
                  now_us: int) -> Result | None:
    """Why a coupon of `campaign` cannot be given to a card now (None: it can): the card must
    be issued or active, in the campaign's currency, and the campaign still running."""
    if card_status not in (CardStatus.ISSUED, CardStatus.ACTIVE):
        return Result.DECLINED_CARD_NOT_ACTIVE
    if campaign.currency != card_currency:
        return Result.DECLINED_CURRENCY_MISMATCH
    if now_us >= campaign.valid_to_us:
        return Result.DECLINED_INVALID_STATE
    return None


def campaigns_to_issue(campaign_ids: tuple[str, ...], campaigns: Mapping[str, Campaign],
                       currency: str, now_us: int) -> tuple[Campaign, ...]:
    """The campaigns whose coupons a purchase hands out (its rules fired them): known, in the
    card's currency, still running; at most COUPONS_ISSUED_PER_PURCHASE_MAX."""
    found = [campaign for campaign_id in campaign_ids
             if (campaign := campaigns.get(campaign_id)) is not None
             and campaign.currency == currency and now_us < campaign.valid_to_us]
    return tuple(found[:COUPONS_ISSUED_PER_PURCHASE_MAX])
