"""Signed checkpoints over the log (issue 10, section 2; the format is domain/audit/chain.py).

A checkpointer follows the log beside the read models (in `loyalty-ledger project`, which
`serve --audit-key FILE` starts with the key; or once with `loyalty-ledger audit checkpoint`).
It folds each event into the partition's chain, and every `limits.AUDIT_CHECKPOINT_EVENTS`
events, at every settlement close (a checkpoint ends at the close's marker) and when
`limits.AUDIT_CHECKPOINT_S` passed with events pending, it writes one checkpoint signed with
the operator's Ed25519 key and the chain value of each event it covers, in one transaction.
Each checkpoint also signs the root of its entity tree (domain/audit/entities.py): every
entity's count and digest of its events there, which is what lets an entity's package prove
it holds all of that entity's events.
The key stays in its file: the database holds only public key ids and signatures.

Several checkpointers may run (one per `project` process): a checkpoint is keyed by its
partition and first position, so the second one to write the same range writes nothing and
starts again from what the first wrote.

The split log (ledger/partitioned.py): one chain per lane, the checkpoint's partition being
the lane (0: the registry's, 1 + p: card partition p), its positions that lane's own
notification ids; each lane is checkpointed, verified and exported on its own (a lane is
totally ordered, there is no order across lanes). A card lane's checkpoint ends at the
lane's mark of a settlement close (`SettlementPeriodMarked`), the registry's at the close.
On one log there is the one lane 0, as before: the format (v1, v2) is unchanged."""

from __future__ import annotations

import binascii
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from domain.audit import chain as ch
from domain.audit import merkle
from domain.registry.events import SettlementPeriodClosed, SettlementPeriodMarked
from ledger import limits
from ledger.store import EventStore, Session
from projections.audit_entities import Attribution, tree_of
from projections.runner import log_rows

PARTITION = 0  # one log: lane 0; the split log has a chain per lane (store.lanes())
CLOSE_TOPIC: str = msgspec.inspect.type_info(SettlementPeriodClosed).tag  # type: ignore[attr-defined]
MARK_TOPIC: str = msgspec.inspect.type_info(SettlementPeriodMarked).tag  # type: ignore[attr-defined]
CLOSE_TOPICS = frozenset((CLOSE_TOPIC, MARK_TOPIC))  # a close, or its mark in a card lane
PAGE_ROWS = 5_000

_CHECKPOINTS = ("partition_no INTEGER NOT NULL, first_position BIGINT NOT NULL, "
                "last_position BIGINT NOT NULL, size BIGINT NOT NULL, root TEXT NOT NULL, "
                "chain_before TEXT NOT NULL, chain TEXT NOT NULL, at_us BIGINT NOT NULL, "
                "key_id TEXT NOT NULL, signature TEXT NOT NULL, {entity_columns}, "
                "PRIMARY KEY (partition_no, first_position)")
# Added with the v2 checkpoints (the entity tree); a v1 checkpoint has '' and 0.
_ENTITY_COLUMNS = ("entities TEXT NOT NULL DEFAULT ''",
                   "entity_leaves BIGINT NOT NULL DEFAULT 0")
_COLUMNS = ("partition_no, first_position, last_position, size, root, chain_before, chain, "
            "at_us, key_id, signature, entities, entity_leaves")
# The chain value after each event of a checkpoint, 32 bytes each in log order, one row per
# checkpoint (a row per event made the checkpointer 6x slower): what lets `verify` name the
# first event that differs, not only the checkpoint.
_CHAINS = ("partition_no INTEGER NOT NULL, first_position BIGINT NOT NULL, chains {blob} NOT "
           "NULL, PRIMARY KEY (partition_no, first_position)")


# ------------------------------------------------------------------------------------ keys


class Signer:
    """The operator's signing key, read from a PEM file (PKCS#8, unencrypted)."""

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_raw = key.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)
        self.key_id = ch.key_id(self.public_raw)

    @classmethod
    def from_file(cls, path: str | Path) -> Signer:
        try:
            key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as error:
            raise ValueError(f"audit key {path}: {error}") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError(f"audit key {path}: not an Ed25519 private key")
        return cls(key)

    def sign(self, checkpoint: ch.Checkpoint) -> ch.Checkpoint:
        return msgspec.structs.replace(checkpoint,
                                       signature=self._key.sign(checkpoint.message()).hex())


def generate_keys(directory: str | Path) -> tuple[Path, Path, str]:
    """A new key pair as `audit-key.pem` (private: give it to `serve`, keep it out of the
    database and of backups of it) and `audit-key.pub.pem` (public: give it to auditors)."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private, public = out / "audit-key.pem", out / "audit-key.pub.pem"
    if private.exists():
        raise ValueError(f"{private} exists: a key is never overwritten (rotate into a new "
                         f"directory)")
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                          serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    private.chmod(0o600)
    public.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, Signer(key).key_id


def load_public_keys(paths: Iterable[str | Path]) -> dict[str, Ed25519PublicKey]:
    """Public keys by key id (several after a rotation: each checkpoint names its own)."""
    keys: dict[str, Ed25519PublicKey] = {}
    for path in paths:
        try:
            key = serialization.load_pem_public_key(Path(path).read_bytes())
        except (OSError, ValueError) as error:
            raise ValueError(f"public key {path}: {error}") from None
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError(f"public key {path}: not an Ed25519 public key")
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        keys[ch.key_id(raw)] = key
    return keys


def signed_by(checkpoint: ch.Checkpoint, keys: dict[str, Ed25519PublicKey]) -> bool:
    key = keys.get(checkpoint.key_id)
    if key is None:
        return False
    try:
        key.verify(binascii.unhexlify(checkpoint.signature), checkpoint.message())
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


# ----------------------------------------------------------------------------- the table


def create_tables(store: EventStore) -> None:
    with store.session(commit=True) as session:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        session.execute("CREATE TABLE IF NOT EXISTS audit_checkpoints "
                        f"({_CHECKPOINTS.format(entity_columns=', '.join(_ENTITY_COLUMNS))})")
        _add_entity_columns(session)
        session.execute(f"CREATE TABLE IF NOT EXISTS audit_chain ({_CHAINS.format(blob=blob)})")


def _add_entity_columns(session: Session) -> None:
    """A table made before v2 checkpoints gains their columns (its rows stay v1). Looked at
    first: an ALTER TABLE, even one with nothing to do, waits for every reader of the table."""
    if session.dialect == "sqlite":
        have = {row[1] for row in session.query("PRAGMA table_info(audit_checkpoints)")}
    else:
        have = {row[0] for row in session.query(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = 'audit_checkpoints'")}
    for column in _ENTITY_COLUMNS:
        if column.split()[0] not in have:
            session.execute(f"ALTER TABLE audit_checkpoints ADD COLUMN {column}")


def read_checkpoints(session: Session, partition: int = PARTITION) -> list[ch.Checkpoint]:
    return [ch.Checkpoint(*row) for row in session.query(
        f"SELECT {_COLUMNS} FROM audit_checkpoints WHERE partition_no = ? "
        "ORDER BY first_position", (partition,))]


def _latest(session: Session, partition: int) -> ch.Checkpoint | None:
    rows = session.query(
        f"SELECT {_COLUMNS} FROM audit_checkpoints WHERE partition_no = ? "
        "ORDER BY first_position DESC LIMIT 1", (partition,))
    return ch.Checkpoint(*rows[0]) if rows else None


def recorded_chain(session: Session, checkpoint: ch.Checkpoint) -> list[str]:
    """The chain values recorded after each event of `checkpoint`, in order (hex)."""
    rows = session.query("SELECT chains FROM audit_chain WHERE partition_no = ? AND "
                         "first_position = ?", (checkpoint.partition, checkpoint.first))
    blob = bytes(rows[0][0]) if rows else b""
    return [blob[i:i + 32].hex() for i in range(0, len(blob), 32)]


# ------------------------------------------------------------------------ the checkpointer


class Checkpointer:
    """Checkpoints of every lane of the log (one `LaneCheckpointer` each: one on one log)."""

    def __init__(self, store: EventStore, signer: Signer,
                 every_events: int = limits.AUDIT_CHECKPOINT_EVENTS,
                 every_s: float = limits.AUDIT_CHECKPOINT_S,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.lanes = [LaneCheckpointer(store, signer, every_events, every_s, lane, clock)
                      for lane in store.lanes()]

    @property
    def written(self) -> int:
        return sum(lane.written for lane in self.lanes)

    def run_once(self, *, flush: bool = False) -> list[ch.Checkpoint]:
        """Each lane's pass (`LaneCheckpointer.run_once`), the registry's first; the
        checkpoints written, lane by lane."""
        return [cp for lane in self.lanes for cp in lane.run_once(flush=flush)]


@dataclass
class LaneCheckpointer:
    """The checkpointer of one lane's chain (`partition`: the lane)."""

    store: EventStore
    signer: Signer
    every_events: int = limits.AUDIT_CHECKPOINT_EVENTS
    every_s: float = limits.AUDIT_CHECKPOINT_S
    partition: int = PARTITION
    clock: Callable[[], float] = time.time  # seconds; tests pass their own
    # Folded but not yet checkpointed: kept between passes while the table's latest
    # checkpoint is still the one they continue.
    _after: ch.Checkpoint | None = None
    _position: int = 0
    _chain: bytes = ch.GENESIS
    _leaves: list[bytes] = field(default_factory=list)
    _rows: list[tuple[int, bytes]] = field(default_factory=list)
    _by_entity: defaultdict[str, list[bytes]] = field(
        default_factory=lambda: defaultdict(list))  # each entity's leaves
    _attribution: Attribution = field(init=False)
    _since: float = 0.0
    _created: bool = False
    written: int = 0  # checkpoints this one wrote

    def __post_init__(self) -> None:
        self._attribution = Attribution(self.store)

    def run_once(self, *, flush: bool = False) -> list[ch.Checkpoint]:
        """Fold what the log holds after the last pass; write the checkpoints that are due
        (all pending events when `flush`). Returns the checkpoints written."""
        if not self._created:
            create_tables(self.store)
            self._created = True
        with self.store.session(commit=False) as session:
            latest = _latest(session, self.partition)
        if latest != self._after or not self._since:
            self._restart(latest)
        made: list[ch.Checkpoint] = []
        position = self._position + 1
        while page := self.store.read_lane(self.partition, position, PAGE_ROWS):
            for row, owners in zip(page, self._attribution.of_rows(page), strict=True):
                leaf = ch.leaf_hash(row.id, row.originator_id, row.originator_version,
                                    row.topic, row.state)
                self._chain = ch.link(self._chain, leaf)
                self._leaves.append(leaf)
                self._rows.append((row.id, self._chain))
                for entity in owners:
                    self._by_entity[entity].append(leaf)
                self._position = row.id
                due = len(self._leaves) >= self.every_events or row.topic in CLOSE_TOPICS
                if due and not self._write(made):
                    return made
            position = page[-1].id + 1
        due = self.clock() - self._since >= self.every_s
        if self._leaves and (flush or due):
            self._write(made)
        return made

    def _restart(self, latest: ch.Checkpoint | None) -> None:
        self._after = latest
        self._position = latest.last if latest else 0
        self._chain = bytes.fromhex(latest.chain) if latest else ch.GENESIS
        self._leaves, self._rows, self._by_entity = [], [], defaultdict(list)
        self._attribution.follow_from(self._position)
        self._since = self.clock()

    def _write(self, made: list[ch.Checkpoint]) -> bool:
        first = self._rows[0][0]
        before = bytes.fromhex(self._after.chain) if self._after else ch.GENESIS
        entities, entity_leaves = tree_of(self._by_entity)
        checkpoint = self.signer.sign(ch.Checkpoint(
            self.partition, first, self._position, len(self._leaves),
            merkle.root(self._leaves).hex(), before.hex(), self._chain.hex(),
            int(self.clock() * 1_000_000), self.signer.key_id, entities=entities,
            entity_leaves=entity_leaves))
        with self.store.session(commit=True) as session:
            on_conflict = " ON CONFLICT DO NOTHING"
            inserted = session.execute(
                f"INSERT INTO audit_checkpoints ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" + on_conflict,
                msgspec.structs.astuple(checkpoint))
            if inserted:
                session.execute("INSERT INTO audit_chain (partition_no, first_position, chains) "
                                "VALUES (?, ?, ?)", (self.partition, first,
                                                     b"".join(c for _, c in self._rows)))
        if not inserted:  # another checkpointer wrote this range first: continue from its
            self._since = 0.0
            return False
        made.append(checkpoint)
        self.written += 1
        self._after = checkpoint
        self._leaves, self._rows, self._by_entity = [], [], defaultdict(list)
        self._since = self.clock()
        return True


# --------------------------------------------------------------------------- verification


class Event(msgspec.Struct, frozen=True):
    """One log row as an auditor sees it; `chain` is the chain value recorded for it."""

    position: int
    stream_id: str  # UUID, canonical text
    version: int
    topic: str
    state: bytes
    chain: str = ""

    def leaf(self) -> bytes:
        return ch.leaf_hash(self.position, uuid.UUID(self.stream_id), self.version,
                            self.topic, self.state)


@dataclass
class Verdict:
    checkpoints: int = 0
    events: int = 0
    uncovered: int = 0  # events after the last checkpoint: not yet protected
    entity: str = ""  # an entity's package: whose
    unproven: int = 0  # an entity's package: v1 checkpoints, which prove no completeness
    entity_trees: int = 0  # v2 checkpoints whose entity tree was worked out again and matched
    problems: list[str] = field(default_factory=list)
    first_bad_position: int | None = None
    first_bad_lane: int | None = None  # the split log: the lane of `first_bad_position`

    @property
    def ok(self) -> bool:
        return not self.problems

    def bad(self, position: int | None, problem: str) -> None:
        if position is not None and self.first_bad_position is None:
            self.first_bad_position = position
        self.problems.append(problem)


def verify(events: Iterator[Event], checkpoints: list[ch.Checkpoint],
           keys: dict[str, Ed25519PublicKey], attribution: Attribution | None = None
           ) -> Verdict:
    """Check a contiguous run of one partition's events against its signed checkpoints: every
    checkpoint signed by one of `keys` and continuing the one before it, every event's chain
    value as recorded, every checkpoint's size, root and chain as recomputed; with an
    `attribution` (the events start at the log's start: every card's issue is among them)
    every v2 checkpoint's entity tree too. The events must start at the first checkpoint's
    first position (an export) or at the log's start."""
    verdict = Verdict(checkpoints=len(checkpoints))
    if not signed_in_line(checkpoints, keys, verdict):
        return verdict
    chain = bytes.fromhex(checkpoints[0].chain_before) if checkpoints else ch.GENESIS
    at = 0
    leaves: list[bytes] = []
    by_entity: defaultdict[str, list[bytes]] = defaultdict(list)
    entity_trees = attribution is not None
    previous = 0
    for event in events:
        verdict.events += 1
        if event.position <= previous:
            verdict.bad(event.position, f"position {event.position}: out of order after "
                                        f"{previous}")
            return verdict
        previous = event.position
        while at < len(checkpoints) and event.position > checkpoints[at].last:
            if not _closes(checkpoints[at], leaves, chain, by_entity, entity_trees, verdict):
                return verdict
            leaves, at, by_entity = [], at + 1, defaultdict(list)
        stream = uuid.UUID(event.stream_id)
        leaf = ch.leaf_hash(event.position, stream, event.version, event.topic, event.state)
        if attribution is not None:
            for entity in attribution.of(event.position, stream, event.topic, event.state):
                by_entity[entity].append(leaf)
        chain = ch.link(chain, leaf)
        if at < len(checkpoints):
            if event.position < checkpoints[at].first:
                verdict.bad(event.position, f"position {event.position}: between checkpoints "
                                            f"(inserted?)")
                return verdict
            leaves.append(leaf)
        else:
            verdict.uncovered += 1
        if event.chain and event.chain != chain.hex():
            verdict.bad(event.position, f"position {event.position}: its chain value differs "
                                        f"from the one recorded (this event or one before it "
                                        f"since the previous was altered, inserted, removed or "
                                        f"moved)")
            return verdict
    while at < len(checkpoints):
        if not _closes(checkpoints[at], leaves, chain, by_entity, entity_trees, verdict):
            return verdict
        leaves, at, by_entity = [], at + 1, defaultdict(list)
    return verdict


def signed_in_line(checkpoints: list[ch.Checkpoint], keys: dict[str, Ed25519PublicKey],
                   verdict: Verdict) -> bool:
    """Every checkpoint signed by one of `keys`, each continuing the one before it."""
    for index, cp in enumerate(checkpoints):
        if not signed_by(cp, keys):
            verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: not signed by any given "
                                  f"key (key id {cp.key_id})")
        if index and (cp.chain_before != checkpoints[index - 1].chain
                      or cp.first <= checkpoints[index - 1].last):
            verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last} does not continue the "
                                  f"one before it")
    return verdict.ok


def _closes(cp: ch.Checkpoint, leaves: list[bytes], chain: bytes,
            by_entity: dict[str, list[bytes]], entity_trees: bool, verdict: Verdict) -> bool:
    if len(leaves) != cp.size:
        verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: {len(leaves)} events, the "
                              f"signed checkpoint counts {cp.size}")
    elif merkle.root(leaves).hex() != cp.root:
        verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: the events' Merkle root "
                              f"differs from the signed one")
    elif chain.hex() != cp.chain:
        verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: the chain differs from the "
                              f"signed one")
    elif cp.v2 and entity_trees:
        if tree_of(by_entity) != (cp.entities, cp.entity_leaves):
            verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: the entity tree worked out "
                                  f"from its events differs from the signed one (an entity's "
                                  f"events misstated)")
        else:
            verdict.entity_trees += 1
    return verdict.ok


def with_recorded_chain(store: EventStore, rows: Iterable[Any],
                        checkpoints: list[ch.Checkpoint]) -> Iterator[Event]:
    """Log rows as `verify` reads them, each with the chain value recorded after the event
    at its place in its checkpoint (none after the last checkpoint)."""
    at, index, recorded = -1, 0, [""]
    for row in rows:
        while at + 1 < len(checkpoints) and row.id >= checkpoints[at + 1].first:
            at, index = at + 1, 0
            with store.session(commit=False) as session:
                recorded = recorded_chain(session, checkpoints[at])
        covered = at >= 0 and row.id <= checkpoints[at].last and index < len(recorded)
        yield Event(row.id, str(row.originator_id), row.originator_version, row.topic,
                    bytes(row.state), recorded[index] if covered else "")
        index += 1


def verify_database(store: EventStore, keys: dict[str, Ed25519PublicKey]) -> Verdict:
    """Every lane's chain against its checkpoints (one lane on one log); on the split log the
    verdicts summed, each problem naming its lane."""
    create_tables(store)
    verdicts: list[tuple[int, Verdict]] = []
    for lane in store.lanes():
        with store.session(commit=False) as session:
            checkpoints = read_checkpoints(session, lane)
        verdicts.append((lane, verify(
            with_recorded_chain(store, log_rows(store, page_rows=PAGE_ROWS, lane=lane),
                                checkpoints), checkpoints, keys, Attribution(store))))
    return verdicts[0][1] if not store.split else merged(verdicts)


def merged(verdicts: list[tuple[int, Verdict]]) -> Verdict:
    """The verdicts of several lanes as one: counts summed, each problem prefixed with its
    lane, the first bad position the first lane's that has one (`first_bad_lane`)."""
    whole = Verdict()
    for lane, verdict in verdicts:
        for name in ("checkpoints", "events", "uncovered", "unproven", "entity_trees"):
            setattr(whole, name, getattr(whole, name) + getattr(verdict, name))
        whole.entity = whole.entity or verdict.entity
        if verdict.first_bad_position is not None and whole.first_bad_position is None:
            whole.first_bad_position, whole.first_bad_lane = verdict.first_bad_position, lane
        whole.problems += [f"lane {lane}: {problem}" for problem in verdict.problems]
    return whole
