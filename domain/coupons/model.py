"""E-coupons: campaigns, the coupons they issue to cards, and their codes.

A campaign (defined by ADMIN, or a partner's manager for its partner) fixes what its coupons
are worth (a fixed value, or a percentage), when they may be used, the minimum spend, which
stores and categories they apply to, whether a value coupon may be used in parts, whether a
return gives a used coupon back, and who funds it (the partner, or a supplier: stage 3 settles
with them). An issued coupon copies those terms: changing the campaign later changes no coupon
already issued.

A coupon belongs to one card. Its code is `<coupon id>-<MAC>`, the MAC an HMAC-SHA256 of the
card number and the coupon id under a key only the server holds: a till cannot make up a code,
and a code is worth nothing on another card. Using a coupon is a decision on the card's state
in the single writer, so a coupon is never used twice.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import re

import msgspec

from domain.common import InvalidInput, check_card_number, check_id, check_time_us
from domain.currency import check_currency
from domain.rules.model import TOKEN_PATTERN

CAMPAIGN_ID_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,48}")
CODE_PATTERN = re.compile(r"(K[1-9][0-9]{0,11})-([A-Z2-7]{16})")
MAC_CHARS = 16  # 80 bits of base32
COUPON_VALUE_MAX_MINOR = 10**9
VALUES_MAX = 200
COUPONS_PER_PURCHASE_MAX = 10


class CouponKind(enum.IntEnum):
    VALUE = 1  # value_minor off (partly usable if the campaign says so)
    PERCENT = 2  # percent_bp of the lines in scope, once


class CouponStatus(enum.IntEnum):
    ACTIVE = 1
    USED = 2
    EXPIRED = 3


class Campaign(msgspec.Struct, frozen=True, array_like=True):
    campaign_id: str
    owner: str  # a partner id, or "alliance"
    currency: str
    kind: int  # CouponKind
    value_minor: int  # VALUE
    percent_bp: int  # PERCENT: 1..10000
    min_spend_minor: int  # the basket (after member discounts) must reach it
    valid_from_us: int
    valid_to_us: int  # exclusive
    stores: tuple[str, ...]  # empty = every store
    categories: tuple[str, ...]  # empty = every line
    partial_use: bool  # VALUE only: what is left stays on the coupon
    restore_on_return: bool  # a purchase returned in full gives its coupons back
    funded_by: str  # who pays for the discount: a partner or a supplier id


class Coupon(msgspec.Struct, array_like=True):
    """An issued coupon, as a card holds it (the campaign's terms copied in)."""

    coupon_id: str  # "K<version of the card's event that issued it>"
    terms: Campaign
    remaining_minor: int  # VALUE: what is left; PERCENT: 0
    status: int  # CouponStatus
    issued_at_us: int


class DefineCouponCampaign(msgspec.Struct, frozen=True, array_like=True,
                           tag="DefineCouponCampaign"):
    campaign: Campaign

    def validate(self) -> None:
        c = self.campaign
        if not CAMPAIGN_ID_PATTERN.fullmatch(c.campaign_id):
            raise InvalidInput("campaign_id", "must be 1..48 of [A-Za-z0-9_.-]")
        if c.owner != "alliance":
            check_id(c.owner, "owner")
        check_currency(c.currency)
        if c.kind == CouponKind.VALUE:
            if not 0 < c.value_minor <= COUPON_VALUE_MAX_MINOR:
                raise InvalidInput("value_minor", f"must be 1..{COUPON_VALUE_MAX_MINOR}")
        elif c.kind == CouponKind.PERCENT:
            if not 0 < c.percent_bp <= 10_000:
                raise InvalidInput("percent_bp", "must be 1..10000 (10000 = 100 %)")
            if c.partial_use:
                raise InvalidInput("partial_use", "only value coupons can be used in parts")
        else:
            raise InvalidInput("kind", "must be VALUE or PERCENT")
        if not 0 <= c.min_spend_minor <= 10**15:
            raise InvalidInput("min_spend_minor", "must not be negative")
        check_time_us(c.valid_from_us, "valid_from")
        check_time_us(c.valid_to_us, "valid_to")
        if c.valid_from_us >= c.valid_to_us:
            raise InvalidInput("valid_to", "must be after valid_from")
        for field, values in (("stores", c.stores), ("categories", c.categories)):
            if len(values) > VALUES_MAX:
                raise InvalidInput(field, f"must name at most {VALUES_MAX}")
        for index, store in enumerate(c.stores):
            check_id(store, f"stores[{index}]")
        for index, category in enumerate(c.categories):
            if not TOKEN_PATTERN.fullmatch(category):
                raise InvalidInput(f"categories[{index}]", "must be 1..48 of [A-Za-z0-9_.:-]")
        check_id(c.funded_by, "funded_by")


class IssueCoupon(msgspec.Struct, frozen=True, array_like=True, tag="IssueCoupon"):
    card_number: str
    campaign_id: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        if not CAMPAIGN_ID_PATTERN.fullmatch(self.campaign_id):
            raise InvalidInput("campaign_id", "must be 1..48 of [A-Za-z0-9_.-]")


class ListCoupons(msgspec.Struct, frozen=True, array_like=True, tag="ListCoupons"):
    card_number: str

    def validate(self) -> None:
        check_card_number(self.card_number)


# ------------------------------------------------------------------------------ codes


def _mac(key: bytes, card_number: str, coupon_id: str) -> str:
    digest = hmac.new(key, f"{card_number}:{coupon_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode()[:MAC_CHARS]


def code_of(key: bytes, card_number: str, coupon_id: str) -> str:
    return f"{coupon_id}-{_mac(key, card_number, coupon_id)}"


def check_code_shape(code: str, field: str) -> str:
    if not CODE_PATTERN.fullmatch(code):
        raise InvalidInput(field, "is not a coupon code of this ledger")
    return code


def coupon_of_code(key: bytes, card_number: str, code: str, field: str) -> str:
    """The coupon id a code names, if its MAC is right for this card; else InvalidInput (a
    made-up code, or a real code on another card)."""
    found = CODE_PATTERN.fullmatch(code)
    if found is None or not hmac.compare_digest(found.group(2),
                                                _mac(key, card_number, found.group(1))):
        raise InvalidInput(field, "is not a coupon code of this card")
    return found.group(1)

