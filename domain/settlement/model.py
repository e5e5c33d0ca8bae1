"""What one accounting entity owes another: the obligation, the unit settlement is made of.

An accounting entity is a partner, or a store registered as its own legal entity; here it is
an id and nothing more (the registry says what it is). An obligation is one amount in one
currency, owed by `payer_id` to `payee_id` for one reason (`category`). The ledger derives
obligations from the legs of a period's movements and from the agreements in force; several
obligations of the same (currency, payer, payee, category) may be given one by one or summed
beforehand: statements depend only on the sums (see statements.py).
"""

from __future__ import annotations

import enum

import msgspec

from domain.common import InvalidInput, check_amount, check_id, check_text, shown
from domain.currency import check_currency

REFERENCE_MAX = 200


class Category(enum.IntEnum):
    """Why an obligation exists. The numbers are stored and never change; a new reason gets a
    new number."""

    # Stored value of the payer's cards spent at the payee's stores: the payer (the cards'
    # issuer) holds the customer's money and owes it to the store that delivered the goods.
    SV_SPENT_ACROSS = 1
    # Points of the payer's program redeemed at the payee's stores: the program owner
    # reimburses the store's entity (per point, as the agreement says).
    POINTS_REDEEMED_ACROSS = 2
    # The payer's sales earned points of the payee's program: the partner pays the program
    # owner for the points it handed out (price per point times the billing percentage).
    POINTS_ISSUED_ACROSS = 3
    # A points exchange moved liability from the payee's program to the payer's: the program
    # receiving the points pays for them (the value at the rate, fee excluded).
    EXCHANGE = 4
    # A coupon's funder pays the entity whose store accepted it (the discount it gave).
    COUPON_FUNDING = 5
    # Commission on cross-spending, paid by whichever side the agreement names.
    COMMISSION = 6
    # Any other agreed fee (exchange fees, membership of the alliance...).
    FEE = 7


def check_category(value: object, field: str = "category") -> Category:
    # bool is an int to Python; True is not a category.
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"unknown category {shown(value)}")
    try:
        return Category(value)
    except ValueError:
        raise InvalidInput(field, f"unknown category {shown(value)}") from None


def check_minor(value: object, field: str, *, zero_ok: bool = False) -> int:
    """An amount in minor units: an int (never a float or a bool), > 0 (>= 0 with zero_ok),
    at most common.AMOUNT_MAX_MINOR."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"must be an integer number of minor units, not {shown(value)}")
    return check_amount(value, field, zero_ok=zero_ok)


def check_str(value: object, field: str) -> str:
    """The type check the pattern checks assume (a regex on an int raises TypeError)."""
    if not isinstance(value, str):
        raise InvalidInput(field, f"must be text, not {shown(value)}")
    return value


class Obligation(msgspec.Struct, frozen=True):
    """`payer_id` owes `payee_id` `amount_minor` (minor units of `currency`) for `category`.

    Checked on construction (also by msgspec.structs.replace and when decoded): every bad
    field raises InvalidInput naming it, so an Obligation that exists is a valid one."""

    currency: str  # ISO 4217
    payer_id: str  # accounting entity ids
    payee_id: str
    category: Category
    amount_minor: int
    reference: str = ""  # what it came from (a movement, an agreement line); free text

    def __post_init__(self) -> None:
        check_currency(check_str(self.currency, "currency"), "currency")
        check_id(check_str(self.payer_id, "payer_id"), "payer_id")
        check_id(check_str(self.payee_id, "payee_id"), "payee_id")
        if self.payer_id == self.payee_id:
            raise InvalidInput("payee_id", f"must differ from payer_id {shown(self.payer_id)}: "
                               "an entity owes itself nothing")
        check_category(self.category)
        check_minor(self.amount_minor, "amount_minor")
        check_text(check_str(self.reference, "reference"), "reference", limit=REFERENCE_MAX)
