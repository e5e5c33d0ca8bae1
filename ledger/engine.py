"""The pipeline: one writer per process decides requests in arrival order against in-memory
state and commits the events and request keys of many requests in one transaction (group
commit). It knows no particular command: handlers are found through ledger/handlers' table.

Flow of a batch:
1. follow the log: rows other processes committed since we last looked evict the cards they
   touched from the cache and update the registry (revocations take effect here);
2. run the handlers' batch preparations (every basket of the batch evaluated by one kernel
   call per combination of rule sets);
3. decide each request: replay a known request key, or authenticate, find the handler, let it
   decide against the cached state, and collect its events and key row;
4. hand the batch to the committer, which appends every batch waiting in one transaction and
   only then calls back each request's reply.
A version or key conflict (another process wrote first) evicts what the batch touched, looks up
the batch's keys and re-decides the batch in this process's turn at the log (the log's write
lock held from reading the log to the commit, so the decision cannot be overtaken: `_process`);
a database error answers DATABASE_DOWN and evicts the touched state, so nothing half-applied
stays in memory either. A bug while deciding makes the batch be decided again one request at a
time, so only the request that meets it is refused (Refusal.BUG).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import hmac
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from domain.common import InvalidInput, Principal, Result, Role, luhn_complete
from domain.registry import decide as registry
from ledger import limits
from ledger.codec import (
    REGISTRY_ID,
    SNAPSHOT_TOPIC,
    Outcome,
    card_stream_id,
    decode_outcome,
    encode,
    payload_hash,
    topic_of,
)
from ledger.handlers import HANDLERS, PREPARE, cards_of, related_keys, routed_by
from ledger.handlers.context import Ctx, Services, system_meta
from ledger.handlers.registry import new_token
from ledger.pricing import RuleBook
from ledger.refusals import (
    Denied,
    Failure,
    NotFound,
    Refusal,
    StillWriting,
    Unconfigured,
    internal_failure,
)
from ledger.split_steps import SplitSteps
from ledger.state import State
from ledger.store import Busy, Conflict, EventStore, KeyRow, StoreError, Unavailable
from ledger.work import Reply, Request, Sync, Work, key_space_of

__all__ = ["Failure", "Ledger", "Refusal", "Reply", "Request", "Sync", "key_space_of"]

log = logging.getLogger("ledger.engine")

SYSTEM = Principal(Role.ADMIN)  # who the ledger's own jobs act as
_STOP = object()
_WAKE = object()
_QUEUE_FULL = Failure(Refusal.OVERLOADED, "the ledger's queue is full; retry")


class _Internal(Exception):
    """A commit failed for a reason that is neither a conflict nor an outage (a bug)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


@dataclass
class _Decided:
    """A decided batch on its way to the committer."""

    batch: list[Request]
    replies: list[Reply]
    work: Work


def generate_card_number() -> str:
    import secrets

    return luhn_complete("7" + "".join(secrets.choice("0123456789") for _ in range(14)))


def snapshot_every(size_bytes: int) -> int:
    """Events between a card's snapshots for a state of this size (limits: why)."""
    step = limits.SNAPSHOT_INTERVAL
    wanted = -(-size_bytes // limits.SNAPSHOT_BYTES_PER_EVENT)  # ceil
    return min(limits.SNAPSHOT_INTERVAL_MAX, max(step, -(-wanted // step) * step))


class Ledger:
    def __init__(self, store: EventStore, *, clock_us: Callable[[], int] | None = None,
                 queue_max: int = limits.QUEUE_MAX, batch_max: int = limits.BATCH_MAX,
                 card_cache_max: int = limits.CARD_CACHE_MAX,
                 key_cache_max: int = limits.KEY_CACHE_MAX,
                 card_numbers: Callable[[], str] = generate_card_number,
                 coupon_key: bytes | None = None) -> None:
        self.store = store
        self.clock_us = clock_us or (lambda: time.time_ns() // 1000)
        # Requests, lists of them (a Batch message: one put, not one per operation) and the
        # writer's sentinels. Unbounded itself: `_queued` counts the requests in it, which
        # `queue_max` bounds.
        self.queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.queue_max = queue_max
        self._queued = 0
        self._queued_lock = threading.Lock()
        self._carry: list[Request] = []  # the rest of a list the last batch had no room for
        self.batch_max = batch_max
        self.state = State(store, card_cache_max, key_cache_max)
        self.state.written = self._wait_committer_idle
        # The HMAC key of coupon codes: every process of one deployment needs the same one
        # (LEDGER_COUPON_KEY); without it coupon codes can be neither made nor checked.
        self.services = Services(RuleBook(), coupon_key, card_numbers)
        self._thread: threading.Thread | None = None
        # Decided batches waiting to commit: two in flight keep the disk busy while the
        # next batch is decided; more would only lengthen the redo after a failure.
        self.commits: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._in_flight = 0
        self._in_flight_changed = threading.Condition()
        self._failed = threading.Event()
        self._failures: list[tuple[_Decided, StoreError | _Internal | None]] = []
        self.batches = 0  # statistics for the demo, the benchmarks and the stop line of serve
        self.commits_done = 0
        self.requests_committed = 0
        self.conflicts = 0
        # The split log's own steps (sagas, settlement marks): ledger/split_steps.py.
        self.split_steps = SplitSteps(self) if store.split else None
        # ledger/routing.py's Router when other processes own card partitions (`serve`)
        self.router: Any = None
        if store.split:  # each key goes with its request's rows (ledger/partitioned.py)
            self._decide = self._decide_in_lanes  # type: ignore[method-assign]

    # What tests, the CLI and the servicers read of the writer's state.
    @property
    def registry(self) -> registry.RegistryState:
        return self.state.registry

    @property
    def cards(self) -> Any:
        return self.state.cards

    @property
    def key_cache(self) -> Any:
        return self.state.key_cache

    @property
    def rule_book(self) -> RuleBook:
        return self.services.rule_book

    @property
    def coupon_key(self) -> bytes | None:
        return self.services.coupon_key

    def card(self, card_number: str) -> Any:
        return self.state.card(card_number)

    # -------------------------------------------------------------------------- lifecycle

    def start(self) -> Ledger:
        self.state.start_following()
        self.state.load_registry()
        if self.split_steps is not None:
            self.split_steps.mark_periods()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        if self.split_steps is not None:  # what a process that died left half written
            self.split_steps.complete_sagas()
        return self


    def stop(self) -> None:
        """Decide and commit everything already queued, then stop the writer."""
        if self._thread is not None:
            self.queue.put(_STOP)
            self._thread.join()
            self._thread = None


    def submit(self, request: Request) -> None:
        """Queue a request; its callback runs on the writer thread once it is durable (or,
        when another process owns its card's partition, once that one answers)."""
        if self.router is not None and self.router.forward(request):
            return
        self.enqueue(request)

    def submit_all(self, requests: list[Request]) -> None:
        """`submit` for many (a Batch message's operations): those this process decides go
        into the queue together."""
        router = self.router
        mine = requests if router is None else [r for r in requests if not router.forward(r)]
        if mine:
            self.enqueue_all(mine)

    def enqueue(self, request: Request) -> None:
        """Queue a request for this process's writer, whoever owns its card."""
        if self._admit(1):
            self.queue.put(request)
        else:
            request.callback(_QUEUE_FULL)

    def enqueue_all(self, requests: list[Request]) -> None:
        """Queue requests, in order, as one item; those beyond `queue_max` waiting requests
        are refused OVERLOADED at once (the first ones are queued)."""
        taken = self._admit(len(requests))
        if taken == 1:
            self.queue.put(requests[0])
        elif taken:
            self.queue.put(list(requests[:taken]))
        for request in requests[taken:]:
            request.callback(_QUEUE_FULL)

    def _admit(self, wanted: int) -> int:
        """How many of `wanted` more requests fit under `queue_max`; counted as queued."""
        with self._queued_lock:
            taken = min(wanted, max(0, self.queue_max - self._queued))
            self._queued += taken
        return taken

    @property
    def queued(self) -> int:
        """Requests waiting for the writer (not yet in a batch)."""
        return self._queued


    def call(self, credential_id: str, command: Any, *, request_id: str = "",
             terminal_id: str = "", timeout_s: float = 30.0) -> Reply:
        """Submit and wait: for the CLI, the demo and tests."""
        future: concurrent.futures.Future[Reply] = concurrent.futures.Future()
        self.submit(Request(credential_id, command, future.set_result, "", request_id,
                            terminal_id, time.monotonic() + timeout_s))
        return future.result(timeout_s + 5)


    def sync(self, timeout_s: float = 10.0) -> None:
        """Wait until the writer has followed the log (from any thread but the writer's)."""
        self.call("", Sync(), timeout_s=timeout_s)


    def authenticate(self, token: str) -> registry.Credential | None:
        parts = token.split("_")
        if len(parts) < 3 or parts[0] != "llk":
            return None
        credential = self.registry.credentials.get(parts[1])
        if credential is None or credential.revoked:
            return None
        digest = hashlib.sha256(token.encode()).digest()
        return credential if hmac.compare_digest(digest, credential.token_sha256) else None


    def bootstrap_admin(self, label: str = "bootstrap") -> str:
        """Write a new ADMIN credential directly (for `init`); returns its token."""
        credential_id, token, digest = new_token()
        event = registry.ev.CredentialCreated(system_meta(self.clock_us()), credential_id,
                                              Role.ADMIN, "", "", "", label, digest)
        self.state.load_registry()
        self.store.append([StoredEvent(REGISTRY_ID, self.registry.version + 1,
                                       topic_of(event), encode(event))], [])
        self.state.load_registry()
        return token

    # -------------------------------------------------------------------------- the writer

    def _run(self) -> None:
        """The decider: takes batches off the queue, decides them and hands them to the
        committer, so deciding batch N+1 overlaps the commit (and fsync) of batch N."""
        committer = threading.Thread(target=self._commit_loop, name="ledger-committer",
                                     daemon=True)
        committer.start()
        stopping = False
        while not stopping:
            if self._carry:
                first: Any = self._carry
                self._carry = []
            else:
                first = self.queue.get()
            if first is _STOP:
                break
            if first is _WAKE:  # a commit failed while the queue was empty
                self._redo_failed()
                continue
            batch, stopping = self._take(first)
            try:
                self._redo_failed()
                decided = self._decide_batch(batch)
                if decided is not None:
                    self._hand_over(decided)
            except Exception:  # a bug must not kill the writer and hang every caller
                log.exception("writer failed on a batch of %d; deciding them one by one",
                              len(batch))
                self._isolate(batch)
        self._wait_committer_idle()
        self._redo_failed()
        self.commits.put(_STOP)
        committer.join()


    def _take(self, first: Any) -> tuple[list[Request], bool]:
        """The next batch: `first` and what else is queued, up to `batch_max` requests (the
        rest of a list that does not fit is kept for the next one); and whether the writer
        was asked to stop."""
        batch: list[Request] = []
        stopping = False
        item = first
        while True:
            if type(item) is list:
                room = self.batch_max - len(batch)
                if len(item) > room:
                    batch += item[:room]
                    self._carry = item[room:]
                    break
                batch += item
            elif item is _STOP:
                stopping = True
                break
            elif item is not _WAKE:
                batch.append(item)
            if len(batch) >= self.batch_max:
                break
            try:
                item = self.queue.get_nowait()
            except queue.Empty:
                break
        with self._queued_lock:
            self._queued -= len(batch)
        return batch, stopping

    def _isolate(self, batch: list[Request]) -> None:
        """After a bug while deciding a batch: forget all cached state (the failed attempt may
        have changed it) and decide each request on its own, so that only the request that
        meets the bug is answered INTERNAL and nothing of it is written."""
        self._wait_committer_idle()
        self.state.drop()
        self.state.stale = True
        for request in batch:
            try:
                self._process([request])
            except Exception:
                self.state.drop()
                self.state.stale = True
                request.callback(internal_failure(
                    f"deciding {type(request.command).__name__} {request.request_id!r}"))


    def _hand_over(self, decided: _Decided) -> None:
        with self._in_flight_changed:
            self._in_flight += 1
        self.commits.put(decided)


    def _wait_committer_idle(self) -> None:
        with self._in_flight_changed:
            self._in_flight_changed.wait_for(lambda: self._in_flight == 0)


    def _decide_batch(self, batch: list[Request]) -> _Decided | None:
        """Follow the log, then decide every request against the cached state. Returns None
        when the whole batch was answered already (nothing to write, or database down)."""
        self.batches += 1
        now_us = self.clock_us()
        work = Work()
        try:
            self.state.follow_log(force=any(type(request.command) is Sync for request in batch))
            self.state.prefetch(cards_of(batch))
            self.state.keep_positions()  # only while an agreement sets a net debit cap
            for prepare in PREPARE:
                prepare(batch, work, self.state, self.services.rule_book, now_us)
            replies = [self._decide(request, work, now_us) for request in batch]
        except Unavailable as error:  # a card load or key lookup could not reach the db
            self.state.forget(work)
            self._answer(batch, Failure(Refusal.DATABASE_DOWN, f"database unavailable: {error}"))
            return None
        decided = _Decided(batch, replies, work)
        self._speculate(work)
        if not work.stored and not work.keys and self._in_flight == 0:
            self._reply(decided)  # reads and replays only: nothing to wait for
            return None
        return decided


    def _speculate(self, work: Work) -> None:
        """Make the batch's keys and snapshots visible to the next batch before the commit;
        if the commit fails, `forget` takes them back and everything after is re-decided."""
        self.state.speculate(work)
        step = limits.SNAPSHOT_INTERVAL
        for stream_id, state in work.touched.items():
            before = work.versions_before[stream_id]
            if state.version // step != before // step:
                encoded = encode(state)
                every = snapshot_every(len(encoded))
                most = limits.SNAPSHOT_INTERVAL_MAX  # whatever the size: a tail stays < 100
                if (state.version // every != before // every
                        or state.version // most != before // most):
                    work.snapshots.append(StoredEvent(stream_id, state.version, SNAPSHOT_TOPIC,
                                                      encoded))

    def _commit_loop(self) -> None:
        """The committer: appends decided batches in order, every batch waiting at that
        moment in one transaction (while one commit waits for the disk, the decider's next
        batches pile up here and share the next fsync); replies once each is durable.
        After a failure it commits nothing more until the decider has re-decided."""
        while True:
            group = [self.commits.get()]
            if group[0] is _STOP:
                return
            rows = len(group[0].work.stored)
            while rows < limits.BATCH_MAX:
                try:
                    decided = self.commits.get_nowait()
                except queue.Empty:
                    break
                if decided is _STOP:  # never: the decider waits for us to be idle first
                    self.commits.put(_STOP)
                    break
                group.append(decided)
                rows += len(decided.work.stored)
            self._commit_group(group)
            with self._in_flight_changed:
                self._in_flight -= len(group)
                self._in_flight_changed.notify_all()
            if self._failed.is_set() and self._in_flight == 0:
                # The failed batches' callers are waiting on a redo that only the decider can
                # do: wake it even if no new request arrives.
                self.queue.put(_WAKE)


    def _commit_group(self, group: list[_Decided]) -> None:
        if self._failed.is_set():
            self._failures.extend((decided, None) for decided in group)
            return
        error: StoreError | _Internal | None = None
        try:
            events = [e for d in group for e in d.work.stored]
            keys = [k for d in group for k in d.work.keys]
            snapshots = [s for d in group for s in d.work.snapshots]
            if self.split_steps is not None:
                sagas = self.split_steps.begin_sagas(group)  # before the first server commits
                ids = self.store.append(events, keys, snapshots,
                                        [lanes for d in group for lanes in d.work.key_lanes])
                self.split_steps.end_sagas(sagas)
            else:
                ids = self.store.append(events, keys, snapshots)
        except (Conflict, Unavailable) as caught:
            error = caught
        except Exception:  # a bug: answer INTERNAL rather than hang
            error = _Internal(internal_failure("committing a group of batches"))
        if error is not None:
            self.state.stale = True
            self._failed.set()
            self._failures.append((group[0], error))
            self._failures.extend((decided, None) for decided in group[1:])
            return
        self.state.committed(events, ids)
        if self.split_steps is not None:
            self.split_steps.committed(group)
        self.commits_done += 1
        self.requests_committed += sum(len(decided.batch) for decided in group)
        for decided in group:
            self._reply(decided)


    def _redo_failed(self) -> None:
        """After a failed commit: wait until the committer has set aside every batch decided
        on top of it, forget their state, and decide them again, in order, in one turn of
        this process at the log (`_process`)."""
        if not self._failed.is_set():
            return
        self._wait_committer_idle()
        failures = list(self._failures)
        self._failures.clear()
        touched = [state.card_number for decided, _ in failures
                   for state in decided.work.touched.values()]
        for decided, _ in reversed(failures):
            self.state.forget(decided.work)
        self._failed.clear()
        unavailable = next((e for _, e in failures if isinstance(e, Unavailable)), None)
        internal = next((e for _, e in failures if isinstance(e, _Internal)), None)
        if internal is not None:
            for decided, _ in failures:
                self._answer(decided.batch, internal.failure)
            return
        if unavailable is not None:
            for decided, _ in failures:
                self._answer(decided.batch, Failure(Refusal.DATABASE_DOWN,
                                                    f"database unavailable: {unavailable}"))
            return
        self.conflicts += len(failures)
        requests = [request for decided, _ in failures for request in decided.batch]
        try:
            self._process(requests, touched)
        except Exception:  # a bug while redoing: the redone requests' callers still hear
            log.exception("writer failed redoing %d requests; deciding them one by one",
                          len(requests))
            self._isolate(requests)


    def _reply(self, decided: _Decided) -> None:
        for request, reply in zip(decided.batch, decided.replies, strict=True):
            request.callback(reply)


    def _process(self, batch: list[Request], warm: list[str] | tuple[str, ...] = ()) -> None:
        """Decide and commit a batch in this process's turn at the log: the slow path, after
        a conflict with another process (nothing else is decided meanwhile).

        Outside the turn, so that it stays short: learn which of the batch's request keys
        other processes recorded, follow the log and load the cards the failed attempt
        touched (`warm`). In the turn (the log's write lock, `EventStore.turn`): follow the
        log again, decide, commit. No other process can commit in between, so the decision
        is made on every card's latest state and cannot conflict on a version: processes
        contending for one card take turns in the database's lock queue instead of
        invalidating each other's decisions, and every request is decided. The bounds
        answer as the contract says: no turn within limits.TURN_WAIT_MAX_S (or before the
        requests' deadlines) is RESOURCE_EXHAUSTED (DEADLINE_EXCEEDED once a request's
        deadline has passed); UNAVAILABLE only when the database failed."""
        if not self._learn_keys(batch):
            return
        self._warm(warm)
        for _ in range(limits.TURN_CONFLICTS_MAX):
            decided: _Decided | None = None
            sagas: list[tuple[str, str, bytes]] = []
            answered = False  # _decide_batch replied itself (nothing to write, or db down)
            ids: list[int] = []
            wait_s = self._turn_wait(batch)
            until = time.monotonic() + wait_s
            try:
                with self.store.turn(wait_s) as append:
                    self.state.stale = True  # read the log in the turn, whatever the watch says
                    decided = self._decide_batch(batch)
                    if decided is None:
                        answered = True
                    else:
                        if self.split_steps is not None:  # sagas kept before either commits
                            sagas = self.split_steps.begin_sagas([decided])
                            ids = append(decided.work.stored, decided.work.keys,
                                         decided.work.snapshots, decided.work.key_lanes)
                        else:
                            ids = append(decided.work.stored, decided.work.keys,
                                         decided.work.snapshots)
            except Busy:
                self.state.stale = True
                if decided is not None:
                    self.state.forget(decided.work)
                if not answered:
                    self._answer_busy(batch, until)
                return
            except Conflict:  # a request key another process recorded meanwhile
                self.state.stale = True
                if decided is not None:
                    self.state.forget(decided.work)
                if answered or not self._learn_keys(batch):
                    return
                continue
            except Unavailable as error:
                self.state.stale = True
                if decided is not None:
                    self.state.forget(decided.work)
                if not answered:
                    self._answer(batch, Failure(Refusal.DATABASE_DOWN,
                                                f"database unavailable: {error}"))
                return
            if answered:
                return
            assert decided is not None
            self.state.committed(decided.work.stored, ids)
            if self.split_steps is not None:
                self.split_steps.end_sagas(sagas)
                self.split_steps.committed([decided])
            self._reply(decided)
            return
        log.error("a batch of %d still conflicted on request keys after %d turns",
                  len(batch), limits.TURN_CONFLICTS_MAX)
        self._answer(batch, Failure(Refusal.OVERLOADED,
                                    "these requests' keys are being recorded by another "
                                    "process at the same moment; retry"))


    def _warm(self, numbers: list[str] | tuple[str, ...]) -> None:
        """Follow the log and load these cards now, outside the turn, so that the turn only
        reloads what changed in the meantime."""
        try:
            self.state.stale = True
            self.state.follow_log()
            for number in dict.fromkeys(numbers):
                self.state.card(number)
        except Unavailable:
            pass  # the turn meets the outage again and answers it


    @staticmethod
    def _turn_wait(batch: list[Request]) -> float:
        """How long to wait for the turn: limits.TURN_WAIT_MAX_S, or less when every
        request's deadline comes sooner."""
        remaining = max(request.deadline for request in batch) - time.monotonic()
        return max(0.001, min(limits.TURN_WAIT_MAX_S, remaining))


    @staticmethod
    def _answer_busy(batch: list[Request], until: float) -> None:
        """No turn in time (`until`): the database answered but other writers held the log.
        A request whose deadline came within the wait passed it waiting."""
        for request in batch:
            request.callback(
                Failure(Refusal.DEADLINE_PASSED, "the deadline passed while the ledger waited for "
                        "its turn to write this card") if request.deadline <= until else
                Failure(Refusal.OVERLOADED, "the ledger's log stayed busy for "
                        f"{limits.TURN_WAIT_MAX_S:g} s (overloaded); retry"))


    @staticmethod
    def _answer(batch: list[Request], failure: Failure) -> None:
        for request in batch:
            request.callback(failure)


    def _decide(self, request: Request, work: Work, now_us: int) -> Reply:
        if type(request.command) is Sync:
            return Outcome(int(Result.APPROVED), "Sync")  # the log was followed: done
        if request.deadline < time.monotonic():
            return Failure(Refusal.DEADLINE_PASSED, "the deadline passed before the ledger decided")
        handler = HANDLERS[type(request.command)]
        if request.system:
            return self._guarded(handler, request, SYSTEM, work, now_us)
        credential = self.registry.credentials.get(request.credential_id)
        if credential is None or credential.revoked:
            return Failure(Refusal.UNAUTHENTICATED, "unknown or revoked credential")
        # The key space comes from the registry as the writer sees it (fresh), never from a
        # caller that may have looked at a stale copy.
        request.key_space = key_space_of(request.credential_id, credential.principal,
                                         request.terminal_id)
        if not request.request_id:
            return self._guarded(handler, request, credential.principal, work, now_us)
        pair = (request.key_space, request.request_id)
        digest = payload_hash(request.command)
        known = self.state.known_key(work, pair)
        if known is not None:
            return _replay(known, digest)
        outcome = self._guarded(handler, request, credential.principal, work, now_us)
        if isinstance(outcome, Failure):
            return outcome  # refused: nothing to remember, a corrected retry may follow
        stored = msgspec.structs.replace(outcome, token="") if outcome.token else outcome
        work.add_key(KeyRow(request.key_space, request.request_id, digest, encode(stored)))
        return outcome


    def _decide_in_lanes(self, request: Request, work: Work, now_us: int) -> Reply:
        """`_decide`, and the lanes of the split log each key it added goes with: those of
        the request's events; with none, its card's; with no card either, every lane (a
        reversal's tombstone must meet the original wherever its card is)."""
        events, keys = len(work.stored), len(work.keys)
        reply = Ledger._decide(self, request, work, now_us)
        added = len(work.keys) - keys
        if added:
            lane_of = self.store.lane_of
            # in the order the request wrote them: the store commits the first one's
            # server first (ledger/partitioned.py _commit_order)
            lanes = tuple(dict.fromkeys(lane_of(e.originator_id)
                                        for e in work.stored[events:]))
            if not lanes and (card := routed_by(request.command)):
                lanes = (lane_of(card_stream_id(card)),)
            work.key_lanes.extend([lanes] * added)
        return reply

    def _learn_keys(self, batch: list[Request]) -> bool:
        """After a conflict: which of the batch's keys did another writer already record?"""
        pairs = [(r.key_space, r.request_id) for r in batch if r.request_id]
        pairs += [pair for r in batch for pair in related_keys(r)]
        try:
            found = self.store.find_keys(pairs)
        except Unavailable as error:
            self._answer(batch, Failure(Refusal.DATABASE_DOWN, f"database unavailable: {error}"))
            return False
        self.state.learn_keys(found)
        return True

    def _guarded(self, handler: Callable[[Ctx], Outcome], request: Request,
                 principal: Principal, work: Work, now_us: int) -> Reply:
        """The handler's outcome, or the refusal it raised."""
        try:
            return handler(Ctx(request, principal, work, now_us, self.state, self.services))
        except Unconfigured as missing:
            return Failure(Refusal.NOT_CONFIGURED, str(missing))
        except InvalidInput as error:
            return Failure(Refusal.INVALID_INPUT, str(error))
        except Denied as denied:
            return Failure(Refusal.DENIED, str(denied))
        except NotFound as missing:
            return Failure(Refusal.NOT_FOUND, str(missing))
        except StillWriting as busy:
            return Failure(Refusal.OVERLOADED, str(busy))
        except Unavailable as error:  # a handler's own read (ledger/handlers/late.py)
            return Failure(Refusal.DATABASE_DOWN, f"database unavailable: {error}")


def _replay(known: KeyRow, digest: bytes) -> Outcome:
    if not known.payload_hash:
        return decode_outcome(known.outcome)  # the reversal marker or the tombstone
    if known.payload_hash != digest:
        return Outcome(int(Result.DUPLICATE_REQUEST_MISMATCH))
    return msgspec.structs.replace(decode_outcome(known.outcome), replayed=True)
