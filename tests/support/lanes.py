"""The log's lanes for tests that run on one log and on the split layout (ledger/partitioned.py):
a lane's events table and the session that reaches it (a split lane's schema may be in the
second database), the lane of a card, and card numbers that fall in one lane (so a test's
traffic is as dense in that lane as it is in one log)."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ledger.codec import card_stream_id
from ledger.store import EVENTS_TABLE, KEYS_TABLE, EventStore
from tests.support.alliance import card_number

_seeds = itertools.count(700_000)


def lane_of_card(store: EventStore, number: str) -> int:
    return store.lane_of(card_stream_id(number))


def numbers_in_lane(store: EventStore, lane: int, count: int) -> list[str]:
    """`count` fresh card numbers whose streams are in `lane` (any on one log: lane 0)."""
    found: list[str] = []
    while len(found) < count:
        number = card_number(next(_seeds))
        if not store.split or lane_of_card(store, number) == lane:
            found.append(number)
    return found


def card_lane(store: EventStore) -> int:
    """The lane a test's cards go in: 0 on one log, the first card partition's when split."""
    return 1 if store.split else 0


def head(store: EventStore, lane: int) -> int:
    return store.lane_head(lane)


def _lane_store(store: EventStore, lane: int) -> EventStore:
    return store.lane_store(lane) if store.split else store  # type: ignore[attr-defined]


@contextmanager
def lane_tables(store: EventStore, lane: int) -> Iterator[tuple[Any, str, str, str]]:
    """(session, events table, keys table, the events' position column) of a lane, in one
    committed transaction."""
    part = _lane_store(store, lane)
    tables = getattr(part, "tables", None)
    with part.session(commit=True) as session:
        position = "rowid" if session.dialect == "sqlite" else "notification_id"
        yield (session, tables.events if tables is not None and store.split else EVENTS_TABLE,
               tables.keys if tables is not None and store.split else KEYS_TABLE, position)


def stream_rows(store: EventStore, stream: uuid.UUID) -> list[Any]:
    """Every log row of a stream, from its lane, in order."""
    lane = store.lane_of(stream)
    rows, start = [], 1
    while page := store.read_lane(lane, start, 1_000):
        rows += [row for row in page if row.originator_id == stream]
        start = page[-1].id + 1
    return rows


def all_rows(store: EventStore) -> list[Any]:
    """Every log row, lane after lane (the registry's first)."""
    rows = []
    for lane in store.lanes():
        start = 1
        while page := store.read_lane(lane, start, 1_000):
            rows += page
            start = page[-1].id + 1
    return rows


def rows_by_time(store: EventStore) -> list[Any]:
    """Every log row: one log in its order; a split log's lanes merged by the time each row
    was recorded (a return after its purchase made on the card it replaced, in another
    lane), ties in lane order."""
    from projections.runner import log_rows

    return list(log_rows(store, by_time=True))
