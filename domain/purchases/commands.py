"""Purchase, SimulatePurchase and Return: the basket flow of the till.

`validate()` checks the shape only (lines, amounts, the local time's format); what the card,
the programs and the rule sets say is `decide`'s job.
"""

from __future__ import annotations

import datetime as dt
import re

import msgspec

from domain.common import (
    InvalidInput,
    check_amount,
    check_card_number,
    check_id,
    check_text,
    shown,
)
from domain.coupons.model import COUPONS_PER_PURCHASE_MAX, check_code_shape
from domain.currency import check_currency
from domain.points.program import ALLIANCE
from domain.rules.model import Basket, Line, check_basket

LINES_MAX = 500
POINTS_REDEEM_MAX = 10**12
PURCHASE_ID_PATTERN = re.compile(r"([0-9]{12,19})\.([1-9][0-9]{0,11})")
LOCAL_TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2})?")


def local_weekday_minute(local_time: str) -> tuple[int, int]:
    """(weekday 0 = Monday, minute of the day) of "YYYY-MM-DDTHH:MM[:SS]" (no offset: the
    store's wall clock, as printed on the receipt)."""
    moment = local_moment(local_time)
    return moment.weekday(), moment.hour * 60 + moment.minute


def local_moment(local_time: str) -> dt.datetime:
    if not LOCAL_TIME_PATTERN.fullmatch(local_time):
        raise InvalidInput("local_time", "must be YYYY-MM-DDTHH:MM[:SS], the store's wall clock "
                           "without an offset")
    try:
        moment = dt.datetime.fromisoformat(local_time)
    except ValueError:
        raise InvalidInput("local_time",
                           f"{shown(local_time)} is not a real date and time") from None
    return moment


class Purchase(msgspec.Struct, frozen=True, array_like=True, tag="Purchase"):
    card_number: str
    currency: str
    lines: tuple[Line, ...]
    stored_value_minor: int  # what to charge to stored value (0 = nothing)
    allow_partial: bool  # charge what is available if less; the rest is another tender
    points_to_redeem: int  # at the program's point value, before stored value
    local_time: str  # "" = now, in the store's timezone
    receipt_ref: str
    coupon_codes: tuple[str, ...] = ()  # applied in this order, after member discounts
    # A special discount approved by a STORE_MANAGER of the store: the servicer turns the
    # manager's token into its credential id, the writer checks it is still valid.
    override_discount_minor: int = 0
    override_approver: str = ""
    override_reason: str = ""
    stored_value_pays_rest: bool = False  # charge whatever is left after the other tenders
    # The owner of the program whose points `points_to_redeem` are (a partner id or
    # "alliance"); "" = the card's own program. Keep it the last field: `hashed` drops it.
    redeem_program: str = ""

    def hashed(self) -> object:
        """What the idempotency hash covers (ledger.codec.payload_hash): the command, but
        while `redeem_program` is unset, exactly the array a Purchase was encoded as before the
        field existed (msgpack encodes a tuple and an array-like struct alike), so a retry of a
        request keyed before the upgrade still matches its key."""
        if self.redeem_program:
            return self
        return (self.__struct_config__.tag, *msgspec.structs.astuple(self)[:-1])

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_currency(self.currency)
        if len(self.lines) > LINES_MAX:
            raise InvalidInput("lines", f"must hold at most {LINES_MAX} lines")
        check_basket(Basket(lines=self.lines, card_class="", weekday=0, minute_of_day=0))
        check_amount(self.stored_value_minor, "stored_value_minor", zero_ok=True)
        if not 0 <= self.points_to_redeem <= POINTS_REDEEM_MAX:
            raise InvalidInput("points_to_redeem", f"must be 0..{POINTS_REDEEM_MAX}")
        if self.local_time:
            local_weekday_minute(self.local_time)
        check_text(self.receipt_ref, "receipt_ref", limit=64)
        if len(self.coupon_codes) > COUPONS_PER_PURCHASE_MAX:
            raise InvalidInput("coupon_codes", f"must hold at most {COUPONS_PER_PURCHASE_MAX}")
        if self.stored_value_pays_rest and self.stored_value_minor:
            raise InvalidInput("stored_value_minor", "must be 0 with stored_value_pays_rest")
        check_amount(self.override_discount_minor, "override_discount_minor", zero_ok=True)
        if self.override_discount_minor:
            if not self.override_approver:
                raise InvalidInput("override_token", "is required with override_discount_minor")
            check_text(self.override_reason, "override_reason", required=True)
        elif self.override_approver or self.override_reason:
            raise InvalidInput("override_discount_minor", "is required with an override")
        for index, code in enumerate(self.coupon_codes):
            check_code_shape(code, f"coupon_codes[{index}]")
            if code in self.coupon_codes[:index]:
                raise InvalidInput(f"coupon_codes[{index}]", "names a coupon twice")
        if self.redeem_program:
            if self.redeem_program != ALLIANCE:
                check_id(self.redeem_program, "redeem_program")
            if not self.points_to_redeem:
                raise InvalidInput("redeem_program", "is set without points_to_redeem")

    @property
    def total_minor(self) -> int:
        return sum(line.quantity * line.unit_price_minor for line in self.lines)


class SimulatePurchase(msgspec.Struct, frozen=True, array_like=True, tag="SimulatePurchase"):
    """The same evaluation as Purchase; nothing is written."""

    purchase: Purchase
    store_id: str  # managers name the store; "" = the caller's own

    def hashed(self) -> object:
        """As Purchase.hashed: the purchase inside hashes as it did before redeem_program."""
        if self.purchase.redeem_program:
            return self
        return (self.__struct_config__.tag, self.purchase.hashed(), self.store_id)

    def validate(self) -> None:
        self.purchase.validate()
        if self.store_id:
            check_id(self.store_id, "store_id")


class ReturnLine(msgspec.Struct, frozen=True, array_like=True):
    line_index: int  # position in the purchase's lines
    quantity: int


class Return(msgspec.Struct, frozen=True, array_like=True, tag="Return"):
    purchase_id: str
    lines: tuple[ReturnLine, ...]
    reason: str

    def validate(self) -> None:
        if not PURCHASE_ID_PATTERN.fullmatch(self.purchase_id):
            raise InvalidInput("purchase_id", "is not a purchase id of this ledger")
        if not 1 <= len(self.lines) <= LINES_MAX:
            raise InvalidInput("lines", f"must hold 1..{LINES_MAX} lines")
        seen: set[int] = set()
        for index, line in enumerate(self.lines):
            if not 0 <= line.line_index < LINES_MAX:
                raise InvalidInput(f"lines[{index}].line_index", f"must be 0..{LINES_MAX - 1}")
            if line.line_index in seen:
                raise InvalidInput(f"lines[{index}].line_index", "names a line twice")
            seen.add(line.line_index)
            if line.quantity <= 0:
                raise InvalidInput(f"lines[{index}].quantity", "must be greater than 0")
        check_text(self.reason, "reason")

    @property
    def card_number(self) -> str:
        return self.purchase_id.split(".", 1)[0]


class MaintainCard(msgspec.Struct, frozen=True, array_like=True, tag="MaintainCard"):
    """The periodic job's step for one card (never from the wire): record the expiry of every
    lot whose time is up at `as_of_us`, and review the tier against the spend of the window
    that ended at the last period end at or before `as_of_us`. The same `as_of_us` always
    gives the same result; a lot expires once, a tier is lowered once."""

    card_number: str
    as_of_us: int
