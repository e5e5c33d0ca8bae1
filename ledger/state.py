"""What the writer knows: a bounded cache of card streams (snapshot plus newer events, loaded
on demand), the request keys it has seen, the registry, and the log position up to which it
has followed what other processes committed."""

from __future__ import annotations

import collections
import logging
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.registry import decide as registry
from domain.settlement import legs as settlement_legs
from domain.settlement.legs import FLOW_EVENTS, FLOW_TOPICS
from domain.settlement.positions import NetPositions
from ledger import limits
from ledger.codec import (
    REGISTRY_ID,
    SNAPSHOT_TOPIC,
    card_stream_id,
    decode_card_state,
    decode_event,
)
from ledger.store import EventStore, KeyRow, Unavailable
from ledger.work import Work

log = logging.getLogger("ledger.state")
_MISSING = object()
_LENGTH = [bytes((n,)) for n in range(256)]  # the one-byte length prefix of a packed key


class KeyCache:
    """The request keys this writer recorded or learnt last, for replays without reading the
    database: at most `max_keys`, the oldest forgotten first. A key no longer here is still
    honoured: a retry of it is decided, its commit conflicts on the key table, and the batch
    is decided again in a turn after reading the key (`Ledger._process`).

    It is the largest thing the writer keeps, so an entry is compact: (key space, request
    id) -> one bytes holding the payload hash and the stored outcome, the key space shared
    by all of its keys (sys.intern: one string per terminal, not one per request), in two
    plain dicts: new keys go to the young one; when it holds half the bound it becomes the
    old one and the previous old one is dropped whole (first in, first out, by halves). As
    KeyRows in an OrderedDict a key took ~620 bytes (36-character request id, 110-byte
    outcome); this way ~370."""

    def __init__(self, max_keys: int) -> None:
        self.half = max(1, max_keys // 2)
        self.young: dict[tuple[str, str], bytes] = {}
        self.old: dict[tuple[str, str], bytes] = {}

    def __len__(self) -> int:
        return len(self.young) + len(self.old)

    def get(self, pair: tuple[str, str]) -> KeyRow | None:
        packed = self.young.get(pair)
        if packed is None:
            packed = self.old.get(pair)
            if packed is None:
                return None
        end = 1 + packed[0]
        return KeyRow(pair[0], pair[1], packed[1:end], packed[end:])

    def put(self, row: KeyRow) -> None:
        digest = row.payload_hash
        pair = (sys.intern(row.key_space), row.request_id)
        old = self.old
        if old:
            old.pop(pair, None)
        young = self.young
        young[pair] = _LENGTH[len(digest)] + digest + row.outcome  # a hash is 16 bytes or none
        if len(young) >= self.half:
            self.old, self.young = young, {}

    def pop(self, pair: tuple[str, str]) -> None:
        self.young.pop(pair, None)
        self.old.pop(pair, None)


class State:
    def __init__(self, store: EventStore, card_cache_max: int = limits.CARD_CACHE_MAX,
                 key_cache_max: int = limits.KEY_CACHE_MAX) -> None:
        self.store = store
        self.card_cache_max = card_cache_max
        self.key_cache_max = key_cache_max
        self.cards: OrderedDict[uuid.UUID, cards.CardState | None] = OrderedDict()
        self.key_cache = KeyCache(key_cache_max)
        self.registry = registry.RegistryState()
        # Per lane of the log (one, or one per card partition and the registry's: the split
        # layout), the position up to which this process has followed it, and the ranges it
        # committed itself there, skipped when following if nobody wrote between.
        self.seen: dict[int, int] = dict.fromkeys(store.lanes(), 0)
        self.own: dict[int, collections.deque[tuple[int, int]]] = {
            lane: collections.deque() for lane in store.lanes()}
        self.stale = False  # a commit failed or conflicted: read the log before deciding
        # Waits until everything this process decided is durable or set aside (the engine
        # gives its committer's wait; a State on its own has nothing in flight).
        self.written: Callable[[], None] = lambda: None
        # The open settlement period's net positions, for the net debit cap: kept only while
        # an agreement sets a cap; None when not kept or to be read again from the log.
        self.positions: NetPositions | None = None

    # ------------------------------------------------------------------------ streams

    def card(self, card_number: str) -> cards.CardState | None:
        """The card's current state: from the cache, else its snapshot plus newer events."""
        stream_id = card_stream_id(card_number)
        state = self.cards.get(stream_id, _MISSING)
        if state is not _MISSING:
            self.cards.move_to_end(stream_id)
            return state  # type: ignore[return-value]
        loaded = self._load([stream_id])[0]
        self.remember_card(stream_id, loaded)
        return loaded

    def prefetch(self, card_numbers: list[str]) -> None:
        """Load the cards a batch will need that the cache does not hold, together: one
        query for all of them instead of one per card on the writer's critical path."""
        missing = list(dict.fromkeys(
            stream_id for stream_id in map(card_stream_id, card_numbers)
            if stream_id not in self.cards))
        if not missing:
            return
        for stream_id, state in zip(missing, self._load(missing), strict=True):
            self.remember_card(stream_id, state)

    def _load(self, stream_ids: list[uuid.UUID]) -> list[cards.CardState | None]:
        """Cards as stored: each one's snapshot of the current topic plus the events after
        it, folded. A snapshot of another topic (a CardState of an older shape) is never
        decoded: the store passes it over and the card is folded from its first event."""
        loaded: list[cards.CardState | None] = [None] * len(stream_ids)
        seen = 0
        for position, tail in self.store.load_tails(stream_ids, SNAPSHOT_TOPIC):
            seen += 1
            state = None
            if tail.snapshot is not None:
                state = decode_card_state(tail.snapshot)
                assert state.version == tail.snapshot_version, "a snapshot is of its version"
            loaded[position] = cards.fold(list(map(decode_event, tail.events)),  # type: ignore[arg-type]
                                          state)
        assert seen == len(stream_ids), "the store answers for every stream asked for"
        return loaded

    def remember_card(self, stream_id: uuid.UUID, state: cards.CardState | None) -> None:
        self.cards[stream_id] = state
        self.cards.move_to_end(stream_id)
        while len(self.cards) > self.card_cache_max:
            self.cards.popitem(last=False)

    def hold_card(self, authorization_id: str) -> cards.CardState | None:
        """The card holding an authorization now, following replacements."""
        state = self.card(cc.card_of_authorization(authorization_id))
        for _ in range(limits.REPLACEMENT_HOPS_MAX):
            if state is None or authorization_id in state.holds or not state.replaced_by:
                break
            state = self.card(state.replaced_by)
        return state if state is not None and authorization_id in state.holds else None

    def load_registry(self) -> None:
        fresh = registry.RegistryState()
        for stored in self.store.stream(REGISTRY_ID):
            registry.evolve(fresh, decode_event(stored.state))  # type: ignore[arg-type]
        self.registry = fresh

    # ------------------------------------------------------------------------ keys

    def known_key(self, work: Work, pair: tuple[str, str]) -> KeyRow | None:
        return work.keys_by_pair.get(pair) or self.key_cache.get(pair)

    def learn_keys(self, found: dict[tuple[str, str], KeyRow]) -> None:
        for row in found.values():
            self.key_cache.put(row)

    # ------------------------------------------------------------------------ an attempt

    def speculate(self, work: Work) -> None:
        """Make an attempt's keys visible to the next batch before its commit; `forget`
        takes them back if the commit fails."""
        for row in work.keys:
            self.key_cache.put(row)

    def forget(self, work: Work) -> None:
        """Drop what a failed attempt changed: it is read again from the store on demand."""
        for stream_id in work.touched:
            self.cards.pop(stream_id, None)
        for row in work.keys:
            self.key_cache.pop((row.key_space, row.request_id))
        if self.positions is not None:
            if work.closed_period:
                self.positions = None  # read again from the log before the next decision
            else:
                for payer, payee, currency, amount in work.flows:
                    self.positions.add(payer, payee, currency, -amount)
        if work.registry_touched:
            self.load_registry()

    def drop(self) -> None:
        """Forget every cached card (after a bug: the failed attempt may have changed any)."""
        self.cards.clear()
        self.positions = None
        try:
            self.load_registry()
        except Unavailable:
            log.warning("registry not reloaded: database unavailable")

    # ------------------------------------------------------------------------ following

    def start_following(self) -> None:
        """From the log's end as it is now (a writer starting)."""
        self.seen = self.store.heads()

    def committed(self, events: Any, ids: list[int]) -> None:
        """This process committed `events` at notification ids `ids` (a contiguous range per
        lane: each lane's appends hold its table lock)."""
        if not ids:
            return
        if not self.store.split:
            self.own[0].append((ids[0], ids[-1]))
            return
        lane_of = self.store.lane_of
        ranges: dict[int, list[int]] = {}
        for event, notification_id in zip(events, ids, strict=True):
            found = ranges.get(lane := lane_of(event.originator_id))
            if found is None:
                ranges[lane] = [notification_id, notification_id]
            else:
                found[0] = min(found[0], notification_id)
                found[1] = max(found[1], notification_id)
        for lane, (first, last) in ranges.items():
            self.own[lane].append((first, last))

    def follow_log(self, force: bool = False) -> None:
        """Apply what other processes committed since we last looked: rows of cached cards
        evict them, registry rows update the registry. The read is skipped when the store is
        sure nobody else wrote and our own commits are contiguous; after a conflict (`stale`)
        or when forced (a Sync) it always happens. Lane by lane, the registry's first."""
        foreign = self.store.foreign_lanes()  # None: any lane may have changed
        others = foreign is None or bool(foreign)
        pending = False
        for lane, ranges in self.own.items():
            seen = self.seen[lane]
            while ranges:  # our own commits: skip them when nobody wrote in between
                first, last = ranges[0]
                if first == seen + 1:
                    seen = last
                elif last > seen:
                    break
                ranges.popleft()
            self.seen[lane] = seen
            pending = pending or bool(ranges)
        if not (others or force or self.stale or pending):
            return
        lanes: Any = self.seen  # every lane, unless the watch named those others wrote to
        if foreign is not None and not (force or self.stale):
            lanes = sorted(foreign | {lane for lane, ranges in self.own.items() if ranges})
        self.stale = False
        for lane in lanes:
            if not self._follow_lane(lane):
                # far behind: cheaper to reload cards on demand than to read it all
                self.cards.clear()
                self.positions = None
                self.seen = self.store.heads()
                self.load_registry()
                return

    def _follow_lane(self, lane: int) -> bool:
        """False when the lane is more than TAIL_PAGES_MAX pages ahead."""
        for _ in range(limits.TAIL_PAGES_MAX):
            changes = self.store.lane_changes(lane, self.seen[lane], limits.TAIL_PAGE_ROWS)
            if self.positions is not None and any(
                    not self._own(lane, change.notification_id) for change in changes):
                self.positions = None  # another process moved value: read them again
            for change in changes:
                if change.originator_id == REGISTRY_ID:
                    self._follow_registry(change.originator_version, change.state)
                    continue
                self._invalidate(change.originator_id, change.originator_version)
            if changes:
                self.seen[lane] = changes[-1].notification_id
            if len(changes) < limits.TAIL_PAGE_ROWS:
                return True
        return False

    def _own(self, lane: int, notification_id: int) -> bool:
        return any(first <= notification_id <= last for first, last in self.own[lane])

    # ------------------------------------------------------------------------ net debit cap

    def track(self, work: Work, currency: str, events: Any) -> None:
        """Add the cross-entity flows of a card's events to the open period's positions."""
        positions = self.positions
        if positions is None:
            return
        for event in events:
            if type(event) in FLOW_EVENTS:
                in_currency = self._flow_currency(event, currency)
                for payer, payee, _, amount in settlement_legs.flows(event.legs):
                    positions.add(payer, payee, in_currency, amount)
                    work.flows.append((payer, payee, in_currency, amount))

    def _flow_currency(self, event: Any, card_currency: str) -> str:
        programs = self.registry.programs
        return settlement_legs.flow_currency(event, card_currency, {
            event.from_program: programs[event.from_program].currency}
            if getattr(event, "from_program", "") in programs else {})

    def period_closed(self, work: Work) -> None:
        work.closed_period = True
        if self.positions is not None:
            self.positions = NetPositions()

    def keep_positions(self) -> None:
        """Before a batch is decided: if an agreement sets a cap and the positions are not
        kept yet (start, a close or a failure elsewhere, another process's writes), read them
        from the open period's rows of the log: wait until nothing of ours is in flight
        (every own event is then in the log or forgotten), follow the log to its end, and sum
        the flows of the rows after the last close. O(open period), once; O(1) per decision
        after that."""
        if self.positions is not None or not self.registry.agreements.any_caps:
            return
        self.written()
        self.follow_log(force=True)
        positions = NetPositions()
        currencies: dict[uuid.UUID, str] = {}
        if not self.store.split:
            close = self.registry.last_close_version
            start = self.store.position_of(REGISTRY_ID, close) if close else 0
            self._sum_flows(0, start, positions, currencies)
        else:  # each card lane from its mark of the last closed period (ledger/partitioned.py)
            closed = self.registry.open_period - 1
            for lane in self.store.lanes()[1:]:
                start = 0
                if closed:
                    start = self.store.position_of(self.store.marks_stream(lane),  # type: ignore[attr-defined]
                                                   closed)
                    if not start:  # not marked yet: the lane's rows so far are the closed
                        continue  # period's
                self._sum_flows(lane, start, positions, currencies)
        self.positions = positions

    def _sum_flows(self, lane: int, start: int, positions: NetPositions,
                   currencies: dict[uuid.UUID, str]) -> None:
        """Add the flows of a lane's rows after `start`, up to where it has been followed."""
        end = self.seen[lane]
        while start < end:
            rows = self.store.read_lane(lane, start + 1, limits.TAIL_PAGE_ROWS)
            if not rows:
                break
            found = [(row.originator_id, decode_event(row.state)) for row in rows
                     if row.id <= end and row.topic in FLOW_TOPICS]
            missing = list({stream_id for stream_id, _ in found} - currencies.keys())
            for stream_id, state in zip(missing, self._currencies(missing), strict=True):
                currencies[stream_id] = state
            for stream_id, event in found:
                currency = self._flow_currency(event, currencies[stream_id])
                for payer, payee, _, amount in settlement_legs.flows(event.legs):  # type: ignore[union-attr]
                    positions.add(payer, payee, currency, amount)
            start = rows[-1].id

    def _currencies(self, stream_ids: list[uuid.UUID]) -> list[str]:
        cached = [self.cards.get(stream_id) for stream_id in stream_ids]
        if all(state is not None for state in cached):
            return [state.currency for state in cached]  # type: ignore[union-attr]
        return [state.currency if state is not None else "" for state in self._load(stream_ids)]

    def _invalidate(self, stream_id: uuid.UUID, version: int) -> None:
        cached: Any = self.cards.get(stream_id, _MISSING)
        if cached is None or (cached is not _MISSING and cached.version < version):
            del self.cards[stream_id]

    def _follow_registry(self, version: int, state: bytes | None) -> None:
        if version <= self.registry.version:
            return
        if version == self.registry.version + 1 and state is not None:
            registry.evolve(self.registry, decode_event(state))  # type: ignore[arg-type]
        else:
            self.load_registry()
