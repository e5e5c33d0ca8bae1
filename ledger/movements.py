"""A card's movements: every event of its stream as a line of its statement, with the balance
and held value after it, so that an auditor sees the movements add up to what the card shows.

Every card event kind has a movement kind (`KINDS`; tests walk every event type the codec
knows). A hold whose time is up counts as released from its expiry on (reads show it so), but
is recorded only at the card's next write or by the periodic card maintenance; until then the
listing ends with that release, at the hold's expiry time and the version it will be recorded
at (the writer records due expiries before anything else on a card, earliest first), so the
last movement always shows what the card shows.
"""

from __future__ import annotations

from collections.abc import Callable

import msgspec

from domain import access
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent
from domain.common import Meta, Principal, Result
from ledger import limits
from ledger.codec import Outcome, card_stream_id, decode_event
from ledger.store import EventStore


class Movement(msgspec.Struct, frozen=True):
    version: int
    kind: str
    amount_minor: int  # stored value moved (0 for movements of points, coupons or status)
    balance_minor: int
    held_minor: int
    store_id: str
    terminal_id: str
    request_id: str
    recorded_at_us: int


class Refused(msgspec.Struct, frozen=True):
    """The caller may not read this card."""

    message: str


def _amount(event: CardEvent) -> int:
    return getattr(event, "amount_minor", 0)


def _zero(event: CardEvent) -> int:
    return 0


def _replaced(event: CardEvent) -> int:
    assert isinstance(event, ev.CardReplaced)
    return sum(leg.amount_minor for leg in event.legs if leg.amount_minor > 0)


# event type -> (kind, or None for the release's own reason; the stored value it moved)
KINDS: dict[type[CardEvent], tuple[str | None, Callable[[CardEvent], int]]] = {
    ev.CardIssued: ("ISSUED", _zero),
    ev.CardActivated: ("ACTIVATED", _zero),
    ev.CardBlocked: ("BLOCKED", _zero),
    ev.CardUnblocked: ("UNBLOCKED", _zero),
    ev.CardClosed: ("CLOSED", _zero),
    ev.CardReplaced: ("REPLACED", _replaced),
    ev.CardIssuedAsReplacement: ("ISSUED_AS_REPLACEMENT",
                                 lambda e: e.balance_minor),  # type: ignore[attr-defined]
    ev.ValueLoaded: ("LOADED", _amount),
    ev.LoadReversed: ("LOAD_REVERSED", _amount),
    ev.ValueAuthorized: ("AUTHORIZED", _amount),
    ev.AuthorizationCaptured: ("CAPTURED", _amount),
    ev.AuthorizationReleased: (None, _amount),  # VOIDED, REVERSED or EXPIRED
    ev.CaptureReversed: ("CAPTURE_REVERSED", _amount),
    ev.ValueRefunded: ("REFUNDED", _amount),
    ev.PurchaseMade: ("PURCHASE", lambda e: e.sv_charged_minor),  # type: ignore[attr-defined]
    ev.PurchaseReturned: ("RETURN", lambda e: e.sv_refunded_minor),  # type: ignore[attr-defined]
    ev.PointsExpired: ("POINTS_EXPIRED", _zero),
    ev.TierChanged: ("TIER_CHANGED", _zero),
    ev.CouponIssued: ("COUPON_ISSUED", _zero),
    ev.CouponExpired: ("COUPON_EXPIRED", _zero),
}


def movement_kind(event: CardEvent) -> tuple[str, int]:
    kind, amount = KINDS[type(event)]
    if kind is None:
        assert isinstance(event, ev.AuthorizationReleased)
        kind = event.reason
    return kind, amount(event)


def _movement(version: int, event: CardEvent, state: cards.CardState,
              at_us: int | None = None) -> Movement:
    kind, amount = movement_kind(event)
    meta = event.meta
    return Movement(version, kind, amount, state.balance_minor, state.held_minor, meta.store_id,
                    meta.terminal_id, meta.request_id,
                    meta.recorded_at_us if at_us is None else at_us)


def list_movements(store: EventStore, principal: Principal, card_number: str,
                   after_version: int, limit: int, now_us: int,
                   ) -> Outcome | Refused | list[Movement]:
    """A card's movements, oldest first, from its own history (read straight from the store,
    not through the writer). Balances after each movement come from folding the history."""
    limit = min(limit or limits.MOVEMENTS_PAGE_DEFAULT, limits.MOVEMENTS_PAGE_MAX)
    stream_id = card_stream_id(card_number)
    if after_version >= limits.VERSION_MAX:
        return []  # beyond any stream's end (and beyond what SQLite's integers hold)
    stored = store.stream(stream_id, lte=after_version + limit)
    if not stored:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ListMovements")
    events: list[CardEvent] = [decode_event(s.state) for s in stored]  # type: ignore[misc]
    issuer = events[0].issuing_partner_id  # type: ignore[attr-defined]
    denial = access.read_card(principal, issuer)
    if denial is not None:
        return Refused(denial)
    movements: list[Movement] = []
    state: cards.CardState | None = None
    for event in events:
        state = cards.evolve(state, event)
        if state.version > after_version:
            movements.append(_movement(state.version, event, state))
    assert state is not None
    if state.version < after_version + limit:  # the page reaches the end of the stream
        movements += _lapsed_holds(state, after_version, after_version + limit - state.version,
                                   now_us)
    return movements


def _lapsed_holds(state: cards.CardState, after_version: int, room: int,
                  now_us: int) -> list[Movement]:
    """The releases of holds whose time is up but which are not recorded yet."""
    found: list[Movement] = []
    released = cards.expired_holds(state, now_us, Meta("", "system", 0, "", "", "", now_us))
    for event in released[:room]:
        assert isinstance(event, ev.AuthorizationReleased)
        expires_at_us = state.holds[event.authorization_id].expires_at_us
        state = cards.evolve(state, event)
        if state.version > after_version:
            found.append(_movement(state.version, event, state, expires_at_us))
    return found
