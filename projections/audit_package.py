"""An auditor's package (`loyalty-ledger audit export` / `audit verify`): the events of a
range of signed checkpoints as JSON lines, the checkpoints, and for one entity's package the
inclusion proofs of its events against the signed roots. Verifying needs no database: the
files and the operator's public key(s).

Layout of DIR:
- manifest.json: format, partition, entity ("" = every event), first and last position, counts.
- checkpoints.jsonl: one signed checkpoint per line (domain/audit/chain.py: the signed line).
- events.jsonl: one event per line, in log order: position, stream_id, version, topic, state
  (base64 of the stored bytes: what is hashed), event (the same decoded, for reading only: the
  hash does not cover it), and either chain (the recorded chain value after it: a whole-log
  package) or proof (checkpoint, index, path: an entity's package, which leaves out every
  other entity's events).
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from domain.audit import chain as ch
from domain.audit import merkle
from domain.cards.events import CardIssued, CardIssuedAsReplacement
from ledger.codec import decode_event
from ledger.store import EventStore
from projections import checkpoints as cps
from projections.runner import log_rows

FORMAT = "loyalty-ledger/audit-export/v1"


class PackageError(ValueError):
    """The package cannot be read (missing file, bad line): not a verdict on the log."""


def _checkpoints_between(store: EventStore, first: int, last: int) -> list[ch.Checkpoint]:
    """The checkpoints covering any position in first..last, whole."""
    cps.create_tables(store)
    with store.session(commit=False) as session:
        return [cp for cp in cps.read_checkpoints(session)
                if cp.last >= first and cp.first <= last]


def _decoded(state: bytes) -> Any:
    try:
        return msgspec.to_builtins(decode_event(state))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def export(store: EventStore, first: int, last: int, out: str | Path,
           entity: str = "") -> dict[str, Any]:
    """Write the package of the checkpoints covering positions first..last (whole
    checkpoints: a root can only be checked with all its leaves, or an entity's proofs)."""
    chosen = _checkpoints_between(store, first, last)
    if not chosen:
        raise PackageError(f"no signed checkpoint covers positions {first}..{last}: run the "
                           f"checkpointer (serve --audit-key, or audit checkpoint) first")
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    issuers = _issuers(store, chosen[-1].last) if entity else {}
    events = 0
    with (directory / "checkpoints.jsonl").open("wb") as f:
        for cp in chosen:
            f.write(msgspec.json.encode(cp) + b"\n")
    with (directory / "events.jsonl").open("w") as f:
        for cp in chosen:
            with store.session(commit=False) as session:
                recorded = cps.recorded_chain(session, cp)
            rows = list(log_rows(store, page_rows=cps.PAGE_ROWS, first=cp.first,
                                 last=cp.last))
            tree = merkle.Tree([ch.leaf_hash(r.id, r.originator_id, r.originator_version,
                                             r.topic, r.state) for r in rows]) if entity else None
            for index, row in enumerate(rows):
                event = _decoded(bytes(row.state))
                line: dict[str, Any] = {
                    "position": row.id, "stream_id": str(row.originator_id),
                    "version": row.originator_version, "topic": row.topic,
                    "state": base64.b64encode(bytes(row.state)).decode(), "event": event}
                if tree is None:
                    line["chain"] = recorded[index] if index < len(recorded) else ""
                elif _belongs(event, row.originator_id, issuers, entity):
                    line["proof"] = {"checkpoint": cp.first, "index": index,
                                     "path": [h.hex() for h in tree.proof(index)]}
                else:
                    continue
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
                events += 1
    manifest = {"format": FORMAT, "partition": cps.PARTITION, "entity": entity,
                "first": chosen[0].first, "last": chosen[-1].last, "events": events,
                "checkpoints": len(chosen),
                "key_ids": sorted({cp.key_id for cp in chosen})}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _issuers(store: EventStore, last: int) -> dict[uuid.UUID, str]:
    """Each card stream's issuing partner (its first event), up to `last`."""
    issuers: dict[uuid.UUID, str] = {}
    topics = {msgspec.inspect.type_info(t).tag  # type: ignore[attr-defined]
              for t in (CardIssued, CardIssuedAsReplacement)}
    for row in log_rows(store, frozenset(topics), cps.PAGE_ROWS, last=last):
        event = decode_event(row.state)
        issuers[row.originator_id] = event.issuing_partner_id  # type: ignore[union-attr]
    return issuers


def _belongs(event: Any, stream: uuid.UUID, issuers: dict[uuid.UUID, str],
             entity: str) -> bool:
    """An entity's events: those of its cards, and those made at its stores or by its
    credentials (a store registered as its own entity matches by its store id)."""
    if issuers.get(stream) == entity:
        return True
    if not isinstance(event, list) or len(event) < 2 or not isinstance(event[1], list):
        return False
    meta = event[1]  # array_like: [tag, meta, ...]; meta = [request, credential, role,
    return len(meta) >= 5 and entity in (meta[3], meta[4])  # partner, store, ...]


# ------------------------------------------------------------------------------ verifying


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with path.open() as f:
            for number, line in enumerate(f, 1):
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise PackageError(f"{path.name} line {number}: {error}") from None
    except OSError as error:
        raise PackageError(f"{path}: {error.strerror}") from None


def verify_package(directory: str | Path,
                   keys: dict[str, Ed25519PublicKey]) -> cps.Verdict:
    folder = Path(directory)
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise PackageError(f"{folder / 'manifest.json'}: {error}") from None
    if manifest.get("format") != FORMAT:
        raise PackageError(f"not a {FORMAT} package: format {manifest.get('format')!r}")
    try:
        checkpoints = [msgspec.convert(line, ch.Checkpoint)
                       for line in _lines(folder / "checkpoints.jsonl")]
    except msgspec.ValidationError as error:
        raise PackageError(f"checkpoints.jsonl: {error}") from None
    events = _events(folder / "events.jsonl")
    if not manifest.get("entity"):
        verdict = cps.verify((event for event, _ in events), checkpoints, keys)
        if verdict.ok and verdict.uncovered:
            verdict.bad(None, f"{verdict.uncovered} events after the last checkpoint")
        return verdict
    return _verify_proofs(events, checkpoints, keys)


def _events(path: Path) -> Iterator[tuple[cps.Event, dict[str, Any] | None]]:
    for line in _lines(path):
        try:
            yield (cps.Event(int(line["position"]), str(uuid.UUID(line["stream_id"])),
                             int(line["version"]), str(line["topic"]),
                             base64.b64decode(line["state"], validate=True),
                             str(line.get("chain", ""))), line.get("proof"))
        except (KeyError, ValueError, TypeError) as error:
            raise PackageError(f"{path.name}: a bad event line ({error})") from None


def _verify_proofs(events: Iterator[tuple[cps.Event, dict[str, Any] | None]],
                   checkpoints: list[ch.Checkpoint],
                   keys: dict[str, Ed25519PublicKey]) -> cps.Verdict:
    verdict = cps.Verdict(checkpoints=len(checkpoints))
    by_first = {cp.first: cp for cp in checkpoints}
    for cp in checkpoints:
        if not cps.signed_by(cp, keys):
            verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: not signed by any "
                                  f"given key (key id {cp.key_id})")
            return verdict
    previous = 0
    for event, proof in events:
        verdict.events += 1
        cp = by_first.get(int((proof or {}).get("checkpoint", -1)))
        if event.position <= previous:
            verdict.bad(event.position, f"position {event.position}: out of order")
            return verdict
        previous = event.position
        if cp is None or not cp.first <= event.position <= cp.last:
            verdict.bad(event.position, f"position {event.position}: no signed checkpoint "
                                        f"covers it")
            return verdict
        assert proof is not None
        path = [bytes.fromhex(h) for h in proof.get("path", [])]
        if not merkle.verify_inclusion(event.leaf(), int(proof.get("index", -1)), cp.size,
                                       path, bytes.fromhex(cp.root)):
            verdict.bad(event.position, f"position {event.position}: not in the signed "
                                        f"checkpoint {cp.first}..{cp.last} (altered?)")
            return verdict
    return verdict
