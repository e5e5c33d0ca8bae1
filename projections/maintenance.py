"""Card maintenance: `loyalty-ledger expire --as-of TIME` and the scheduler in `serve`.

The cards the job must visit are a read model on the projection runner
(`proj_maintenance_cards`): every card that may hold something with a time limit or a review,
that is every card that made a purchase (points lots, a tier, coupons a rule gave), received a
coupon from a manager, or took over a replaced card's loyalty (lots, coupons, tier). A job
that starts catches the model up from its recorded position (no re-read of the log from 0)
and reads the cards from the table a page at a time (no set of every card in memory).

For each card it asks the writer to record the expiry of every lot and coupon whose time is
up at `as_of` and to review the tier against the spend of the window that ended at the last
period end (month boundary in the program's timezone) at or before `as_of`. The writer
decides each card against its current state, so the job is safe beside live traffic and in
several processes at once: a lot's remainder expires once, a tier is lowered once, and a
second run at the same `as_of` changes nothing.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from domain.cards import events as ev
from domain.purchases.commands import MaintainCard
from ledger import limits
from ledger.codec import decode_event
from ledger.engine import Failure, Ledger, Reply, Request
from ledger.store import EventStore, Session
from projections.runner import ProjectionRunner

_ISSUED = {ev.CardIssued.__struct_config__.tag, ev.CardIssuedAsReplacement.__struct_config__.tag}
_DUE = {ev.PurchaseMade.__struct_config__.tag, ev.CouponIssued.__struct_config__.tag,
        ev.PointsExchanged.__struct_config__.tag}  # a lot of another program arrives


class MaintenanceModel:
    """`proj_maintenance_cards(stream_id, card_number, due)`: one row per card (its number,
    which later events do not carry), `due` once the card has something to maintain."""

    name = "maintenance"

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        session.execute(f"CREATE TABLE IF NOT EXISTS proj_maintenance_cards (stream_id {blob} "
                        "PRIMARY KEY, card_number TEXT NOT NULL, due BOOLEAN NOT NULL)")
        session.execute("CREATE INDEX IF NOT EXISTS proj_maintenance_due ON "
                        "proj_maintenance_cards (card_number) WHERE due")

    def drop(self, session: Session) -> None:
        session.execute("DROP TABLE IF EXISTS proj_maintenance_cards")

    def prepare(self, store: EventStore, rows: Sequence[Notification]) -> Any:
        issued: list[tuple[bytes, str, bool]] = []
        due: set[bytes] = set()
        for row in rows:
            if row.topic in _ISSUED:
                event = decode_event(row.state)
                assert isinstance(event, ev.CardIssued | ev.CardIssuedAsReplacement)
                carried = getattr(event, "carried", None)
                takes_over = carried is not None and bool(
                    carried.lots or carried.coupons or carried.tier or carried.purchases)
                issued.append((row.originator_id.bytes, event.card_number, takes_over))
            elif row.topic in _DUE:
                due.add(row.originator_id.bytes)
        return issued, sorted(due)

    def write(self, session: Session, prepared: Any) -> None:
        issued, due = prepared
        session.executemany("INSERT INTO proj_maintenance_cards (stream_id, card_number, due) "
                            "VALUES (?, ?, ?)", issued)
        session.executemany("UPDATE proj_maintenance_cards SET due = TRUE WHERE stream_id = ? "
                            "AND NOT due", [(stream_id,) for stream_id in due])


def maintenance_runner(store: EventStore) -> ProjectionRunner:
    return ProjectionRunner(store, MaintenanceModel())


def cards_due(store: EventStore, after: str, limit: int) -> list[str]:
    """Card numbers to visit after `after` in number order, at most `limit`."""
    with store.session(commit=False) as session:
        rows = session.query("SELECT card_number FROM proj_maintenance_cards WHERE due AND "
                             "card_number > ? ORDER BY card_number LIMIT ?", (after, limit))
    return [row[0] for row in rows]


@dataclass(frozen=True)
class ExpiryRun:
    as_of_us: int
    cards_checked: int
    cards_with_expiry: int
    points_expired: int
    tiers_lowered: int
    failures: int  # cards the writer could not decide (database down): the next run retries
    log_position_before: int = 0  # where the card set's catch-up began (0 only the first time)


class PointsExpiry:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.cards = maintenance_runner(ledger.store)

    def run(self, as_of_us: int, timeout_s: float = 300.0) -> ExpiryRun:
        before = self.cards.position
        self.cards.catch_up()
        expired = touched = failures = lowered = checked = 0
        deadline = time.monotonic() + timeout_s
        last = ""
        while numbers := cards_due(self.ledger.store, last, limits.EXPIRY_CHUNK):
            last = numbers[-1]
            checked += len(numbers)
            futures: list[concurrent.futures.Future[Reply]] = []
            for number in numbers:
                future: concurrent.futures.Future[Reply] = concurrent.futures.Future()
                futures.append(future)
                self.ledger.submit(Request("", MaintainCard(number, as_of_us),
                                           future.set_result, deadline=deadline, system=True))
            for future in futures:
                reply = future.result(timeout=max(1.0, deadline - time.monotonic()) + 5)
                if isinstance(reply, Failure) or reply.maintenance is None:
                    failures += 1
                    continue
                done = reply.maintenance
                if done.points_expired:
                    touched += 1
                    expired += done.points_expired
                lowered += done.tier_before != done.tier_after
        return ExpiryRun(as_of_us, checked, touched, expired, lowered, failures, before)
