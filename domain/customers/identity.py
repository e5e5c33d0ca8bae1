"""Who a customer is: a `customer_ref` when the card has one; a card without one is its own
customer (`card:<number>`); a replacement card belongs to the customer of the card it
replaces, whatever reference it carries, so a replacement chain is one customer (its first
card's). References only: the ledger holds no personal data."""

from __future__ import annotations

from collections.abc import Callable

CARD_PREFIX = "card:"


def own_customer(card_number: str, customer_ref: str) -> str:
    """The customer of a card issued new (not as a replacement)."""
    return customer_ref if customer_ref else CARD_PREFIX + card_number


def replacement_customer(replaces: str, customer_ref: str,
                         customer_of: Callable[[str], str | None]) -> str:
    """The customer of a card issued as the replacement of card `replaces`: that card's
    customer (`customer_of(number)`), or, when that card is unknown (a log that starts
    mid-chain), the reference the replacement carries, else the replaced card's number."""
    found = customer_of(replaces)
    if found is not None:
        return found
    return own_customer(replaces, customer_ref)
