"""The engine: one writer thread decides requests in arrival order against in-memory state and
commits the events and request keys of many requests in one transaction (group commit).

Flow of a batch:
1. follow the log: rows other processes committed since we last looked evict the cards they
   touched from the cache and update the registry (revocations take effect here);
2. decide each request: replay a known request key, or check scope, decide, evolve the cached
   state and collect the events and the key row;
3. append everything in one transaction; only then call back each request's reply.
A version or key conflict (another process wrote first) evicts what the batch touched, looks up
the batch's keys and re-decides the batch in this process's turn at the log (the log's write
lock held from reading the log to the commit, so the decision cannot be overtaken: `_process`);
a database error answers UNAVAILABLE and evicts the touched state, so nothing half-applied
stays in memory either.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import datetime as dt
import hashlib
import hmac
import logging
import math
import queue
import secrets
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from eventsourcing.persistence import StoredEvent

from domain import access
from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent
from domain.common import (
    APPROVALS,
    CardStatus,
    InvalidInput,
    Meta,
    Principal,
    Result,
    Role,
    shown,
)
from domain.coupons import decide as coupons
from domain.coupons.model import (
    Coupon,
    DefineCouponCampaign,
    IssueCoupon,
    ListCoupons,
    code_of,
    coupon_of_code,
)
from domain.currency import major_to_minor
from domain.points import purse
from domain.points.program import DefineProgram
from domain.purchases import commands as pc
from domain.purchases import decide as purchases
from domain.registry import commands as rc
from domain.registry import decide as registry
from domain.registry.events import RegistryEvent
from domain.rules.commands import GetRuleSet, ListRuleSets, PublishRuleSet
from domain.rules.model import Basket, RuleSet
from ledger import limits
from ledger.codec import (
    REGISTRY_ID,
    SNAPSHOT_TOPIC,
    CouponUseView,
    CouponView,
    MaintenanceView,
    Outcome,
    PurchaseView,
    card_stream_id,
    card_view,
    decode_card_state,
    decode_event,
    decode_outcome,
    encode,
    payload_hash,
    topic_of,
)
from ledger.pricing import RuleBook, key_of
from ledger.store import Busy, Conflict, EventStore, KeyRow, StoreError, Unavailable

log = logging.getLogger("ledger.engine")

INVALID_ARGUMENT = "INVALID_ARGUMENT"
PERMISSION_DENIED = "PERMISSION_DENIED"
UNAUTHENTICATED = "UNAUTHENTICATED"
UNAVAILABLE = "UNAVAILABLE"
RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
NOT_FOUND = "NOT_FOUND"
FAILED_PRECONDITION = "FAILED_PRECONDITION"
INTERNAL = "INTERNAL"


class Failure(msgspec.Struct, frozen=True):
    """A request that was not decided: a gRPC status code and a message. Nothing written."""

    code: str
    message: str


Reply = Outcome | Failure


def internal_failure(what: str) -> Failure:
    """For an unexpected exception (a bug): log it with its traceback under a short reference
    and answer INTERNAL with only that reference, never the exception's class or text. Call it
    inside the `except` block."""
    reference = secrets.token_hex(4)
    log.exception("internal error %s: %s", reference, what)
    return Failure(INTERNAL, f"internal error (reference {reference}); nothing was written "
                   "for this request unless a retry with the same request_id says so")


class _Internal(Exception):
    """A commit failed for a reason that is neither a conflict nor an outage (a bug)."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(failure.message)
        self.failure = failure


class Denied(Exception):
    pass


class NotFound(Exception):
    pass


class Unconfigured(Exception):
    """The operation needs configuration this server does not have (the coupon key)."""


@dataclass(slots=True)
class Request:
    credential_id: str
    command: Any
    callback: Callable[[Reply], None]
    key_space: str = ""  # "" for reads
    request_id: str = ""  # "" for reads
    terminal_id: str = ""  # the terminal a GATEWAY acts for
    deadline: float = math.inf  # time.monotonic() value
    system: bool = False  # the ledger's own jobs (expiry): no credential, never from the wire


class Sync(msgspec.Struct, frozen=True):
    """A no-op that makes the writer follow the log: after its reply, this process has seen
    everything other processes committed before it was submitted."""


SYSTEM = Principal(Role.ADMIN)  # who the ledger's own jobs act as
_STOP = object()
_WAKE = object()
_MISSING = object()


def key_space_of(credential_id: str, principal: Principal, terminal_id: str = "") -> str:
    """The contract's key space: the terminal for TERMINAL and GATEWAY principals (a gateway
    acting for terminal T shares T's), the credential for every other role."""
    if principal.role == Role.TERMINAL:
        return "t:" + principal.terminal_id
    if principal.role == Role.GATEWAY and terminal_id:
        return "t:" + terminal_id
    return "c:" + credential_id


def reversal_marker(key_space: str) -> str:
    return key_space + "#reversed"


@dataclass
class _Work:
    """What one attempt at a batch decided: events, keys, and the state it touched."""

    stored: list[StoredEvent] = field(default_factory=list)
    keys: list[KeyRow] = field(default_factory=list)
    keys_by_pair: dict[tuple[str, str], KeyRow] = field(default_factory=dict)
    touched: dict[uuid.UUID, cards.CardState] = field(default_factory=dict)
    versions_before: dict[uuid.UUID, int] = field(default_factory=dict)
    registry_touched: bool = False

    snapshots: list[StoredEvent] = field(default_factory=list)
    # Purchases of the batch evaluated together before deciding: id(request) -> (rule-set key,
    # basket, evaluation). A decision whose inputs changed meanwhile evaluates again.
    evaluations: dict[int, tuple[tuple[str, ...], Basket, purchases.Evaluation]] = field(
        default_factory=dict)

    def add_key(self, row: KeyRow) -> None:
        self.keys.append(row)
        self.keys_by_pair[(row.key_space, row.request_id)] = row


@dataclass
class _Decided:
    """A decided batch on its way to the committer."""

    batch: list[Request]
    replies: list[Reply]
    work: _Work


def _system_meta(now_us: int) -> Meta:
    return Meta("", "system", 0, "", "", "", now_us)


def new_token() -> tuple[str, str, bytes]:
    """A credential id, its bearer token (shown once) and the token's SHA-256 (stored)."""
    credential_id = "c" + secrets.token_hex(8)
    token = f"llk_{credential_id}_{secrets.token_urlsafe(32)}"
    return credential_id, token, hashlib.sha256(token.encode()).digest()


def generate_card_number() -> str:
    from domain.common import luhn_complete

    return luhn_complete("7" + "".join(secrets.choice("0123456789") for _ in range(14)))


class Ledger:
    def __init__(self, store: EventStore, *, clock_us: Callable[[], int] | None = None,
                 queue_max: int = limits.QUEUE_MAX, batch_max: int = limits.BATCH_MAX,
                 card_cache_max: int = limits.CARD_CACHE_MAX,
                 key_cache_max: int = limits.KEY_CACHE_MAX,
                 card_numbers: Callable[[], str] = generate_card_number,
                 coupon_key: bytes | None = None) -> None:
        self.store = store
        self.clock_us = clock_us or (lambda: time.time_ns() // 1000)
        self.queue: queue.Queue[Any] = queue.Queue(maxsize=queue_max)
        self.batch_max = batch_max
        self.card_cache_max = card_cache_max
        self.key_cache_max = key_cache_max
        self.card_numbers = card_numbers
        # The HMAC key of coupon codes: every process of one deployment needs the same one
        # (LEDGER_COUPON_KEY); without it coupon codes can be neither made nor checked.
        self.coupon_key = coupon_key
        self.cards: OrderedDict[uuid.UUID, cards.CardState | None] = OrderedDict()
        self.key_cache: OrderedDict[tuple[str, str], KeyRow] = OrderedDict()
        self.registry = registry.RegistryState()
        self.last_seen = 0
        self._thread: threading.Thread | None = None
        # Decided batches waiting to commit: two in flight keep the disk busy while the
        # next batch is decided; more would only lengthen the redo after a failure.
        self.commits: queue.Queue[Any] = queue.Queue(maxsize=2)
        self._in_flight = 0
        self._in_flight_changed = threading.Condition()
        self._failed = threading.Event()
        self._failures: list[tuple[_Decided, StoreError | _Internal | None]] = []
        self._own_ranges: collections.deque[tuple[int, int]] = collections.deque()
        self._stale = False  # a commit failed: read the log before deciding again
        self.batches = 0  # statistics for the demo, the benchmarks and the stop line of serve
        self.commits_done = 0
        self.requests_committed = 0
        self.conflicts = 0
        self._handlers: dict[type, Callable[[Request, Principal, _Work, int], Outcome]] = {
            cc.IssueCard: self._issue, cc.ActivateCard: self._card_action,
            cc.BlockCard: self._card_action, cc.UnblockCard: self._card_action,
            cc.CloseCard: self._card_action, cc.ReplaceCard: self._replace,
            cc.LoadValue: self._load, cc.Authorize: self._authorize,
            cc.Capture: self._follow_up, cc.Void: self._follow_up, cc.Refund: self._follow_up,
            cc.Reverse: self._reverse, cc.GetCard: self._read, cc.GetBalance: self._read,
            rc.RegisterPartner: self._registry, rc.RegisterStore: self._registry,
            rc.RegisterTerminal: self._registry, rc.CreateCredential: self._registry,
            rc.RevokeCredential: self._registry, rc.DefineCardClass: self._registry,
            DefineProgram: self._registry, PublishRuleSet: self._registry,
            DefineCouponCampaign: self._registry, IssueCoupon: self._issue_coupon,
            ListCoupons: self._list_coupons,
            GetRuleSet: self._rules_read, ListRuleSets: self._rules_read,
            pc.Purchase: self._purchase, pc.SimulatePurchase: self._purchase,
            pc.Return: self._return, pc.MaintainCard: self._maintain,
        }
        self.rule_book = RuleBook()

    # -------------------------------------------------------------------------- lifecycle

    def start(self) -> Ledger:
        self.last_seen = self.store.max_notification_id()
        self._load_registry()
        self._thread = threading.Thread(target=self._run, name="ledger-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Decide and commit everything already queued, then stop the writer."""
        if self._thread is not None:
            self.queue.put(_STOP)
            self._thread.join()
            self._thread = None

    def submit(self, request: Request) -> None:
        """Queue a request; its callback runs on the writer thread once it is durable."""
        try:
            self.queue.put_nowait(request)
        except queue.Full:
            request.callback(Failure(RESOURCE_EXHAUSTED, "the ledger's queue is full; retry"))

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
        event = registry.ev.CredentialCreated(_system_meta(self.clock_us()), credential_id,
                                              Role.ADMIN, "", "", "", label, digest)
        self._load_registry()
        self.store.append([StoredEvent(REGISTRY_ID, self.registry.version + 1,
                                       topic_of(event), encode(event))], [])
        self._load_registry()
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
            first = self.queue.get()
            if first is _STOP:
                break
            if first is _WAKE:  # a commit failed while the queue was empty
                self._redo_failed()
                continue
            batch = [first]
            while len(batch) < self.batch_max:
                try:
                    item = self.queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                if item is not _WAKE:
                    batch.append(item)
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

    def _isolate(self, batch: list[Request]) -> None:
        """After a bug while deciding a batch: forget all cached state (the failed attempt may
        have changed it) and decide each request on its own, so that only the request that
        meets the bug is answered INTERNAL and nothing of it is written."""
        self._wait_committer_idle()
        self._drop_state()
        self._stale = True
        for request in batch:
            try:
                self._process([request])
            except Exception:
                self._drop_state()
                self._stale = True
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
        work = _Work()
        try:
            self._follow_log(force=any(type(request.command) is Sync for request in batch))
            self._evaluate_purchases(batch, work, now_us)
            replies = [self._decide(request, work, now_us) for request in batch]
        except Unavailable as error:  # a card load or key lookup could not reach the db
            self._forget(work)
            self._answer(batch, Failure(UNAVAILABLE, f"database unavailable: {error}"))
            return None
        decided = _Decided(batch, replies, work)
        self._speculate(work)
        if not work.stored and not work.keys and self._in_flight == 0:
            self._reply(decided)  # reads and replays only: nothing to wait for
            return None
        return decided

    def _speculate(self, work: _Work) -> None:
        """Make the batch's keys and snapshots visible to the next batch before the commit;
        if the commit fails, `_forget` takes them back and everything after is re-decided."""
        for row in work.keys:
            self.key_cache[(row.key_space, row.request_id)] = row
        while len(self.key_cache) > self.key_cache_max:
            self.key_cache.popitem(last=False)
        for stream_id, state in work.touched.items():
            before = work.versions_before[stream_id]
            if state.version // limits.SNAPSHOT_INTERVAL != before // limits.SNAPSHOT_INTERVAL:
                work.snapshots.append(StoredEvent(stream_id, state.version, SNAPSHOT_TOPIC,
                                                  encode(state)))

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
                # do: wake it even if no new request arrives (a full queue wakes it anyway).
                with contextlib.suppress(queue.Full):
                    self.queue.put_nowait(_WAKE)

    def _commit_group(self, group: list[_Decided]) -> None:
        if self._failed.is_set():
            self._failures.extend((decided, None) for decided in group)
            return
        error: StoreError | _Internal | None = None
        try:
            ids = self.store.append([e for d in group for e in d.work.stored],
                                    [k for d in group for k in d.work.keys],
                                    [s for d in group for s in d.work.snapshots])
        except (Conflict, Unavailable) as caught:
            error = caught
        except Exception:  # a bug: answer INTERNAL rather than hang
            error = _Internal(internal_failure("committing a group of batches"))
        if error is not None:
            self._stale = True
            self._failed.set()
            self._failures.append((group[0], error))
            self._failures.extend((decided, None) for decided in group[1:])
            return
        if ids:
            self._own_ranges.append((ids[0], ids[-1]))
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
            self._forget(decided.work)
        self._failed.clear()
        unavailable = next((e for _, e in failures if isinstance(e, Unavailable)), None)
        internal = next((e for _, e in failures if isinstance(e, _Internal)), None)
        if internal is not None:
            for decided, _ in failures:
                self._answer(decided.batch, internal.failure)
            return
        if unavailable is not None:
            for decided, _ in failures:
                self._answer(decided.batch, Failure(UNAVAILABLE,
                                                    f"database unavailable: {unavailable}"))
            return
        self.conflicts += len(failures)
        self._process([request for decided, _ in failures for request in decided.batch],
                      touched)

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
            answered = False  # _decide_batch replied itself (nothing to write, or db down)
            ids: list[int] = []
            wait_s = self._turn_wait(batch)
            until = time.monotonic() + wait_s
            try:
                with self.store.turn(wait_s) as append:
                    self._stale = True  # read the log in the turn, whatever the watch says
                    decided = self._decide_batch(batch)
                    if decided is None:
                        answered = True
                    else:
                        ids = append(decided.work.stored, decided.work.keys,
                                     decided.work.snapshots)
            except Busy:
                self._stale = True
                if decided is not None:
                    self._forget(decided.work)
                if not answered:
                    self._answer_busy(batch, until)
                return
            except Conflict:  # a request key another process recorded meanwhile
                self._stale = True
                if decided is not None:
                    self._forget(decided.work)
                if answered or not self._learn_keys(batch):
                    return
                continue
            except Unavailable as error:
                self._stale = True
                if decided is not None:
                    self._forget(decided.work)
                if not answered:
                    self._answer(batch, Failure(UNAVAILABLE, f"database unavailable: {error}"))
                return
            if answered:
                return
            assert decided is not None
            if ids:
                self._own_ranges.append((ids[0], ids[-1]))
            self._reply(decided)
            return
        log.error("a batch of %d still conflicted on request keys after %d turns",
                  len(batch), limits.TURN_CONFLICTS_MAX)
        self._answer(batch, Failure(RESOURCE_EXHAUSTED,
                                    "these requests' keys are being recorded by another "
                                    "process at the same moment; retry"))

    def _warm(self, numbers: list[str] | tuple[str, ...]) -> None:
        """Follow the log and load these cards now, outside the turn, so that the turn only
        reloads what changed in the meantime."""
        try:
            self._stale = True
            self._follow_log()
            for number in dict.fromkeys(numbers):
                self.card(number)
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
                Failure(DEADLINE_EXCEEDED, "the deadline passed while the ledger waited for "
                        "its turn to write this card") if request.deadline <= until else
                Failure(RESOURCE_EXHAUSTED, "the ledger's log stayed busy for "
                        f"{limits.TURN_WAIT_MAX_S:g} s (overloaded); retry"))

    @staticmethod
    def _answer(batch: list[Request], failure: Failure) -> None:
        for request in batch:
            request.callback(failure)

    def _decide(self, request: Request, work: _Work, now_us: int) -> Reply:
        if type(request.command) is Sync:
            return Outcome(int(Result.APPROVED), "Sync")  # the log was followed: done
        if request.deadline < time.monotonic():
            return Failure(DEADLINE_EXCEEDED, "the deadline passed before the ledger decided")
        handler = self._handlers[type(request.command)]
        if request.system:
            return _guarded(handler, request, SYSTEM, work, now_us)
        credential = self.registry.credentials.get(request.credential_id)
        if credential is None or credential.revoked:
            return Failure(UNAUTHENTICATED, "unknown or revoked credential")
        # The key space comes from the registry as the writer sees it (fresh), never from a
        # caller that may have looked at a stale copy.
        request.key_space = key_space_of(request.credential_id, credential.principal,
                                         request.terminal_id)
        if not request.request_id:
            return _guarded(handler, request, credential.principal, work, now_us)
        pair = (request.key_space, request.request_id)
        digest = payload_hash(request.command)
        known = work.keys_by_pair.get(pair) or self.key_cache.get(pair)
        if known is not None:
            return _replay(known, digest)
        outcome = _guarded(handler, request, credential.principal, work, now_us)
        if isinstance(outcome, Failure):
            return outcome  # refused: nothing to remember, a corrected retry may follow
        stored = msgspec.structs.replace(outcome, token="") if outcome.token else outcome
        work.add_key(KeyRow(request.key_space, request.request_id, digest, encode(stored)))
        return outcome

    def _forget(self, work: _Work) -> None:
        for stream_id in work.touched:
            self.cards.pop(stream_id, None)
        for row in work.keys:
            self.key_cache.pop((row.key_space, row.request_id), None)
        if work.registry_touched:
            self._load_registry()

    def _drop_state(self) -> None:
        self.cards.clear()
        try:
            self._load_registry()
        except Unavailable:
            log.warning("registry not reloaded: database unavailable")

    def _learn_keys(self, batch: list[Request]) -> bool:
        """After a conflict: which of the batch's keys did another writer already record?"""
        pairs = [(r.key_space, r.request_id) for r in batch if r.request_id]
        pairs += [(r.key_space, r.command.original_request_id) for r in batch
                  if isinstance(r.command, cc.Reverse)]
        pairs += [(reversal_marker(r.key_space), r.command.original_request_id) for r in batch
                  if isinstance(r.command, cc.Reverse)]
        try:
            found = self.store.find_keys(pairs)
        except Unavailable as error:
            self._answer(batch, Failure(UNAVAILABLE, f"database unavailable: {error}"))
            return False
        self.key_cache.update(found)
        return True

    # -------------------------------------------------------------------------- following

    def _follow_log(self, force: bool = False) -> None:
        """Apply what other processes committed since we last looked (see module doc). The
        read is skipped when the store is sure nobody else wrote and our own commits are
        contiguous; after a conflict (`_stale`) or for a Sync it always happens."""
        others = self.store.others_may_have_written()
        while self._own_ranges:  # our own commits: skip them when nobody wrote in between
            first, last = self._own_ranges[0]
            if first == self.last_seen + 1:
                self.last_seen = last
            elif last > self.last_seen:
                break
            self._own_ranges.popleft()
        if not (others or force or self._stale or self._own_ranges):
            return
        self._stale = False
        for _ in range(limits.TAIL_PAGES_MAX):
            changes = self.store.changes_after(self.last_seen, limits.TAIL_PAGE_ROWS)
            for change in changes:
                if change.originator_id == REGISTRY_ID:
                    self._follow_registry(change.originator_version, change.state)
                    continue
                cached = self.cards.get(change.originator_id, _MISSING)
                if cached is None or (isinstance(cached, cards.CardState)
                                      and cached.version < change.originator_version):
                    del self.cards[change.originator_id]
            if changes:
                self.last_seen = changes[-1].notification_id
            if len(changes) < limits.TAIL_PAGE_ROWS:
                return
        self.cards.clear()  # far behind: cheaper to reload cards on demand than to read it all
        self.last_seen = self.store.max_notification_id()
        self._load_registry()

    def _follow_registry(self, version: int, state: bytes | None) -> None:
        if version <= self.registry.version:
            return
        if version == self.registry.version + 1 and state is not None:
            registry.evolve(self.registry, decode_event(state))  # type: ignore[arg-type]
        else:
            self._load_registry()

    def _load_registry(self) -> None:
        fresh = registry.RegistryState()
        for stored in self.store.stream(REGISTRY_ID):
            registry.evolve(fresh, decode_event(stored.state))  # type: ignore[arg-type]
        self.registry = fresh

    # -------------------------------------------------------------------------- card state

    def card(self, card_number: str) -> cards.CardState | None:
        """The card's current state: from the cache, else its snapshot plus newer events."""
        stream_id = card_stream_id(card_number)
        state = self.cards.get(stream_id, _MISSING)
        if state is not _MISSING:
            self.cards.move_to_end(stream_id)
            return state  # type: ignore[return-value]
        snapshot = self.store.latest_snapshot(stream_id)
        loaded = decode_card_state(snapshot.state) if snapshot else None
        events = self.store.stream(stream_id, gt=loaded.version if loaded else None)
        loaded = cards.fold([decode_event(e.state) for e in events], loaded)  # type: ignore[misc]
        self.cards[stream_id] = loaded
        while len(self.cards) > self.card_cache_max:
            self.cards.popitem(last=False)
        return loaded

    def _emit(self, work: _Work, state: cards.CardState | None,
              events: tuple[CardEvent, ...]) -> cards.CardState:
        assert events
        if state is not None:
            work.versions_before.setdefault(card_stream_id(state.card_number), state.version)
        else:
            work.versions_before.setdefault(card_stream_id(_number_of(events[0])), 0)
        for event in events:
            state = cards.evolve(state, event)
            work.stored.append(StoredEvent(card_stream_id(state.card_number), state.version,
                                           topic_of(event), encode(event)))
        assert state is not None
        stream_id = card_stream_id(state.card_number)
        self.cards[stream_id] = state
        work.touched[stream_id] = state
        return state

    def _expire(self, work: _Work, state: cards.CardState, now_us: int) -> cards.CardState:
        released = cards.expired_holds(state, now_us, _system_meta(now_us))
        return self._emit(work, state, released) if released else state

    def _context(self, request: Request, principal: Principal, state: cards.CardState,
                 now_us: int) -> cards.Context:
        card_class = self.registry.card_class(state.card_class)
        return cards.Context(
            self._meta(request, principal, now_us), now_us,
            major_to_minor(card_class.max_balance_major, state.currency),
            card_class.hold_ttl_seconds * 1_000_000,
            principal.partner_id or state.issuing_partner_id)

    @staticmethod
    def _meta(request: Request, principal: Principal, now_us: int) -> Meta:
        return Meta(request.request_id, request.credential_id, int(principal.role),
                    principal.partner_id, principal.store_id,
                    request.terminal_id or principal.terminal_id, now_us)

    def _hold_card(self, authorization_id: str) -> cards.CardState | None:
        """The card holding an authorization now, following replacements."""
        state = self.card(cc.card_of_authorization(authorization_id))
        for _ in range(limits.REPLACEMENT_HOPS_MAX):
            if state is None or authorization_id in state.holds or not state.replaced_by:
                break
            state = self.card(state.replaced_by)
        return state if state is not None and authorization_id in state.holds else None

    def _new_card_number(self) -> str:
        for _ in range(8):
            number = self.card_numbers()
            if self.card(number) is None:
                return number
        raise AssertionError("eight generated card numbers in a row were taken")

    # -------------------------------------------------------------------------- handlers

    def _card_outcome(self, decision: cards.Decision, command: Any, state: cards.CardState,
                      now_us: int) -> Outcome:
        # Payment and load replies show amounts, never points: the authorization hot path
        # does not count a loyal card's lots.
        points = not isinstance(command, _AMOUNT_REPLIES)
        return Outcome(int(decision.result), type(command).__struct_config__.tag,
                       state.card_number, decision.authorization_id,
                       decision.approved_amount_minor, _view(state, now_us, points))

    def _apply(self, request: Request, principal: Principal, work: _Work, now_us: int,
               state: cards.CardState,
               decide: Callable[[cards.CardState, cards.Context], cards.Decision]) -> Outcome:
        state = self._expire(work, state, now_us)
        decision = decide(state, self._context(request, principal, state, now_us))
        if decision.result in APPROVALS:
            state = self._emit(work, state, decision.events)
        return self._card_outcome(decision, request.command, state, now_us)

    def _issue(self, request: Request, principal: Principal, work: _Work, now_us: int) -> Outcome:
        command: cc.IssueCard = request.command
        store_id = command.issuing_store_id or principal.store_id
        if not store_id:
            raise InvalidInput("issuing_store_id", "is required when the caller has no store")
        store = self.registry.stores.get(store_id)
        if store is None:
            raise InvalidInput("issuing_store_id", f"unknown store {shown(store_id)}")
        _check(access.issue_card(principal, store_id, store.partner_id))
        number = command.card_number or self._new_card_number()
        decision = cards.decide_issue(command, number, store.partner_id, store_id,
                                      self.card(number) is not None,
                                      self._meta(request, principal, now_us))
        if decision.result not in APPROVALS:
            return Outcome(int(decision.result), "IssueCard", number)
        state = self._emit(work, None, decision.events)
        return self._card_outcome(decision, command, state, now_us)

    def _card_action(self, request: Request, principal: Principal, work: _Work,
                     now_us: int) -> Outcome:
        command: cc.CardAction = request.command
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), type(command).__struct_config__.tag)
        verb = type(command).__name__.removesuffix("Card").lower()
        _check(access.manage_card(principal, state.issuing_partner_id, verb))
        return self._apply(request, principal, work, now_us, state,
                           lambda s, ctx: cards.decide_action(s, command, ctx))

    def _replace(self, request: Request, principal: Principal, work: _Work,
                 now_us: int) -> Outcome:
        command: cc.ReplaceCard = request.command
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ReplaceCard")
        _check(access.manage_card(principal, state.issuing_partner_id, "replace"))
        state = self._expire(work, state, now_us)
        new_number = command.new_card_number or self._new_card_number()
        decision = cards.decide_replace(state, new_number, self.card(new_number) is not None,
                                        command.reason,
                                        self._context(request, principal, state, now_us))
        if decision.result not in APPROVALS:
            return self._card_outcome(decision, command, state, now_us)
        self._emit(work, state, decision.events)
        new_state = self._emit(work, None, decision.replacement_events)
        return self._card_outcome(decision, command, new_state, now_us)

    def _load(self, request: Request, principal: Principal, work: _Work, now_us: int) -> Outcome:
        command: cc.LoadValue = request.command
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "LoadValue")
        _check(access.load_value(principal, state.issuing_partner_id))
        return self._apply(request, principal, work, now_us, state,
                           lambda s, ctx: cards.decide_load(s, command, ctx))

    def _authorize(self, request: Request, principal: Principal, work: _Work,
                   now_us: int) -> Outcome:
        command: cc.Authorize = request.command
        _check(access.authorize(principal))
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "Authorize")
        return self._apply(request, principal, work, now_us, state,
                           lambda s, ctx: cards.decide_authorize(s, command, ctx))

    def _follow_up(self, request: Request, principal: Principal, work: _Work,
                   now_us: int) -> Outcome:
        command: cc.Capture | cc.Void | cc.Refund = request.command
        tag = type(command).__struct_config__.tag
        state = self._hold_card(command.authorization_id)
        if state is None:
            return Outcome(int(Result.DECLINED_AUTHORIZATION_NOT_FOUND), tag)
        hold = state.holds[command.authorization_id]
        _check(access.follow_up(principal, hold.store_id, tag.lower()))
        decide = {cc.Capture: cards.decide_capture, cc.Void: cards.decide_void,
                  cc.Refund: cards.decide_refund}[type(command)]
        return self._apply(request, principal, work, now_us, state,
                           lambda s, ctx: decide(s, command, ctx))  # type: ignore[operator]

    def _reverse(self, request: Request, principal: Principal, work: _Work,
                 now_us: int) -> Outcome:
        command: cc.Reverse = request.command
        if command.original_request_id == request.request_id:
            raise InvalidInput("original_request_id", "must differ from request_id")
        _check(access.reverse(principal))
        original_pair = (request.key_space, command.original_request_id)
        marker_pair = (reversal_marker(request.key_space), command.original_request_id)
        known = {pair: row for pair in (original_pair, marker_pair)
                 if (row := work.keys_by_pair.get(pair) or self.key_cache.get(pair))}
        if marker_pair not in known:  # reversals are rare: ask the database, other processes
            known.update(self.store.find_keys([original_pair, marker_pair]))  # may know more
        if marker_pair in known:
            return Outcome(int(Result.APPROVED), "Reverse")  # reversed before: nothing to do
        original = known.get(original_pair)
        approved = Outcome(int(Result.APPROVED), "Reverse")
        marker = KeyRow(*marker_pair, b"", encode(approved))
        if original is None:
            # Reversed before seen: the original's key now declines it when it arrives.
            tombstone = Outcome(int(Result.DECLINED_REQUEST_REVERSED), "Reverse")
            work.add_key(KeyRow(*original_pair, b"", encode(tombstone)))
            work.add_key(marker)
            return approved
        outcome = decode_outcome(original.outcome)
        if not original.payload_hash or outcome.result not in APPROVALS:
            work.add_key(marker)
            return approved  # nothing was applied, so nothing to undo
        undo = self._undo(outcome, command.original_request_id)
        if undo is None:
            return Outcome(int(Result.DECLINED_INVALID_STATE), "Reverse")
        state, decide = undo
        reply = self._apply(request, principal, work, now_us, state, decide)
        if reply.result in APPROVALS:
            work.add_key(marker)
        return reply

    def _undo(self, original: Outcome, original_request_id: str) -> tuple[
            cards.CardState, Callable[[cards.CardState, cards.Context], cards.Decision]] | None:
        if original.kind in ("Authorize", "Capture"):
            state = self._hold_card(original.authorization_id)
            if state is None:
                return None
            decide = (cards.decide_reverse_authorize if original.kind == "Authorize"
                      else cards.decide_reverse_capture)
            return state, lambda s, ctx: decide(s, original.authorization_id, ctx)
        if original.kind == "LoadValue":
            state = self.card(original.card_number)
            if state is None:
                return None
            return state, lambda s, ctx: cards.decide_reverse_load(
                s, original_request_id, original.approved_amount_minor, ctx)
        return None

    def _read(self, request: Request, principal: Principal, work: _Work, now_us: int) -> Outcome:
        command: cc.GetCard | cc.GetBalance = request.command
        tag = type(command).__struct_config__.tag
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), tag)
        check = access.read_card if isinstance(command, cc.GetCard) else access.get_balance
        _check(check(principal, state.issuing_partner_id))
        return Outcome(int(Result.APPROVED), tag, state.card_number, card=_view(state, now_us))

    def _registry(self, request: Request, principal: Principal, work: _Work,
                  now_us: int) -> Outcome:
        command = request.command
        tag = type(command).__struct_config__.tag
        _check(self._registry_access(principal, command))
        credential_id, token, digest = ("", "", b"")
        if isinstance(command, rc.CreateCredential):
            credential_id, token, digest = new_token()
        decision = registry.decide(self.registry, command,
                                   self._meta(request, principal, now_us), credential_id, digest)
        if decision.result not in APPROVALS:
            return Outcome(int(decision.result), tag)
        for event in decision.events:
            self._emit_registry(work, event)
        return Outcome(int(decision.result), tag, credential_id=credential_id, token=token)

    def _registry_access(self, principal: Principal, command: Any) -> str | None:
        if isinstance(command, rc.RegisterPartner | rc.DefineCardClass):
            return access.admin_only(principal, f"{type(command).__name__}")
        if isinstance(command, rc.RegisterStore):
            return access.admin_partner_scope(principal, command.partner_id, "register stores")
        if isinstance(command, rc.RegisterTerminal):
            store = self.registry.stores.get(command.store_id)
            if store is None:
                raise InvalidInput("store_id", f"unknown store {shown(command.store_id)}")
            return access.admin_partner_scope(principal, store.partner_id, "register terminals")
        if isinstance(command, rc.CreateCredential):
            return access.create_credential(principal, command.principal)
        if isinstance(command, DefineProgram):
            return access.define_program(principal, command.owner)
        if isinstance(command, PublishRuleSet):
            scope = command.rule_set.scope
            return access.publish_rules(principal, scope, self._store_partner(scope))
        if isinstance(command, DefineCouponCampaign):
            if principal.role == Role.STORE_MANAGER:
                return "role STORE_MANAGER may not define coupon campaigns (it may give coupons)"
            return access.manage_coupons(principal, command.campaign.owner)
        assert isinstance(command, rc.RevokeCredential)
        target = self.registry.credentials.get(command.credential_id)
        if target is None:
            raise InvalidInput("credential_id",
                               f"unknown credential {shown(command.credential_id)}")
        return access.create_credential(principal, target.principal)

    # -------------------------------------------------------------------------- rules

    def _store_partner(self, scope: str) -> str:
        kind, _, target = scope.partition(":")
        store = self.registry.stores.get(target) if kind == "store" else None
        return store.partner_id if store is not None else ""

    def _rules_read(self, request: Request, principal: Principal, work: _Work,
                    now_us: int) -> Outcome:
        command: GetRuleSet | ListRuleSets = request.command
        tag = type(command).__struct_config__.tag
        if isinstance(command, GetRuleSet):
            versions = self.registry.rule_sets.get(command.rule_set_id)
            if not versions:
                raise NotFound(f"no rule set {shown(command.rule_set_id)}")
            if command.version > len(versions):
                raise NotFound(f"rule set {shown(command.rule_set_id)} has {len(versions)} "
                               "versions")
            scope = versions[0].scope
            _check(access.read_rules(principal, scope, self._store_partner(scope)))
            return Outcome(int(Result.APPROVED), tag,
                           rule_sets=(versions[command.version - 1 if command.version else -1],))
        found = [versions[-1] for versions in self.registry.rule_sets.values()
                 if command.scope in ("", versions[0].scope)
                 and access.read_rules(principal, versions[0].scope,
                                       self._store_partner(versions[0].scope)) is None]
        found.sort(key=lambda r: (r.scope, r.rule_set_id))
        return Outcome(int(Result.APPROVED), tag,
                       rule_sets=tuple(found[:limits.RULE_SETS_PAGE_MAX]))

    # -------------------------------------------------------------------------- purchases

    def _purchase_store(self, principal: Principal, command: Any) -> registry.Store:
        """The store where a purchase happens: the till's own; for a simulation by a manager,
        the store it names (within its scope)."""
        named = command.store_id if isinstance(command, pc.SimulatePurchase) else ""
        if principal.role in access.POS:
            if named and named != principal.store_id:
                raise Denied(f"a till of store {shown(principal.store_id)} may not simulate a "
                             f"purchase at {shown(named)}")
            store_id = principal.store_id
        elif isinstance(command, pc.SimulatePurchase):
            store_id = named or principal.store_id
            if not store_id:
                raise InvalidInput("store_id", "is required when the caller has no store")
        else:
            raise Denied(f"role {Role(principal.role).name} may not record purchases "
                         "(a till does)")
        store = self.registry.stores.get(store_id)
        if store is None:
            raise InvalidInput("store_id", f"unknown store {shown(store_id)}")
        _check(access.simulate_purchase(principal, store.store_id, store.partner_id))
        return store

    @staticmethod
    def _local(purchase: pc.Purchase, store: registry.Store, now_us: int) -> dt.datetime:
        """The store's wall clock: the till's, or now in the store's timezone."""
        if purchase.local_time:
            return pc.local_moment(purchase.local_time)
        return dt.datetime.fromtimestamp(now_us / 1e6, ZoneInfo(store.timezone))

    @staticmethod
    def _basket(purchase: pc.Purchase, state: cards.CardState, local: dt.datetime) -> Basket:
        return Basket(lines=purchase.lines, card_class=state.card_class, tier=state.tier,
                      weekday=local.weekday(), minute_of_day=local.hour * 60 + local.minute)

    def _evaluate_purchases(self, batch: list[Request], work: _Work, now_us: int) -> None:
        """Evaluate the baskets of every purchase in the batch with one kernel call per
        combination of rule sets in force (the decisions that follow pick the results up)."""
        items: list[tuple[int, tuple[RuleSet, ...], Basket]] = []
        for request in batch:
            command = request.command
            if not isinstance(command, pc.Purchase | pc.SimulatePurchase):
                continue
            credential = self.registry.credentials.get(request.credential_id)
            if credential is None:
                continue
            purchase = command.purchase if isinstance(command, pc.SimulatePurchase) else command
            try:
                store = self._purchase_store(credential.principal, command)
            except (Denied, InvalidInput):
                continue  # the decision answers with the error
            state = self.card(purchase.card_number)
            if state is None:
                continue
            rule_sets = self.registry.rule_sets_in_force(store.store_id, now_us)
            basket = self._basket(purchase, state, self._local(purchase, store, now_us))
            items.append((id(request), rule_sets, basket))
        if not items:
            return
        evaluations = self.rule_book.evaluate([(sets, basket) for _, sets, basket in items])
        for (key, sets, basket), evaluation in zip(items, evaluations, strict=True):
            work.evaluations[key] = (key_of(sets), basket, evaluation)

    def _evaluation(self, request: Request, work: _Work, rule_sets: tuple[RuleSet, ...],
                    basket: Basket) -> purchases.Evaluation:
        known = work.evaluations.pop(id(request), None)
        if known is not None and known[0] == key_of(rule_sets) and known[1] == basket:
            return known[2]
        return self.rule_book.evaluate([(rule_sets, basket)])[0]

    def _purchase(self, request: Request, principal: Principal, work: _Work,
                  now_us: int) -> Outcome:
        command: pc.Purchase | pc.SimulatePurchase = request.command
        tag = type(command).__struct_config__.tag
        simulate = isinstance(command, pc.SimulatePurchase)
        purchase = command.purchase if isinstance(command, pc.SimulatePurchase) else command
        store = self._purchase_store(principal, command)
        state = self.card(purchase.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), tag)
        meta = self._meta(request, principal, now_us)
        if simulate:  # what expiry would write, applied to a copy: nothing is written
            state = cards.fold(list(self._expiries(state, now_us)), state.copy()) or state
        else:
            state = self._expire_all(work, state, now_us)
        if purchase.override_discount_minor:
            self._check_override(purchase.override_approver, store)
        rule_sets = self.registry.rule_sets_in_force(store.store_id, now_us)
        local = self._local(purchase, store, now_us)
        basket = self._basket(purchase, state, local)
        evaluation = self._evaluation(request, work, rule_sets, basket)
        program = self.registry.program_of(state.issuing_partner_id)
        decision = purchases.decide_purchase(state, purchase, purchases.PurchaseContext(
            meta, now_us, store.partner_id, program, evaluation, basket.weekday,
            basket.minute_of_day, self._coupon_ids(state, purchase.coupon_codes),
            self._campaigns_to_issue(evaluation, state.currency, now_us), rule_sets,
            local.date().isoformat()))
        event = decision.event
        if event is None:
            return Outcome(int(decision.result), tag, state.card_number,
                           card=_view(state, now_us), purchase=PurchaseView(
                               total_minor=purchase.total_minor,
                               rule_sets=evaluation.rule_sets, decline_reason=decision.reason))
        after = (cards.evolve(state.copy(), event) if simulate
                 else self._emit(work, state, (event,)))
        lot = event.lot
        return Outcome(int(decision.result), tag, after.card_number,
                       approved_amount_minor=event.sv_charged_minor,
                       card=_view(after, now_us), purchase=PurchaseView(
                           event.purchase_id if not simulate else "", event.total_minor,
                           event.discount_minor, event.sv_charged_minor, event.points_redeemed,
                           event.points_redeemed_value_minor, event.other_tender_minor,
                           (lot.amount if lot else 0) + event.debt_settled,
                           lot.amount if lot and lot.vests_at_us > now_us else 0,
                           lot.vests_at_us if lot else 0, lot.expires_at_us if lot else 0,
                           event.rule_sets, event.awards, tier=event.tier_after,
                           coupons_used=_uses(event.coupons_used),
                           coupons_issued=tuple(
                               self._coupon_view(after.card_number, c, with_code=not simulate)
                               for c in event.coupons_issued),
                           coupon_discount_minor=sum(u.amount_minor
                                                     for u in event.coupons_used),
                           stamps=event.stamps,
                           override_discount_minor=event.override_discount_minor,
                           override_approver=event.override_approver,
                           debt_settled=event.debt_settled))

    def _check_override(self, approver: str, store: registry.Store) -> None:
        """A special discount needs a STORE_MANAGER of this store, not revoked now."""
        credential = self.registry.credentials.get(approver)
        if credential is None or credential.revoked:
            raise Denied("override_token: unknown or revoked manager credential")
        manager = credential.principal
        if manager.role != Role.STORE_MANAGER or manager.store_id != store.store_id:
            raise Denied(f"override_token: only a STORE_MANAGER of store {shown(store.store_id)} "
                         "may approve a special discount")

    def _coupon_ids(self, state: cards.CardState, codes: tuple[str, ...]) -> tuple[str, ...]:
        """The coupons the codes name, checked against this card's number or, for coupons a
        replacement took over, the number they were issued to."""
        if not codes:
            return ()
        key = self.coupon_key
        if key is None:
            raise Unconfigured("coupons are not configured on this server (LEDGER_COUPON_KEY)")
        found = []
        for index, code in enumerate(codes):
            field = f"coupon_codes[{index}]"
            for number in (*state.previous_numbers, state.card_number):
                try:
                    found.append(coupon_of_code(key, number, code, field))
                    break
                except InvalidInput:
                    continue
            else:
                raise InvalidInput(field, "is not a coupon code of this card")
        return tuple(found)

    def _campaigns_to_issue(self, evaluation: purchases.Evaluation, currency: str,
                            now_us: int) -> tuple[Any, ...]:
        """Campaigns of the rules that fired, still running, in the card's currency."""
        found = []
        for campaign_id in evaluation.coupon_campaigns:
            campaign = self.registry.campaigns.get(campaign_id)
            if campaign is not None and campaign.currency == currency and (
                    now_us < campaign.valid_to_us) and self.coupon_key is not None:
                found.append(campaign)
        return tuple(found[:10])  # coupon ids hold one digit for the index

    def _coupon_view(self, card_number: str, coupon: Coupon, with_code: bool) -> CouponView:
        t = coupon.terms
        code = code_of(self.coupon_key, card_number, coupon.coupon_id) if (
            with_code and self.coupon_key is not None) else ""
        return CouponView(coupon.coupon_id, code, t.campaign_id, t.kind, t.value_minor,
                          t.percent_bp, coupon.remaining_minor, coupon.status, t.valid_from_us,
                          t.valid_to_us, t.min_spend_minor, t.funded_by)

    def _issue_coupon(self, request: Request, principal: Principal, work: _Work,
                      now_us: int) -> Outcome:
        command: IssueCoupon = request.command
        campaign = self.registry.campaigns.get(command.campaign_id)
        if campaign is None:
            raise InvalidInput("campaign_id", f"unknown campaign {shown(command.campaign_id)}")
        _check(access.manage_coupons(principal, campaign.owner))
        if self.coupon_key is None:
            raise Unconfigured("coupons are not configured on this server (LEDGER_COUPON_KEY)")
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "IssueCoupon")
        if state.status not in (CardStatus.ISSUED, CardStatus.ACTIVE):
            return Outcome(int(Result.DECLINED_CARD_NOT_ACTIVE), "IssueCoupon")
        if campaign.currency != state.currency:
            return Outcome(int(Result.DECLINED_CURRENCY_MISMATCH), "IssueCoupon")
        if now_us >= campaign.valid_to_us:
            return Outcome(int(Result.DECLINED_INVALID_STATE), "IssueCoupon")
        state = self._expire(work, state, now_us)
        coupon = coupons.new_coupon(campaign, state.coupon_id(0), now_us)
        state = self._emit(work, state, (ev.CouponIssued(self._meta(request, principal, now_us),
                                                         coupon),))
        return Outcome(int(Result.APPROVED), "IssueCoupon", state.card_number,
                       card=_view(state, now_us),
                       coupons=(self._coupon_view(state.card_number, coupon, with_code=True),))

    def _list_coupons(self, request: Request, principal: Principal, work: _Work,
                      now_us: int) -> Outcome:
        command: ListCoupons = request.command
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "ListCoupons")
        _check(access.get_balance(principal, state.issuing_partner_id))
        return Outcome(int(Result.APPROVED), "ListCoupons", state.card_number,
                       card=_view(state, now_us), coupons=tuple(
                           self._coupon_view(state.card_number, c, with_code=False)
                           for c in state.coupons.values()))

    def _expiries(self, state: cards.CardState, now_us: int) -> tuple[CardEvent, ...]:
        meta = _system_meta(now_us)
        return (cards.expired_holds(state, now_us, meta)
                + purchases.expired_points(state, now_us, meta))

    def _expire_all(self, work: _Work, state: cards.CardState, now_us: int) -> cards.CardState:
        """Record expired holds and points before a decision that reads them."""
        due = self._expiries(state, now_us)
        return self._emit(work, state, due) if due else state

    def _maintain(self, request: Request, principal: Principal, work: _Work,
                  now_us: int) -> Outcome:
        """The periodic job's step for one card: expiry, then the tier review."""
        command: pc.MaintainCard = request.command
        if not request.system:
            raise Denied("card maintenance (expiry, tier review) is the ledger's own job")
        if command.as_of_us > now_us:
            raise InvalidInput("as_of", "must not be in the future: points are never expired "
                               "early")
        state = self.card(command.card_number)
        if state is None:
            return Outcome(int(Result.DECLINED_CARD_NOT_FOUND), "MaintainCard")
        state = self._expire(work, state, now_us)  # holds whose time is up, recorded too
        meta = _system_meta(now_us)
        tier_before = state.tier
        expired = purchases.expired_points(state, command.as_of_us, meta)
        lapsed = tuple(ev.CouponExpired(meta, coupon_id, remaining) for coupon_id, remaining
                       in coupons.expired_coupons(state.coupons, command.as_of_us))
        program = self.registry.program_of(state.issuing_partner_id)
        period_end = program.period_end_at_or_before(command.as_of_us) if program else 0
        events = expired + lapsed + purchases.review_tier(state, program, period_end, meta)
        if events:
            state = self._emit(work, state, events)
        return Outcome(int(Result.APPROVED), "MaintainCard", state.card_number,
                       card=_view(state, now_us), maintenance=MaintenanceView(
                           sum(e.amount for e in expired), tier_before, state.tier,
                           len(lapsed)))

    def _return(self, request: Request, principal: Principal, work: _Work,
                now_us: int) -> Outcome:
        command: pc.Return = request.command
        state = self.card(command.card_number)
        for _ in range(limits.REPLACEMENT_HOPS_MAX):  # a replacement card took it over
            if state is None or command.purchase_id in state.purchases or not state.replaced_by:
                break
            state = self.card(state.replaced_by)
        record = state.purchases.get(command.purchase_id) if state is not None else None
        if state is None or record is None:
            return Outcome(int(Result.DECLINED_PURCHASE_NOT_FOUND), "Return")
        _check(access.take_return(principal, record.acquirer_partner_id))
        state = self._expire_all(work, state, now_us)
        decision = purchases.decide_return(state, command, self._meta(request, principal, now_us),
                                           now_us,
                                           self.registry.program_of(state.issuing_partner_id))
        if decision.result not in APPROVALS:
            return Outcome(int(decision.result), "Return", state.card_number,
                           card=_view(state, now_us))
        event = decision.events[0]
        assert isinstance(event, ev.PurchaseReturned)
        state = self._emit(work, state, decision.events)
        return Outcome(int(decision.result), "Return", state.card_number,
                       approved_amount_minor=event.sv_refunded_minor, card=_view(state, now_us),
                       purchase=PurchaseView(
                           command.purchase_id, sv_refunded_minor=event.sv_refunded_minor,
                           points_restored=sum(p for _, p in event.points_restored),
                           points_clawed=sum(p for _, p in event.points_clawed),
                           points_written_off=event.points_written_off,
                           points_debt_added=event.points_debt_added,
                           coupons_used=_uses(event.coupons_restored)))

    def _emit_registry(self, work: _Work, event: RegistryEvent) -> None:
        registry.evolve(self.registry, event)
        work.registry_touched = True
        work.stored.append(StoredEvent(REGISTRY_ID, self.registry.version, topic_of(event),
                                       encode(event)))


_AMOUNT_REPLIES = (cc.Authorize, cc.Capture, cc.Void, cc.Refund, cc.Reverse, cc.LoadValue)


def _view(state: cards.CardState, now_us: int, points: bool = True) -> Any:
    """Card.points: spendable points less any points debt (negative only under the
    POINTS_DEBT policy); 0 when the reply shows no points (`points` False)."""
    if not points:
        return card_view(state, cards.held_at(state, now_us), 0)
    spendable = purse.spendable(state.purse, now_us) if state.lots else 0
    return card_view(state, cards.held_at(state, now_us), spendable - state.points_debt)


def _number_of(event: CardEvent) -> str:
    number: str = event.card_number  # type: ignore[attr-defined]  # the stream's first event
    return number


def _uses(uses: tuple[coupons.CouponUse, ...]) -> tuple[CouponUseView, ...]:
    return tuple(CouponUseView(u.coupon_id, u.amount_minor, u.used_up) for u in uses)


def _guarded(handler: Callable[[Request, Principal, _Work, int], Outcome], request: Request,
             principal: Principal, work: _Work, now_us: int) -> Reply:
    """The handler's outcome, or the Failure its refusal means."""
    try:
        return handler(request, principal, work, now_us)
    except Unconfigured as missing:
        return Failure(FAILED_PRECONDITION, str(missing))
    except InvalidInput as error:
        return Failure(INVALID_ARGUMENT, str(error))
    except Denied as denied:
        return Failure(PERMISSION_DENIED, str(denied))
    except NotFound as missing:
        return Failure(NOT_FOUND, str(missing))


def _check(denial: str | None) -> None:
    if denial is not None:
        raise Denied(denial)


def _replay(known: KeyRow, digest: bytes) -> Outcome:
    if not known.payload_hash:
        return decode_outcome(known.outcome)  # the reversal marker or the tombstone
    if known.payload_hash != digest:
        return Outcome(int(Result.DUPLICATE_REQUEST_MISMATCH))
    return msgspec.structs.replace(decode_outcome(known.outcome), replayed=True)
