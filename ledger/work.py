"""A request on its way through the writer, and the unit of work one attempt at a batch fills:
the events to append (to streams of any kind), the request keys, the snapshots, and the states
it touched (so a failed attempt can be forgotten)."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec
from eventsourcing.persistence import StoredEvent

from domain.common import Principal, Role
from ledger.codec import Outcome, encode, topic_of
from ledger.refusals import Failure
from ledger.store import KeyRow

Reply = Outcome | Failure


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
class Work:
    """What one attempt at a batch decided: events, keys, and the state it touched."""

    stored: list[StoredEvent] = field(default_factory=list)
    keys: list[KeyRow] = field(default_factory=list)
    keys_by_pair: dict[tuple[str, str], KeyRow] = field(default_factory=dict)
    # stream id -> its state after this attempt; the version it had before the attempt
    touched: dict[uuid.UUID, Any] = field(default_factory=dict)
    versions_before: dict[uuid.UUID, int] = field(default_factory=dict)
    registry_touched: bool = False  # the registry is one stream, reloaded whole if forgotten
    snapshots: list[StoredEvent] = field(default_factory=list)
    # What handlers prepared for the whole batch before deciding (e.g. the baskets evaluated
    # by one kernel call): id(request) -> anything the handler recognises.
    prepared: dict[int, Any] = field(default_factory=dict)
    # Net debit cap: the flows this attempt added to the open period's positions (taken back
    # if it fails), and whether it closed the period.
    flows: list[tuple[str, str, str, int]] = field(default_factory=list)
    closed_period: bool = False
    # The split layout only: for each key, the lanes its request wrote to (() = every lane:
    # a key whose request wrote nothing and names no card, e.g. a reversal's tombstone).
    key_lanes: list[tuple[int, ...]] = field(default_factory=list)

    def add_key(self, row: KeyRow) -> None:
        self.keys.append(row)
        self.keys_by_pair[(row.key_space, row.request_id)] = row

    def append(self, stream_id: uuid.UUID, version: int, event: Any) -> None:
        """One event for a stream of any kind, at the version it takes."""
        self.versions_before.setdefault(stream_id, version - 1)
        self.stored.append(StoredEvent(stream_id, version, topic_of(event), encode(event)))

    def touch(self, stream_id: uuid.UUID, state: Any) -> None:
        self.touched[stream_id] = state
