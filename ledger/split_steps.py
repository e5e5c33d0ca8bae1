"""The writer's steps that only the split log has (ledger/partitioned.py), kept beside the
engine's pipeline rather than in it:

- sagas: a request whose rows span two servers (a ReplaceCard between partitions placed
  apart) is kept in `ledger_sagas` before the first of its two commits and forgotten after
  the second; a process that starts sends again what a dead one left (`complete_sagas`),
  which completes the half (ledger/handlers/cards.py) or replays;
- settlement marks: after a group holding a close commits, the close's mark in every card
  lane (`mark_periods`), tried again after each commit until every lane has it, and at start.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from eventsourcing.persistence import StoredEvent

from domain.registry import events as registry_events
from ledger.codec import Outcome, encode, topic_of
from ledger.handlers.context import system_meta
from ledger.routing import decode_request, encode_request
from ledger.store import Busy, Conflict, StoreError

if TYPE_CHECKING:
    from ledger.engine import Ledger, _Decided

log = logging.getLogger("ledger.engine")  # the writer's own steps: its log

Saga = tuple[str, str, bytes]  # key space, request id, the request as msgspec bytes


class SplitSteps:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.store: Any = ledger.store  # a PartitionedStore
        # A close's marks not all written (a lane's server away): tried again after every
        # commit until they are (the net debit cap skips an unmarked lane).
        self.marks_pending = False
        self.closed_committed = 0  # the last settlement period whose close is committed

    # ------------------------------------------------------------------------ sagas

    def begin_sagas(self, group: list[_Decided]) -> list[Saga]:
        """The group's requests whose rows span two servers, kept before the first commit
        (a failure here fails the commit, as the store's own would)."""
        spans = self.store.spans_servers
        found: list[Saga] = []
        for decided in group:
            crossing = {(key.key_space, key.request_id)
                        for key, lanes in zip(decided.work.keys, decided.work.key_lanes,
                                              strict=True) if len(lanes) > 1 and spans(lanes)}
            found += [(request.key_space, request.request_id, encode_request(request))
                      for request in decided.batch
                      if (request.key_space, request.request_id) in crossing]
        if found:
            self.store.begin_sagas(found)
        return found

    def end_sagas(self, sagas: list[Saga]) -> None:
        if not sagas:
            return
        try:
            self.store.end_sagas([(k, r) for k, r, _ in sagas])
        except StoreError as error:  # left: the next start sends them again, and they replay
            log.warning("%d finished sagas not yet forgotten: %s", len(sagas), error)

    def complete_sagas(self, timeout_s: float = 30.0) -> int:
        """At start: send again every request a process left between its two servers'
        commits, with its credential and request id: a finished one replays, a half one is
        completed. Returns how many were answered; those are forgotten, the others stay for
        the next start."""
        try:
            pending = self.store.pending_sagas()
        except StoreError as error:
            log.warning("sagas not read: %s", error)
            return 0
        done: list[Saga] = []
        for key_space, request_id, encoded in pending:
            credential_id, command, terminal_id = decode_request(encoded)
            reply = self.ledger.call(credential_id, command, request_id=request_id,
                                     terminal_id=terminal_id, timeout_s=timeout_s)
            if isinstance(reply, Outcome):
                done.append((key_space, request_id, encoded))
            else:
                log.error("saga %s/%s not completed: %s", key_space, request_id, reply)
        self.end_sagas(done)
        return len(done)

    # ------------------------------------------------------------------------ marks

    def committed(self, group: list[_Decided]) -> None:
        """After a group committed: the marks of the closes it holds, or of earlier ones
        still unmarked."""
        closed = _closed_in(group)
        if closed or self.marks_pending:
            self.mark_periods(max(self.closed_committed, closed))

    def mark_periods(self, upto: int | None = None) -> None:
        """The last closed settlement period's mark in every card lane that lacks it (with
        any earlier mark it lacks), each lane on its own. The close's second step, after the
        registry's close commits; repeated at start, so a process that died between the two
        steps leaves no lane without its mark for long. Idempotent: a mark is its lane's
        marks stream at version = period id."""
        store = self.store
        # The last close committed: `upto` after a commit (the registry the decider keeps
        # may hold a later close that is still in flight), the registry's at start.
        closed = self.ledger.registry.open_period - 1 if upto is None else upto
        if closed < 1:
            return
        self.closed_committed = max(self.closed_committed, closed)
        pending = False
        for lane in store.lanes()[1:]:
            stream = store.marks_stream(lane)
            # Any store error leaves the lane unmarked (tried again after the next commit):
            # this runs on the committer after the close committed, and an error escaping it
            # would end that thread with the close unanswered and nothing committed any more.
            try:
                have = store.stream(stream, gt=0)
                done = have[-1].originator_version if have else 0
                if done >= closed:
                    continue
                meta = system_meta(self.ledger.clock_us())
                marks = [registry_events.SettlementPeriodMarked(meta, period, lane)
                         for period in range(done + 1, closed + 1)]
                store.append([StoredEvent(stream, mark.period_id, topic_of(mark), encode(mark))
                              for mark in marks], [])
            except Busy as error:  # a Conflict, but nobody marked it: say so
                pending = True
                log.warning("settlement period %d not yet marked in lane %d: %s", closed,
                            lane, error)
            except Conflict:
                pass  # another process marked it meanwhile
            except StoreError as error:
                pending = True
                log.warning("settlement period %d not yet marked in lane %d: %s", closed,
                            lane, error)
        self.marks_pending = pending


def _closed_in(group: list[_Decided]) -> int:
    """The last settlement period a committed group closed (its replies say)."""
    return max((reply.period_id for decided in group for reply in decided.replies
                if isinstance(reply, Outcome) and reply.period_id
                and reply.kind == "CloseSettlementPeriod"), default=0)
