"""What is hashed and signed, byte for byte, so that an auditor can write their own verifier
(the README's "Tamper evidence" gives the same definitions with test vectors).

- An event's leaf data: its log position (8 bytes, big-endian), its stream id (the 16 bytes
  of the UUID), its version in the stream (8 bytes, big-endian), its topic (4-byte big-endian
  length, then UTF-8) and its stored payload (4-byte big-endian length, then the bytes exactly
  as the log holds them). Its leaf hash is RFC 6962's: SHA-256(0x00 || leaf data).
- The chain of a log partition: c(0) = 32 zero bytes; each event in log order then
  c = SHA-256(c_before || leaf hash). A removed, inserted, altered or reordered event changes
  every chain value from it on.
- A checkpoint covers the events of one partition from `first` to `last` (positions,
  inclusive; `size` events: a position may be skipped by the database's sequence, never
  reused): `root` is the RFC 6962 Merkle tree hash over their leaf hashes, `chain_before` the
  chain value before the first and `chain` the value after the last. Its signed message is the
  ASCII line `message()` builds, signed with Ed25519 by the operator's key `key_id` (the first
  8 bytes of SHA-256 over the 32-byte raw public key, in hex).
- Since v2 a checkpoint also signs the root of its entity tree (`entities`) and the tree's
  number of leaves (`entity_leaves`): domain/audit/entities.py. A v1 checkpoint (written
  before) keeps its v1 line and still verifies; it proves no entity's completeness.
"""

from __future__ import annotations

import hashlib
import struct
import uuid

import msgspec

from domain.audit import merkle

GENESIS = bytes(32)
FORMAT = "loyalty-ledger/checkpoint/v1"
FORMAT_V2 = "loyalty-ledger/checkpoint/v2"


_HEAD = struct.Struct(">Q16sQ")
_LENGTH = struct.Struct(">I")


def leaf_data(position: int, stream_id: uuid.UUID, version: int, topic: str,
              state: bytes) -> bytes:
    topic_bytes = topic.encode()
    return b"".join((_HEAD.pack(position, stream_id.bytes, version),
                     _LENGTH.pack(len(topic_bytes)), topic_bytes,
                     _LENGTH.pack(len(state)), state))


def leaf_hash(position: int, stream_id: uuid.UUID, version: int, topic: str,
              state: bytes) -> bytes:
    return merkle.leaf_hash(leaf_data(position, stream_id, version, topic, state))


def link(chain_before: bytes, leaf: bytes) -> bytes:
    return hashlib.sha256(chain_before + leaf).digest()


def key_id(public_raw: bytes) -> str:
    return hashlib.sha256(public_raw).digest()[:8].hex()


class Checkpoint(msgspec.Struct, frozen=True):
    partition: int
    first: int
    last: int
    size: int
    root: str  # hex
    chain_before: str  # hex
    chain: str  # hex
    at_us: int  # when it was made (UTC microseconds)
    key_id: str
    signature: str = ""  # hex, Ed25519 over message()
    entities: str = ""  # hex, the root of the entity tree; "" in a v1 checkpoint
    entity_leaves: int = 0  # the entity tree's number of leaves

    @property
    def v2(self) -> bool:
        return bool(self.entities)

    def message(self) -> bytes:
        if not self.v2:
            return (f"{FORMAT} partition={self.partition} first={self.first} "
                    f"last={self.last} size={self.size} root={self.root} "
                    f"chain_before={self.chain_before} chain={self.chain} at_us={self.at_us} "
                    f"key={self.key_id}").encode()
        return (f"{FORMAT_V2} partition={self.partition} first={self.first} last={self.last} "
                f"size={self.size} root={self.root} entities={self.entities} "
                f"entity_leaves={self.entity_leaves} chain_before={self.chain_before} "
                f"chain={self.chain} at_us={self.at_us} key={self.key_id}").encode()
