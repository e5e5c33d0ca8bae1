"""Card events: the stored schema of a card's stream. Tags never change; add a new event instead.

Every event that moves value carries its double-entry legs (see domain.postings).
"""

from __future__ import annotations

import msgspec

from domain.common import Meta
from domain.postings import Leg


class CardEvent(msgspec.Struct, frozen=True, array_like=True, tag_field="t"):
    meta: Meta


class CardIssued(CardEvent, tag="card.issued.v1"):
    card_number: str
    card_class: str
    currency: str
    issuing_partner_id: str
    issuing_store_id: str
    customer_ref: str


class CardActivated(CardEvent, tag="card.activated.v1"):
    reason: str


class CardBlocked(CardEvent, tag="card.blocked.v1"):
    reason: str


class CardUnblocked(CardEvent, tag="card.unblocked.v1"):
    reason: str


class CardClosed(CardEvent, tag="card.closed.v1"):
    reason: str


class HoldMoved(msgspec.Struct, frozen=True, array_like=True):
    """An authorization carried over to a replacement card: a pending hold (everything a
    capture needs) or a capture that can still be refunded (the refund lands on the new card).
    """

    authorization_id: str
    amount_minor: int
    expires_at_us: int
    store_id: str
    acquirer_partner_id: str
    status: int = 1  # HoldStatus.PENDING
    captured_minor: int = 0
    refunded_minor: int = 0


class CardReplaced(CardEvent, tag="card.replaced.v1"):
    new_card_number: str
    reason: str
    legs: tuple[Leg, ...]


class CardIssuedAsReplacement(CardEvent, tag="card.issued_as_replacement.v1"):
    card_number: str
    replaces: str
    card_class: str
    currency: str
    issuing_partner_id: str
    issuing_store_id: str
    customer_ref: str
    status: int
    balance_minor: int  # the value itself moves in the old card's CardReplaced legs
    holds: tuple[HoldMoved, ...]


class ValueLoaded(CardEvent, tag="sv.loaded.v1"):
    amount_minor: int
    payment_ref: str
    legs: tuple[Leg, ...]


class LoadReversed(CardEvent, tag="sv.load_reversed.v1"):
    original_request_id: str
    amount_minor: int
    legs: tuple[Leg, ...]


class ValueAuthorized(CardEvent, tag="sv.authorized.v1"):
    authorization_id: str
    requested_minor: int
    amount_minor: int
    expires_at_us: int
    acquirer_partner_id: str
    stan: str
    legs: tuple[Leg, ...]


class AuthorizationCaptured(CardEvent, tag="sv.captured.v1"):
    authorization_id: str
    amount_minor: int
    released_minor: int
    legs: tuple[Leg, ...]


class AuthorizationReleased(CardEvent, tag="sv.released.v1"):
    """A pending hold let go without capture: voided, reversed or expired (`reason`)."""

    authorization_id: str
    amount_minor: int
    reason: str
    legs: tuple[Leg, ...]


class CaptureReversed(CardEvent, tag="sv.capture_reversed.v1"):
    """A capture undone by a terminal reversal: the captured amount is held again."""

    authorization_id: str
    amount_minor: int
    legs: tuple[Leg, ...]


class ValueRefunded(CardEvent, tag="sv.refunded.v1"):
    authorization_id: str
    amount_minor: int
    legs: tuple[Leg, ...]


CARD_EVENTS: tuple[type[CardEvent], ...] = (
    CardIssued, CardActivated, CardBlocked, CardUnblocked, CardClosed, CardReplaced,
    CardIssuedAsReplacement, ValueLoaded, LoadReversed, ValueAuthorized, AuthorizationCaptured,
    AuthorizationReleased, CaptureReversed, ValueRefunded,
)

RELEASE_VOIDED = "VOIDED"
RELEASE_REVERSED = "REVERSED"
RELEASE_EXPIRED = "EXPIRED"
