"""Settlement as a read model on the projection runner: every movement's legs summed into what
one entity owes another, per settlement period, currency and category, and the statements and
instructions of a closed period computed from those sums (domain.settlement).

A movement belongs to the period that was open when it was committed: the runner applies the
log in order and the close is a row of the log (`SettlementPeriodClosed`), so each row lands in
exactly one period whatever the number of server processes. Rows and the position are written
in one transaction (projections/runner.py), so a period's sums are exact once its marker has
been applied.

Tables (plain SQL, for a finance team's own tools too; dropped and rebuilt from the log by
`ProjectionRunner.rebuild`):
- `proj_settlement_totals(period_id, currency, payer, payee, category, amount_minor)`: signed
  sums of the flows of `domain.settlement.legs` (category numbers: `domain.settlement.model`);
- `proj_settlement_periods(period_id, closed_at_us, position, note)`: one row per close;
- `proj_settlement_cards(stream_id, currency)`: each card's currency (legs carry none).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec
from eventsourcing.persistence import Notification

from domain.cards import events as ev
from domain.common import InvalidInput
from domain.registry.events import SettlementPeriodClosed
from domain.settlement import legs as settlement_legs
from domain.settlement.instructions import Instruction, instructions
from domain.settlement.statements import StatementSet, statements
from ledger import limits
from ledger.codec import REGISTRY_ID, decode_event
from ledger.store import EventStore, Session
from projections.runner import ProjectionRunner, SharedLog

Key = tuple[int, str, str, str, int]  # (period, currency, payer, payee, category)


class Period(msgspec.Struct, frozen=True):
    period_id: int
    closed_at_us: int  # 0: still open
    position: int  # the close's log position (0: still open)
    note: str


def _tag(event_type: type) -> str:
    return event_type.__struct_config__.tag  # type: ignore[attr-defined, no-any-return]


# Card events whose legs may cross entities, and the rest this model reads.
_FLOWS = settlement_legs.FLOW_TOPICS
_TOPICS = _FLOWS | {_tag(ev.CardIssued), _tag(ev.CardIssuedAsReplacement),
                    _tag(SettlementPeriodClosed)}


class SettlementModel:
    name = "settlement"

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_totals (period_id BIGINT NOT NULL, "
            "currency TEXT NOT NULL, payer TEXT NOT NULL, payee TEXT NOT NULL, "
            "category INTEGER NOT NULL, amount_minor BIGINT NOT NULL, "
            "PRIMARY KEY (period_id, currency, payer, payee, category))")
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_periods (period_id BIGINT PRIMARY KEY,"
            " closed_at_us BIGINT NOT NULL, position BIGINT NOT NULL, note TEXT NOT NULL)")
        session.execute(
            f"CREATE TABLE IF NOT EXISTS proj_settlement_cards (stream_id {blob} PRIMARY KEY, "
            "currency TEXT NOT NULL)")

    def drop(self, session: Session) -> None:
        for table in ("proj_settlement_totals", "proj_settlement_periods",
                      "proj_settlement_cards"):
            session.execute(f"DROP TABLE IF EXISTS {table}")

    def prepare(self, store: EventStore, rows: Sequence[Notification]) -> Any:
        # Only the kinds that can owe something, open a card or close a period are decoded
        # (an authorization's legs stay on its card): half the log or more is passed over.
        relevant = [row for row in rows if row.topic in _TOPICS]
        with store.session(commit=False) as session:
            found = session.query("SELECT max(period_id) FROM proj_settlement_periods")
            period = int(found[0][0] or 0) + 1
            currencies = _currencies(session, {row.originator_id for row in relevant
                                               if row.topic in _FLOWS})
        sums: dict[Key, int] = defaultdict(int)
        closes: list[tuple[int, int, int, str]] = []
        new_cards: list[tuple[bytes, str]] = []
        for row in relevant:
            event = decode_event(row.state)
            if row.originator_id == REGISTRY_ID:
                if isinstance(event, SettlementPeriodClosed):
                    assert event.period_id == period, (event.period_id, period)
                    closes.append((period, event.meta.recorded_at_us, row.id, event.note))
                    period += 1
                continue
            if isinstance(event, ev.CardIssued | ev.CardIssuedAsReplacement):
                currencies[row.originator_id] = event.currency
                new_cards.append((row.originator_id.bytes, event.currency))
                continue
            legs = getattr(event, "legs", ())
            if not legs:
                continue
            currency = currencies[row.originator_id]
            for payer, payee, category, amount in settlement_legs.flows(legs):
                sums[(period, currency, payer, payee, category)] += amount
        return [(*key, amount) for key, amount in sums.items() if amount], closes, new_cards

    def write(self, session: Session, prepared: Any) -> None:
        totals, closes, new_cards = prepared
        session.executemany(
            "INSERT INTO proj_settlement_cards (stream_id, currency) VALUES (?, ?) "
            "ON CONFLICT (stream_id) DO NOTHING", new_cards)
        session.executemany(
            "INSERT INTO proj_settlement_totals (period_id, currency, payer, payee, category, "
            "amount_minor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (period_id, currency, payer, "
            "payee, category) DO UPDATE SET amount_minor = "
            "proj_settlement_totals.amount_minor + excluded.amount_minor", totals)
        session.executemany(
            "INSERT INTO proj_settlement_periods (period_id, closed_at_us, position, note) "
            "VALUES (?, ?, ?, ?)", closes)


def _currencies(session: Session, stream_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    found: dict[uuid.UUID, str] = {}
    ids = sorted(stream_ids)
    for start in range(0, len(ids), limits.PROJECTION_STATES_PER_QUERY):
        chunk = [i.bytes for i in ids[start:start + limits.PROJECTION_STATES_PER_QUERY]]
        marks = ", ".join("?" * len(chunk))
        for stream_id, currency in session.query(
                "SELECT stream_id, currency FROM proj_settlement_cards "
                f"WHERE stream_id IN ({marks})", chunk):
            found[uuid.UUID(bytes=bytes(stream_id))] = currency
    return found


def settlement_runner(store: EventStore, log: SharedLog | None = None) -> ProjectionRunner:
    return ProjectionRunner(store, SettlementModel(), log=log)


# ------------------------------------------------------------------------------ reads


def periods(runner: ProjectionRunner) -> list[Period]:
    """Every closed period, oldest first, then the open one."""
    runner.catch_up()
    with runner.store.session(commit=False) as session:
        rows = session.query("SELECT period_id, closed_at_us, position, note "
                             "FROM proj_settlement_periods ORDER BY period_id")
    closed = [Period(int(p), int(at), int(pos), note) for p, at, pos, note in rows]
    return [*closed, Period(len(closed) + 1, 0, 0, "")]


def period_statements(runner: ProjectionRunner, period_id: int,
                      ) -> tuple[StatementSet, tuple[Instruction, ...]]:
    """The statements and settlement instructions of a period (the open one: so far), from the
    read model brought up to the log's end. Recomputed at any time from the same rows, a closed
    period gives the same statements (the same digest)."""
    known = periods(runner)
    if not 1 <= period_id <= len(known):
        raise InvalidInput("period_id", f"must be 1..{len(known)} (period {len(known)} is "
                           "open)")
    with runner.store.session(commit=False) as session:
        rows = session.query("SELECT currency, payer, payee, category, amount_minor FROM "
                             "proj_settlement_totals WHERE period_id = ?", (period_id,))
    by_currency: dict[str, dict[tuple[str, str, int], int]] = defaultdict(dict)
    for currency, payer, payee, category, amount in rows:
        by_currency[currency][(payer, payee, int(category))] = int(amount)
    owed = [o for currency, totals in sorted(by_currency.items())
            for o in settlement_legs.obligations(currency, totals)]
    found = statements(owed, str(period_id))
    return found, instructions(found)
