"""Card and stored-value commands. `validate()` checks the shape of the input only; whether a
command may succeed against a card's state is `decide`'s job."""

from __future__ import annotations

import re

import msgspec

from domain.common import (
    CLASS_PATTERN,
    InvalidInput,
    check_amount,
    check_card_number,
    check_id,
    check_request_id,
    check_text,
)
from domain.currency import check_currency

AUTHORIZATION_ID_PATTERN = re.compile(r"([0-9]{12,19})\.([1-9][0-9]{0,11})")


def check_authorization_id(value: str) -> str:
    """`{card_number}.{version}`: the card and the event that created the hold."""
    if not AUTHORIZATION_ID_PATTERN.fullmatch(value):
        raise InvalidInput("authorization_id", "is not an authorization id of this ledger")
    return value


def card_of_authorization(authorization_id: str) -> str:
    return authorization_id.split(".", 1)[0]


class IssueCard(msgspec.Struct, frozen=True, array_like=True, tag="IssueCard"):
    card_number: str  # "" = the ledger generates one
    card_class: str
    currency: str
    customer_ref: str
    issuing_store_id: str

    def validate(self) -> None:
        if self.card_number:
            check_card_number(self.card_number)
        if not CLASS_PATTERN.fullmatch(self.card_class):
            raise InvalidInput("card_class", "must be 1..32 of [A-Z0-9_]")
        check_currency(self.currency)
        check_text(self.customer_ref, "customer_ref", limit=64)
        if self.issuing_store_id:
            check_id(self.issuing_store_id, "issuing_store_id")


class CardAction(msgspec.Struct, frozen=True, array_like=True):
    card_number: str
    reason: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_text(self.reason, "reason")


class ActivateCard(CardAction, frozen=True, tag="ActivateCard"):
    pass


class BlockCard(CardAction, frozen=True, tag="BlockCard"):
    pass


class UnblockCard(CardAction, frozen=True, tag="UnblockCard"):
    pass


class CloseCard(CardAction, frozen=True, tag="CloseCard"):
    pass


class ReplaceCard(msgspec.Struct, frozen=True, array_like=True, tag="ReplaceCard"):
    card_number: str
    new_card_number: str  # "" = the ledger generates one
    reason: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        if self.new_card_number:
            check_card_number(self.new_card_number, "new_card_number")
            if self.new_card_number == self.card_number:
                raise InvalidInput("new_card_number", "must differ from card_number")
        check_text(self.reason, "reason")


class LoadValue(msgspec.Struct, frozen=True, array_like=True, tag="LoadValue"):
    card_number: str
    amount_minor: int
    currency: str
    payment_ref: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_amount(self.amount_minor)
        check_currency(self.currency)
        check_text(self.payment_ref, "payment_ref", required=True, limit=128)


class Authorize(msgspec.Struct, frozen=True, array_like=True, tag="Authorize"):
    card_number: str
    amount_minor: int
    currency: str
    allow_partial: bool
    stan: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_amount(self.amount_minor)
        check_currency(self.currency)
        check_text(self.stan, "stan", limit=32)


class Capture(msgspec.Struct, frozen=True, array_like=True, tag="Capture"):
    authorization_id: str
    amount_minor: int  # 0 = the whole held amount

    def validate(self) -> None:
        check_authorization_id(self.authorization_id)
        check_amount(self.amount_minor, zero_ok=True)


class Void(msgspec.Struct, frozen=True, array_like=True, tag="Void"):
    authorization_id: str

    def validate(self) -> None:
        check_authorization_id(self.authorization_id)


class Refund(msgspec.Struct, frozen=True, array_like=True, tag="Refund"):
    authorization_id: str
    amount_minor: int

    def validate(self) -> None:
        check_authorization_id(self.authorization_id)
        check_amount(self.amount_minor)


class Reverse(msgspec.Struct, frozen=True, array_like=True, tag="Reverse"):
    original_request_id: str

    def validate(self) -> None:
        check_request_id(self.original_request_id, "original_request_id")


class GetCard(msgspec.Struct, frozen=True, array_like=True, tag="GetCard"):
    card_number: str

    def validate(self) -> None:
        check_card_number(self.card_number)


class GetBalance(msgspec.Struct, frozen=True, array_like=True, tag="GetBalance"):
    card_number: str

    def validate(self) -> None:
        check_card_number(self.card_number)


CardCommand = (
    IssueCard | ActivateCard | BlockCard | UnblockCard | CloseCard | ReplaceCard | LoadValue
    | Authorize | Capture | Void | Refund
)
