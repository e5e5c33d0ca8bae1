"""A card as it was at a past time, from the log alone (an auditor's point-in-time read:
`CardService.GetCard` with `as_of`). Not through the writer: the card's stream is read and
folded up to the last event recorded by then, on the caller's thread."""

from __future__ import annotations

import itertools
from typing import Any

from domain import access
from domain.cards import decide as cards
from domain.common import Principal, Result
from ledger.codec import Outcome, card_stream_id, decode_event
from ledger.handlers.context import view
from ledger.store import EventStore


def card_as_of(store: EventStore, card_number: str, as_of_us: int) -> cards.CardState | None:
    events = (decode_event(stored.state) for stored in store.stream(card_stream_id(card_number)))
    # a card's events are recorded in its own order: the first one after `as_of_us` ends it
    return cards.fold(list(itertools.takewhile(
        lambda event: event.meta.recorded_at_us <= as_of_us, events)))  # type: ignore[arg-type]


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
