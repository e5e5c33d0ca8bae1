"""A card as it was at a past time, from the log alone (an auditor's point-in-time read:
`CardService.GetCard` with `as_of`). Not through the writer: the card's stream is read and
folded up to the last event recorded by then, on the caller's thread."""

from __future__ import annotations

from typing import Any

from domain import access
from domain.cards import decide as cards
from domain.cards.events import CardEvent
from domain.common import Principal, Result
from ledger.codec import Outcome, card_stream_id, decode_event
from ledger.handlers.context import view
from ledger.store import EventStore


def card_as_of(store: EventStore, card_number: str, as_of_us: int) -> cards.CardState | None:
    state = None
    for stored in store.stream(card_stream_id(card_number)):
        event = decode_event(stored.state)
        if event.meta.recorded_at_us > as_of_us:
            break  # a card's events are recorded in its own order
        assert isinstance(event, CardEvent)
        state = cards.evolve(state, event)
    return state


def read_as_of(store: EventStore, principal: Principal, card_number: str,
               as_of_us: int) -> Outcome | str:
    """The GetCard reply as of `as_of_us` (the card unknown then: DECLINED_CARD_NOT_FOUND), or
    why `principal` may not read it."""
    state = card_as_of(store, card_number, as_of_us)
    if state is None:
        return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "GetCard")
    refused: Any = access.read_card(principal, state.issuing_partner_id)
    if refused:
        return str(refused)
    return Outcome(int(Result.APPROVED), "GetCard", state.card_number,
                   card=view(state, as_of_us))
