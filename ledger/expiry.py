"""The periodic job: `loyalty-ledger expire --as-of TIME` and the scheduler in `serve`.

It follows the log for cards that made purchases (the cards that may hold lots or a tier) and
asks the writer, card by card, to record the expiry of every lot whose time is up at `as_of`
and to review the tier against the spend of the window that ended at the last period end
(month boundary in the program's timezone) at or before `as_of`. The writer decides each card
against its current state, so the job is safe beside live traffic and in several processes at
once: a lot's remainder expires once, a tier is lowered once, and a second run at the same
`as_of` changes nothing.
"""

from __future__ import annotations

import concurrent.futures
import time
from dataclasses import dataclass

from domain.cards.events import PurchaseMade
from domain.purchases.commands import MaintainCard
from ledger import limits
from ledger.codec import decode_event
from ledger.engine import Failure, Ledger, Reply, Request

PURCHASE_TOPIC = PurchaseMade.__struct_config__.tag


@dataclass(frozen=True)
class ExpiryRun:
    as_of_us: int
    cards_checked: int
    cards_with_expiry: int
    points_expired: int
    tiers_lowered: int
    failures: int  # cards the writer could not decide (database down): the next run retries


class PointsExpiry:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.last_seen = 0
        self.cards: set[str] = set()  # cards that made a purchase at some time

    def scan(self) -> None:
        """Learn the cards that made purchases since the last scan."""
        while True:
            page = self.ledger.store.read_log(self.last_seen + 1, limits.TAIL_PAGE_ROWS)
            for row in page:
                if row.topic == PURCHASE_TOPIC:
                    event = decode_event(row.state)
                    assert isinstance(event, PurchaseMade)
                    self.cards.add(event.purchase_id.split(".", 1)[0])
            if not page:
                return
            self.last_seen = page[-1].id

    def run(self, as_of_us: int, timeout_s: float = 300.0) -> ExpiryRun:
        self.scan()
        expired = touched = failures = lowered = 0
        numbers = sorted(self.cards)
        deadline = time.monotonic() + timeout_s
        for start in range(0, len(numbers), limits.EXPIRY_CHUNK):
            futures: list[concurrent.futures.Future[Reply]] = []
            for number in numbers[start:start + limits.EXPIRY_CHUNK]:
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
        return ExpiryRun(as_of_us, len(numbers), touched, expired, lowered, failures)
