"""Completeness of one entity's package (issue 10, section 2): per checkpoint, a Merkle tree
over every entity's events, whose root the checkpoint signs, so that a partner proves offline
that its package holds all of its events there, or that it had none, without seeing anyone
else's events (the README's "Format, byte for byte" gives the same definitions).

- The entities of an event (`entities_of`): the partner that issued its card, the partner of
  the credential that made it and the store it was made at (a store registered as its own
  entity is known by its store id), the empty ones left out. An event may belong to several.
- An entity's events digest in a checkpoint: D = SHA-256(the leaf hashes (chain.leaf_hash) of
  its events there, concatenated in log order): a flat hash, not a tree, because its package
  holds every one of them (each is proven in the checkpoint's own Merkle tree). Its summary:
  SHA-256(count (8 bytes, big-endian) || D). Only the entity sees its count and D; a
  neighbour in an absence proof shows its summary only.
- An entity's leaf data: len(id) (4 bytes, big-endian) || id (UTF-8) || summary; its leaf
  hash is RFC 6962's SHA-256(0x00 || leaf data).
- The entity tree of a checkpoint: the RFC 6962 tree over the leaf hashes of every entity
  with events in it, sorted by the UTF-8 bytes of their ids. The checkpoint signs its root
  (`entities=`) and its number of leaves (`entity_leaves=`): with the size signed, a leaf's
  index is bound to its place, so two leaves at indices i and i + 1 are neighbours.
- Membership: the entity's count, D, index and inclusion path. Absence: the leaf sorting
  just before the entity id and the one just after it (indices i and i + 1), or only the last
  leaf (index size - 1) when the id sorts after every leaf, only the first (index 0) when
  before, nothing when the tree is empty.
"""

from __future__ import annotations

import bisect
import hashlib
import struct
from collections.abc import Mapping, Sequence

import msgspec

from domain.audit import merkle

_COUNT = struct.Struct(">Q")
_LENGTH = struct.Struct(">I")


def entities_of(issuer: str, partner_id: str, store_id: str) -> list[str]:
    """The entities an event belongs to: its card's issuer, its credential's partner and its
    store (the rule `audit export --entity` has used from the start), each once."""
    found = [issuer] if issuer else []
    if partner_id and partner_id != issuer:
        found.append(partner_id)
    if store_id and store_id not in found:
        found.append(store_id)
    return found


def events_digest(leaves: Sequence[bytes]) -> bytes:
    return hashlib.sha256(b"".join(leaves)).digest()


def summary(count: int, digest: bytes) -> bytes:
    return hashlib.sha256(_COUNT.pack(count) + digest).digest()


def leaf_data(entity: str, entity_summary: bytes) -> bytes:
    name = entity.encode()
    return _LENGTH.pack(len(name)) + name + entity_summary


def leaf_hash(entity: str, entity_summary: bytes) -> bytes:
    return merkle.leaf_hash(leaf_data(entity, entity_summary))


def _key(entity: str) -> bytes:
    return entity.encode()


class Neighbour(msgspec.Struct, frozen=True):
    """Another entity's leaf, shown in an absence proof: its id and summary, not its events."""

    entity: str
    summary: str  # hex
    index: int
    path: list[str]  # hex, RFC 6962 PATH(index, entity tree)


class EntityProof(msgspec.Struct, frozen=True):
    """What one checkpoint's entity tree says about one entity: its leaf (count > 0) or the
    neighbours that show it has none (count == 0)."""

    checkpoint: int  # the checkpoint's first position
    entity: str
    count: int = 0
    events_digest: str = ""  # hex, D over its events' leaf hashes (count > 0)
    index: int = -1
    path: list[str] = []
    before: Neighbour | None = None
    after: Neighbour | None = None


class EntityTree:
    """One checkpoint's entity tree, from each entity's event leaf hashes in log order."""

    def __init__(self, events: Mapping[str, Sequence[bytes]]) -> None:
        self.ids = sorted(events, key=_key)
        self._keys = [_key(e) for e in self.ids]
        self.digests = [events_digest(events[e]) for e in self.ids]
        self.counts = [len(events[e]) for e in self.ids]
        self.summaries = [summary(n, d) for n, d in zip(self.counts, self.digests, strict=True)]
        self.tree = merkle.Tree([leaf_hash(e, s)
                                 for e, s in zip(self.ids, self.summaries, strict=True)])

    @property
    def root(self) -> bytes:
        return self.tree.root

    @property
    def size(self) -> int:
        return self.tree.size

    def proof(self, checkpoint: int, entity: str) -> EntityProof:
        at = bisect.bisect_left(self._keys, _key(entity))  # the first not sorting before it
        if at < self.size and self.ids[at] == entity:
            return EntityProof(checkpoint, entity, self.counts[at], self.digests[at].hex(), at,
                               [h.hex() for h in self.tree.proof(at)])
        return EntityProof(checkpoint, entity,
                           before=self.neighbour(at - 1) if at > 0 else None,
                           after=self.neighbour(at) if at < self.size else None)

    def neighbour(self, index: int) -> Neighbour:
        return Neighbour(self.ids[index], self.summaries[index].hex(), index,
                         [h.hex() for h in self.tree.proof(index)])


def check(proof: EntityProof, entity: str, leaves: Sequence[bytes], entities_root: bytes,
          entity_leaves: int) -> str | None:
    """None when `leaves` (the leaf hashes of the package's events of `entity` in one
    checkpoint, in log order) are all of its events there according to the checkpoint's
    signed entity tree (`entities_root`, `entity_leaves` leaves); else what is wrong."""
    if proof.entity != entity:
        return f"the proof is for entity {proof.entity!r}, not {entity!r}"
    if proof.count > 0:
        return _check_member(proof, entity, leaves, entities_root, entity_leaves)
    problem = _check_absent(proof, entity, entities_root, entity_leaves)
    if problem:
        return problem
    if leaves:
        return (f"the package holds {len(leaves)} events of {entity} here, the signed entity "
                f"tree has none (events of another entity added?)")
    return None


def _check_member(proof: EntityProof, entity: str, leaves: Sequence[bytes],
                  entities_root: bytes, entity_leaves: int) -> str | None:
    try:
        digest = bytes.fromhex(proof.events_digest)
        path = [bytes.fromhex(h) for h in proof.path]
    except ValueError:
        return f"{entity}'s leaf is not hex"
    leaf = leaf_hash(entity, summary(proof.count, digest))
    if not merkle.verify_inclusion(leaf, proof.index, entity_leaves, path, entities_root):
        return (f"{entity}'s leaf ({proof.count} events) is not in the signed entity tree "
                f"(count or digest forged?)")
    if len(leaves) < proof.count:
        return (f"the package holds {len(leaves)} events of {entity} here, the signed "
                f"checkpoint counts {proof.count}: {proof.count - len(leaves)} left out")
    if len(leaves) > proof.count:
        return (f"the package holds {len(leaves)} events of {entity} here, the signed "
                f"checkpoint counts {proof.count}: {len(leaves) - proof.count} not its own "
                f"(added?)")
    if events_digest(leaves) != digest:
        return (f"the package's {len(leaves)} events of {entity} here differ from the signed "
                f"ones (one replaced by another event?)")
    return None


def _check_absent(proof: EntityProof, entity: str, entities_root: bytes,
                  entity_leaves: int) -> str | None:
    before, after, key = proof.before, proof.after, _key(entity)
    if entity_leaves == 0:
        return None if before is None and after is None else "neighbours in an empty tree"
    if before is None and after is None:
        return f"no proof that {entity} has no events here (no neighbouring leaves)"
    for side, neighbour in (("before", before), ("after", after)):
        if neighbour is None:
            continue
        if (_key(neighbour.entity) < key) != (side == "before") or neighbour.entity == entity:
            return f"the neighbour {neighbour.entity!r} does not sort {side} {entity!r}"
        try:
            leaf = leaf_hash(neighbour.entity, bytes.fromhex(neighbour.summary))
            path = [bytes.fromhex(h) for h in neighbour.path]
        except ValueError:
            return f"the neighbour {neighbour.entity!r} is not hex"
        if not merkle.verify_inclusion(leaf, neighbour.index, entity_leaves, path,
                                       entities_root):
            return f"the neighbour {neighbour.entity!r} is not in the signed entity tree"
    if before is not None and after is not None and after.index != before.index + 1:
        return f"the neighbours of {entity} are not adjacent leaves"
    if after is None and before is not None and before.index != entity_leaves - 1:
        return f"no leaf after {entity} shown, but {before.entity!r} is not the last leaf"
    if before is None and after is not None and after.index != 0:
        return f"no leaf before {entity} shown, but {after.entity!r} is not the first leaf"
    return None
