"""Which entities each log event belongs to (domain/audit/entities.py `entities_of`), worked
out from the log alone as it is followed: the same for the checkpointer, which signs each
checkpoint's entity tree, and for `audit export --entity`, which proves an entity's events
against it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from domain.audit import chain as ch
from domain.audit import entities as en
from domain.cards.events import CardIssued, CardIssuedAsReplacement
from domain.common import Meta
from ledger.codec import decode_event
from ledger.store import EventStore
from projections.runner import log_rows

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
# Distinct (issuer, partner, store) triples whose entities are kept (a dict look-up costs a
# tenth of working them out again); cleared when full. Stores times issuers: thousands.
OWNERS_CACHE_MAX = 100_000


class Attribution:
    """Each card stream's issuing partner (from its first event), learnt in log order, and
    the entities of each event. A stream's issuer never changes, and no event of a card comes
    before its issue, so what is known of later positions does no harm to earlier ones."""

    def __init__(self) -> None:
        # by the stream id's integer: a UUID's own hash and equality are Python code, the
        # look-up of every event cost more than its decoding
        self.issuers: dict[int, str] = {}
        self.upto = 0  # the issues of positions up to here are known
        self._owners: dict[tuple[str, str, str], tuple[str, ...]] = {}

    def catch_up(self, store: EventStore, last: int) -> None:
        """Learn the issuers of every card issued up to position `last` (one scan of the log
        after what is known, decoding its issue events only)."""
        if last <= self.upto:
            return
        for row in log_rows(store, ISSUE_TOPICS, first=self.upto + 1, last=last):
            self._issue(row.originator_id, bytes(row.state))
        self.upto = last

    def _issue(self, stream: uuid.UUID, state: bytes) -> None:
        # an event this code cannot read names no issuer
        with contextlib.suppress(msgspec.DecodeError, msgspec.ValidationError):
            self.issuers[stream.int] = decode_event(state).issuing_partner_id  # type: ignore[union-attr]

    def of(self, position: int, stream: uuid.UUID, topic: str, state: bytes
           ) -> tuple[str, ...]:
        """The entities of the event at `position` (which must follow the ones known)."""
        if topic in ISSUE_TOPICS:
            self._issue(stream, state)
        if position > self.upto:
            self.upto = position
        try:
            meta = _head(state).meta
            key = (self.issuers.get(stream.int, ""), meta.partner_id, meta.store_id)
        except (msgspec.DecodeError, msgspec.ValidationError):
            key = (self.issuers.get(stream.int, ""), "", "")
        owners = self._owners.get(key)
        if owners is None:
            if len(self._owners) >= OWNERS_CACHE_MAX:
                self._owners.clear()
            owners = self._owners[key] = tuple(en.entities_of(*key))
        return owners


def entity_tree(attribution: Attribution, rows: Sequence[Any], leaves: Sequence[bytes]
                ) -> tuple[en.EntityTree, list[tuple[str, ...]]]:
    """The entity tree of one checkpoint's rows (log rows, in order, following what
    `attribution` knows) given their leaf hashes, and the entities of each row."""
    events: dict[str, list[bytes]] = {}
    owners = []
    for row, leaf in zip(rows, leaves, strict=True):
        mine = attribution.of(row.id, row.originator_id, row.topic, row.state)
        owners.append(mine)
        for entity in mine:
            events.setdefault(entity, []).append(leaf)
    return en.EntityTree(events), owners


def tree_of(events: Mapping[str, Sequence[bytes]]) -> tuple[str, int]:
    """The (root hex, size) a checkpoint signs for these entities' events."""
    tree = en.EntityTree(events)
    return tree.root.hex(), tree.size


def leaf_hashes(rows: Sequence[Any]) -> list[bytes]:
    return [ch.leaf_hash(r.id, r.originator_id, r.originator_version, r.topic, r.state)
            for r in rows]
