"""A card's movements (ListMovements) as a read model on the projection runner: one row per
event of the card's stream, with the balance and held value after it, so a page costs what it
returns instead of a fold of the card's whole history.

Every card event kind has a movement kind (`KINDS`; tests walk every event type the codec
knows). A hold whose time is up counts as released from its expiry on (reads show it so), but
is recorded only at the card's next write or by the periodic card maintenance; until then the
listing ends with that release, at the hold's expiry time and the version it will be recorded
at (the writer records due expiries before anything else on a card, earliest first), so the
last movement always shows what the card shows. Those releases are worked out at read time
from the card's pending holds, which the model keeps beside the rows.

Tables (dropped and rebuilt from the log by `ProjectionRunner.rebuild`):
- `proj_movements(stream_id, version, kind, amount_minor, balance_minor, held_minor,
  store_id, terminal_id, request_id, recorded_at_us)`, keyed by (stream_id, version);
- `proj_movement_cards(stream_id, card_number, issuer, version, state, pending)`: the card
  as of its last row: its whole state for the projection's next batch, and its pending holds
  alone (`pending`, small) for the lapsed releases a reader appends.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import Notification

from domain import access
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent
from domain.common import Principal, Result
from ledger import limits
from ledger.codec import (
    REGISTRY_ID,
    Outcome,
    card_stream_id,
    decode_card_state,
    decode_event,
    encode,
)
from ledger.store import EventStore, Session
from projections.runner import PositionMoved, ProjectionRunner, SharedLog


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
    ev.PointsExchanged: ("POINTS_EXCHANGED", _zero),  # points only: no stored value moves
}


def movement_kind(event: CardEvent) -> tuple[str, int]:
    kind, amount = KINDS[type(event)]
    if kind is None:
        assert isinstance(event, ev.AuthorizationReleased)
        kind = event.reason
    return kind, amount(event)


def movement(version: int, event: CardEvent, state: cards.CardState,
             at_us: int | None = None) -> Movement:
    """The movement of one event, with the card's state after it."""
    kind, amount = movement_kind(event)
    meta = event.meta
    return Movement(version, kind, amount, state.balance_minor, state.held_minor, meta.store_id,
                    meta.terminal_id, meta.request_id,
                    meta.recorded_at_us if at_us is None else at_us)


def _pending_only(state: cards.CardState) -> cards.CardState:
    """What the lapsed releases need of a card: its value and its pending holds (the state
    without the holds already settled, lots, purchases and coupons, so a busy card's last page
    decodes a few holds, not its history)."""
    return msgspec.structs.replace(
        state, holds={k: h for k, h in state.holds.items()
                      if h.status == cards.HoldStatus.PENDING},
        lots={}, purchases={}, coupons={}, stamps={}, settled={})


_COLUMNS = ("stream_id, version, kind, amount_minor, balance_minor, held_minor, store_id, "
            "terminal_id, request_id, recorded_at_us")


class MovementsModel:
    name = "movements"

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        clustered = " WITHOUT ROWID" if session.dialect == "sqlite" else ""
        session.execute(
            f"CREATE TABLE IF NOT EXISTS proj_movements (stream_id {blob} NOT NULL, "
            "version BIGINT NOT NULL, kind TEXT NOT NULL, amount_minor BIGINT NOT NULL, "
            "balance_minor BIGINT NOT NULL, held_minor BIGINT NOT NULL, store_id TEXT NOT NULL,"
            " terminal_id TEXT NOT NULL, request_id TEXT NOT NULL, "
            "recorded_at_us BIGINT NOT NULL, PRIMARY KEY (stream_id, version))" + clustered)
        session.execute(
            f"CREATE TABLE IF NOT EXISTS proj_movement_cards (stream_id {blob} PRIMARY KEY, "
            "card_number TEXT NOT NULL, issuer TEXT NOT NULL, version BIGINT NOT NULL, "
            f"state {blob} NOT NULL, pending {blob} NOT NULL)")

    def drop(self, session: Session) -> None:
        session.execute("DROP TABLE IF EXISTS proj_movements")
        session.execute("DROP TABLE IF EXISTS proj_movement_cards")

    def prepare(self, store: EventStore, rows: Sequence[Notification]) -> Any:
        card_rows = [row for row in rows if row.originator_id != REGISTRY_ID]
        states = _load_states(store, {row.originator_id for row in card_rows})
        movements: list[tuple[Any, ...]] = []
        for row in card_rows:
            event = decode_event(row.state)
            assert isinstance(event, CardEvent)
            before = states.get(row.originator_id)
            if before is not None and before.version >= row.originator_version:
                raise PositionMoved  # another runner applied this batch since we read
            state = cards.evolve(before, event)
            assert state.version == row.originator_version, (row.id, state.version)
            states[row.originator_id] = state
            m = movement(state.version, event, state)
            movements.append((row.originator_id.bytes, m.version, m.kind, m.amount_minor,
                              m.balance_minor, m.held_minor, m.store_id, m.terminal_id,
                              m.request_id, m.recorded_at_us))
        touched = {row.originator_id for row in card_rows}
        return movements, [(stream_id.bytes, s.card_number, s.issuing_partner_id, s.version,
                            encode(s), encode(_pending_only(s)))
                           for stream_id, s in states.items() if stream_id in touched]

    def write(self, session: Session, prepared: Any) -> None:
        movements, card_rows = prepared
        session.executemany(f"INSERT INTO proj_movements ({_COLUMNS}) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", movements)
        session.executemany(
            "INSERT INTO proj_movement_cards (stream_id, card_number, issuer, version, state, "
            "pending) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (stream_id) DO UPDATE SET "
            "version = excluded.version, state = excluded.state, pending = excluded.pending",
            card_rows)


def _load_states(store: EventStore, stream_ids: set[uuid.UUID]) -> dict[uuid.UUID,
                                                                      cards.CardState]:
    found: dict[uuid.UUID, cards.CardState] = {}
    ids = sorted(stream_ids)
    with store.session(commit=False) as session:
        for start in range(0, len(ids), limits.PROJECTION_STATES_PER_QUERY):
            chunk = [i.bytes for i in ids[start:start + limits.PROJECTION_STATES_PER_QUERY]]
            marks = ", ".join("?" * len(chunk))
            for stream_id, state in session.query(
                    "SELECT stream_id, state FROM proj_movement_cards "
                    f"WHERE stream_id IN ({marks})", chunk):
                found[uuid.UUID(bytes=bytes(stream_id))] = decode_card_state(bytes(state))
    return found


def movements_runner(store: EventStore, log: SharedLog | None = None) -> ProjectionRunner:
    return ProjectionRunner(store, MovementsModel(), log=log)


def list_movements(runner: ProjectionRunner, principal: Principal, card_number: str,
                   after_version: int, limit: int, now_us: int, *, current: bool = True,
                   ) -> Outcome | Refused | list[Movement]:
    """A card's movements after `after_version`, oldest first, from the read model. With
    `current` the model first catches up with the log's end as it is now, so a caller sees
    every write acknowledged before the call, its own included."""
    limit = min(limit or limits.MOVEMENTS_PAGE_DEFAULT, limits.MOVEMENTS_PAGE_MAX)
    if after_version >= limits.VERSION_MAX:
        return []  # beyond any stream's end (and beyond what SQLite's integers hold)
    if current:
        runner.catch_up()
    stream_id = card_stream_id(card_number).bytes
    with runner.store.session(commit=False) as session:
        card = session.query("SELECT issuer, version, pending FROM proj_movement_cards "
                             "WHERE stream_id = ?", (stream_id,))
        if not card:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ListMovements")
        issuer, version, pending = card[0]
        denial = access.read_card(principal, issuer)
        if denial is not None:
            return Refused(denial)
        # Rows up to the card's version only: on PostgreSQL a batch may commit between the
        # two statements, and the lapsed releases below follow the card's version.
        rows = session.query(f"SELECT {_COLUMNS.split(', ', 1)[1]} FROM proj_movements "
                             "WHERE stream_id = ? AND version > ? AND version <= ? "
                             "ORDER BY version LIMIT ?",
                             (stream_id, after_version, version, limit))
    found = [Movement(*row) for row in rows]
    if version < after_version + limit:  # the page reaches the end of the stream
        found += _lapsed_holds(decode_card_state(bytes(pending)), after_version,
                               after_version + limit - version, now_us)
    return found


def _lapsed_holds(state: cards.CardState, after_version: int, room: int,
                  now_us: int) -> list[Movement]:
    """The releases of holds whose time is up but which are not recorded yet, as the writer
    will record them (earliest first, at the versions after the card's): only this page's are
    built, so paging through thousands of lapsed holds costs a sort per page, not a fold."""
    found: list[Movement] = []
    held = state.held_minor
    for version, hold in enumerate(cards.lapsed(state, now_us), state.version + 1):
        held -= hold.amount_minor  # a lapse moves held value back: the balance stays
        if version <= after_version:
            continue
        if len(found) == room:
            break
        found.append(Movement(version, ev.RELEASE_EXPIRED, hold.amount_minor,
                              state.balance_minor, held, "", "", "", hold.expires_at_us))
    return found
