"""Which entities each log event belongs to (domain/audit/entities.py `entities_of`), worked
out from the log alone as it is followed: the same for the checkpointer, which signs each
checkpoint's entity tree, and for `audit export --entity`, which proves an entity's events
against it."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import msgspec

from domain.audit import chain as ch
from domain.audit import entities as en
from domain.cards.events import CardIssued, CardIssuedAsReplacement
from domain.common import Meta
from ledger import limits
from ledger.codec import decode_event
from ledger.store import EventStore

ISSUE_TOPICS = frozenset(msgspec.inspect.type_info(t).tag  # type: ignore[attr-defined]
                         for t in (CardIssued, CardIssuedAsReplacement))
# Every event is stored as [tag, meta, ...] (array-like, tagged), meta as Meta's fields in
# order: only the partner and store are decoded, the rest of both arrays passed over.
_META_FIELDS = [f.name for f in msgspec.structs.fields(Meta)]
_LeanMeta = msgspec.defstruct(
    "AuditMeta", [(name, msgspec.Raw) for name in _META_FIELDS[:_META_FIELDS.index("partner_id")]]
    + [("partner_id", str), ("store_id", str)], array_like=True, frozen=True, gc=False)
assert _META_FIELDS.index("store_id") == _META_FIELDS.index("partner_id") + 1
_Head = msgspec.defstruct("AuditHead", [("tag", msgspec.Raw), ("meta", _LeanMeta)],
                          array_like=True, frozen=True, gc=False)
_head = msgspec.msgpack.Decoder(_Head).decode




class Attribution:
    """Each card stream's issuing partner (its first event, an issue), learnt in log order or
    looked up, and the entities of each event. A stream's issuer never changes and no event
    of a card comes before its issue, so what is known is true at any position."""

    def __init__(self, store: EventStore | None = None) -> None:
        self.store = store  # to look up a stream's first event; None: nothing to look up
        # by the stream id's integer: a UUID's own hash and equality are Python code, the
        # look-up of every event cost more than its decoding
        self.issuers: dict[int, str] = {}
        # True while every event from the log's start has been followed, none forgotten: a
        # stream not in `issuers` then has no issue event, nothing to look up
        self.complete = True
        self.upto = 0  # the last position followed
        self._owners: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def follow_from(self, position: int) -> None:
        """The next event given will be the one after `position` (a checkpointer restarting
        after another one's checkpoint, an export of a later range): an event skipped over
        may have issued a card, so from now on unknown streams are looked up."""
        if position > self.upto:
            self.complete = False
        self.upto = position

    def of(self, position: int, stream: uuid.UUID, topic: str, state: bytes
           ) -> tuple[str, ...]:
        """The entities of the event at `position` (the one after the last given, or one
        given before again)."""
        return self.of_rows((_Row(position, stream, topic, state),))[0]

    def of_rows(self, rows: Iterable[Any]) -> list[tuple[str, ...]]:
        """The entities of each of these log rows (in log order, as `of`): a page at a time,
        with the look-ups bound once, because the checkpointer does it for every event."""
        issuers, owners_cache, head, found = self.issuers, self._owners, _head, []
        for row in rows:
            stream = row.originator_id.int
            if row.topic in ISSUE_TOPICS:
                self._learn(stream, _issuer(row.state))
            issuer = issuers.get(stream)
            if issuer is None:
                issuer = self._look_up(row.originator_id)
            try:
                meta = head(row.state).meta  # type: ignore[attr-defined]
                key = (issuer, meta.partner_id, meta.store_id)
            except (msgspec.DecodeError, msgspec.ValidationError):
                key = (issuer, "", "")
            owners = owners_cache.get(key)
            if owners is None:
                if len(owners_cache) >= limits.AUDIT_OWNERS_CACHE_MAX:
                    owners_cache.clear()
                owners = owners_cache[key] = tuple(en.entities_of(*key))
            found.append(owners)
            if row.id > self.upto:
                self.upto = row.id
        return found

    def _learn(self, stream: int, issuer: str) -> None:
        if self.store is not None and len(self.issuers) >= limits.AUDIT_ISSUERS_MAX:
            self.issuers.clear()
            self.complete = False
        self.issuers[stream] = issuer

    def _look_up(self, stream: uuid.UUID) -> str:
        issuer = ""
        if not self.complete and self.store is not None:
            first = self.store.stream(stream, lte=1)
            if first and first[0].topic in ISSUE_TOPICS:
                issuer = _issuer(first[0].state)
        self._learn(stream.int, issuer)
        return issuer


class _Row(NamedTuple):
    id: int
    originator_id: uuid.UUID
    topic: str
    state: bytes


def _issuer(state: bytes) -> str:
    """The issuing partner named by an issue event ("" if this code cannot read it)."""
    try:
        return decode_event(state).issuing_partner_id  # type: ignore[union-attr]
    except (msgspec.DecodeError, msgspec.ValidationError, AttributeError):
        return ""


def entity_tree(attribution: Attribution, rows: Sequence[Any], leaves: Sequence[bytes]
                ) -> tuple[en.EntityTree, list[tuple[str, ...]]]:
    """The entity tree of one checkpoint's rows (log rows, in order, following what
    `attribution` knows) given their leaf hashes, and the entities of each row."""
    events: defaultdict[str, list[bytes]] = defaultdict(list)
    owners = attribution.of_rows(rows)
    for mine, leaf in zip(owners, leaves, strict=True):
        for entity in mine:
            events[entity].append(leaf)
    return en.EntityTree(events), owners


def tree_of(events: Mapping[str, Sequence[bytes]]) -> tuple[str, int]:
    """The (root hex, size) a checkpoint signs for these entities' events."""
    tree = en.EntityTree(events)
    return tree.root.hex(), tree.size


def leaf_hashes(rows: Sequence[Any]) -> list[bytes]:
    return [ch.leaf_hash(r.id, r.originator_id, r.originator_version, r.topic, r.state)
            for r in rows]
