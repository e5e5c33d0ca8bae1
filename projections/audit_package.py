"""An auditor's package (`loyalty-ledger audit export` / `audit verify`): the events of a
range of signed checkpoints as JSON lines, the checkpoints, and for one entity's package the
inclusion proofs of its events against the signed roots and, per checkpoint, the proof from
its signed entity tree that these are all of the entity's events there. Verifying needs no
database: the files and the operator's public key(s).

Layout of DIR:
- manifest.json: format, partition, entity ("" = every event), first and last position, counts.
- checkpoints.jsonl: one signed checkpoint per line (domain/audit/chain.py: the signed line).
- events.jsonl: one event per line, in log order: position, stream_id, version, topic, state
  (base64 of the stored bytes: what is hashed), event (the same decoded, for reading only: the
  hash does not cover it), and either chain (the recorded chain value after it: a whole-log
  package) or proof (checkpoint, index, path: an entity's package, which leaves out every
  other entity's events).
- entities.jsonl (an entity's package): one line per v2 checkpoint, the entity's leaf in its
  entity tree (count, events_digest, index, path) or, when it has no events there, the
  neighbouring leaves that show it (domain/audit/entities.py `EntityProof`).

The split log (ledger/partitioned.py) has a chain per lane: a package is one lane's (the
manifest's partition), its positions that lane's notification ids. `export_lanes` writes one
per lane into DIR/lane-LL and a DIR/manifest.json (format `LANES_FORMAT`) listing them;
`verify_package` verifies each and sums the verdicts, naming the lane of a problem.
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
from domain.audit import entities as en
from domain.audit import merkle
from ledger.codec import decode_event
from ledger.store import EventStore
from projections import checkpoints as cps
from projections.audit_entities import Attribution, entity_tree, leaf_hashes
from projections.runner import log_rows

FORMAT = "loyalty-ledger/audit-export/v1"
LANES_FORMAT = "loyalty-ledger/audit-export-lanes/v1"  # a package per lane of a split log


class PackageError(ValueError):
    """The package cannot be read (missing file, bad line): not a verdict on the log."""


def _checkpoints_between(store: EventStore, first: int, last: int,
                         lane: int = cps.PARTITION) -> list[ch.Checkpoint]:
    """The checkpoints of `lane` covering any position in first..last, whole."""
    cps.create_tables(store)
    with store.session(commit=False) as session:
        return [cp for cp in cps.read_checkpoints(session, lane)
                if cp.last >= first and cp.first <= last]


def _decoded(state: bytes) -> Any:
    try:
        return msgspec.to_builtins(decode_event(state))
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


def export_lanes(store: EventStore, ranges: dict[int, tuple[int, int]], out: str | Path,
                 entity: str = "") -> dict[str, Any]:
    """The split log: the package of each lane's checkpoints covering its range (first, last:
    the lane's own positions) in OUT/lane-LL, and OUT/manifest.json naming them. A lane
    without a checkpoint in its range is left out (and named so in the manifest)."""
    directory = Path(out)
    written: dict[str, Any] = {}
    without: list[int] = []
    for lane, (first, last) in sorted(ranges.items()):
        if last < first or not _checkpoints_between(store, first, last, lane):
            without.append(lane)
            continue
        written[f"lane-{lane:02d}"] = export(store, first, last, directory / f"lane-{lane:02d}",
                                             entity, lane)
    if not written:
        raise PackageError("no signed checkpoint covers the range in any lane: run the "
                           "checkpointer (serve --audit-key, or audit checkpoint) first")
    manifest = {"format": LANES_FORMAT, "entity": entity, "lanes": sorted(written),
                "lanes_without_checkpoints": without,
                "events": sum(m["events"] for m in written.values()),
                "checkpoints": sum(m["checkpoints"] for m in written.values())}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def export(store: EventStore, first: int, last: int, out: str | Path,
           entity: str = "", lane: int = cps.PARTITION) -> dict[str, Any]:
    """Write the package of the checkpoints of `lane` (one log: 0) covering positions
    first..last (whole checkpoints: a root can only be checked with all its leaves, or an
    entity's proofs)."""
    chosen = _checkpoints_between(store, first, last, lane)
    if not chosen:
        raise PackageError(f"no signed checkpoint covers positions {first}..{last}"
                           + (f" of lane {lane}" if store.split else "") + ": run the "
                           "checkpointer (serve --audit-key, or audit checkpoint) first")
    directory = Path(out)
    directory.mkdir(parents=True, exist_ok=True)
    attribution = Attribution(store)
    attribution.follow_from(chosen[0].first - 1)
    events = 0
    with (directory / "checkpoints.jsonl").open("wb") as f:
        for cp in chosen:
            f.write(msgspec.json.encode(cp) + b"\n")
    proofs: list[en.EntityProof] = []
    with (directory / "events.jsonl").open("w") as f:
        for cp in chosen:
            with store.session(commit=False) as session:
                recorded = cps.recorded_chain(session, cp)
            rows = list(log_rows(store, page_rows=cps.PAGE_ROWS, first=cp.first,
                                 last=cp.last, lane=lane))
            leaves = leaf_hashes(rows) if entity else []
            tree = merkle.Tree(leaves) if entity else None
            mine = _own(attribution, cp, rows, leaves, entity, proofs) if entity else set()
            for index, row in enumerate(rows):
                if tree is not None and index not in mine:
                    continue
                line: dict[str, Any] = {
                    "position": row.id, "stream_id": str(row.originator_id),
                    "version": row.originator_version, "topic": row.topic,
                    "state": base64.b64encode(bytes(row.state)).decode(),
                    "event": _decoded(bytes(row.state))}
                if tree is None:
                    line["chain"] = recorded[index] if index < len(recorded) else ""
                else:
                    line["proof"] = {"checkpoint": cp.first, "index": index,
                                     "path": [h.hex() for h in tree.proof(index)]}
                f.write(json.dumps(line, separators=(",", ":")) + "\n")
                events += 1
    if entity:
        (directory / "entities.jsonl").write_bytes(
            b"".join(msgspec.json.encode(p) + b"\n" for p in proofs))
    manifest = {"format": FORMAT, "partition": lane, "entity": entity,
                "first": chosen[0].first, "last": chosen[-1].last, "events": events,
                "checkpoints": len(chosen),
                "key_ids": sorted({cp.key_id for cp in chosen})}
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def _own(attribution: Attribution, cp: ch.Checkpoint, rows: list[Any], leaves: list[bytes],
         entity: str, proofs: list[en.EntityProof]) -> set[int]:
    """The indices of `entity`'s events among one checkpoint's rows (domain/audit/entities.py
    `entities_of`: those of its cards, made by its credentials or at its stores); writes the
    entity tree's proof for it (a v2 checkpoint), after checking that the tree recomputed
    from the log is the signed one."""
    tree, owners = entity_tree(attribution, rows, leaves)
    if cp.v2:
        if (tree.root.hex(), tree.size) != (cp.entities, cp.entity_leaves):
            raise PackageError(f"checkpoint {cp.first}..{cp.last}: the entity tree worked out "
                               f"from the log differs from the signed one (the log was changed "
                               f"after it was signed: run audit verify --database)")
        proofs.append(tree.proof(cp.first, entity))
    return {index for index, mine in enumerate(owners) if entity in mine}


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
    if manifest.get("format") == LANES_FORMAT:
        lanes = manifest.get("lanes")
        if not isinstance(lanes, list) or not lanes or not all(
                isinstance(name, str) and name.startswith("lane-") and name[5:].isdigit()
                for name in lanes):
            raise PackageError(f"{folder / 'manifest.json'}: a bad list of lanes")
        return cps.merged([(int(name[5:]), verify_package(folder / name, keys))
                           for name in lanes])
    if manifest.get("format") != FORMAT:
        raise PackageError(f"not a {FORMAT} package: format {manifest.get('format')!r}")
    try:
        checkpoints = [msgspec.convert(line, ch.Checkpoint)
                       for line in _lines(folder / "checkpoints.jsonl")]
    except msgspec.ValidationError as error:
        raise PackageError(f"checkpoints.jsonl: {error}") from None
    events = _events(folder / "events.jsonl")
    entity = str(manifest.get("entity") or "")
    if not entity:
        from_start = bool(checkpoints) and checkpoints[0].chain_before == ch.GENESIS.hex()
        verdict = cps.verify((event for event, _ in events), checkpoints, keys,
                             Attribution() if from_start else None)
        if verdict.ok and verdict.uncovered:
            verdict.bad(None, f"{verdict.uncovered} events after the last checkpoint")
        return verdict
    verdict = _verify_proofs(events, checkpoints, keys, entity,
                             _entity_proofs(folder / "entities.jsonl"))
    if checkpoints and (manifest.get("first"), manifest.get("last")) != (
            checkpoints[0].first, checkpoints[-1].last):
        verdict.bad(None, f"the manifest names positions {manifest.get('first')}.."
                          f"{manifest.get('last')}, the checkpoints cover "
                          f"{checkpoints[0].first}..{checkpoints[-1].last}")
    return verdict


def _events(path: Path) -> Iterator[tuple[cps.Event, dict[str, Any] | None]]:
    for line in _lines(path):
        try:
            yield (cps.Event(int(line["position"]), str(uuid.UUID(line["stream_id"])),
                             int(line["version"]), str(line["topic"]),
                             base64.b64decode(line["state"], validate=True),
                             str(line.get("chain", ""))), line.get("proof"))
        except (KeyError, ValueError, TypeError) as error:
            raise PackageError(f"{path.name}: a bad event line ({error})") from None


def _entity_proofs(path: Path) -> dict[int, en.EntityProof]:
    """The entity tree proofs by checkpoint (none when the file is missing: then every v2
    checkpoint fails for want of one)."""
    proofs: dict[int, en.EntityProof] = {}
    if not path.exists():
        return proofs
    for number, line in enumerate(_lines(path), 1):
        try:
            proof = msgspec.convert(line, en.EntityProof)
        except msgspec.ValidationError as error:
            raise PackageError(f"{path.name} line {number}: {error}") from None
        if proof.checkpoint in proofs:
            raise PackageError(f"{path.name} line {number}: a second proof for checkpoint "
                               f"{proof.checkpoint}")
        proofs[proof.checkpoint] = proof
    return proofs


def _verify_proofs(events: Iterator[tuple[cps.Event, dict[str, Any] | None]],
                   checkpoints: list[ch.Checkpoint], keys: dict[str, Ed25519PublicKey],
                   entity: str, proofs: dict[int, en.EntityProof]) -> cps.Verdict:
    """Each event proven in its signed checkpoint, then per checkpoint the events of
    `entity` there proven to be all of them (v2 checkpoints; v1 ones are counted unproven)."""
    verdict = cps.Verdict(checkpoints=len(checkpoints), entity=entity)
    if not cps.signed_in_line(checkpoints, keys, verdict):
        return verdict
    by_first = {cp.first: cp for cp in checkpoints}
    leaves: dict[int, list[bytes]] = {}
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
        leaf = event.leaf()
        if not merkle.verify_inclusion(leaf, int(proof.get("index", -1)), cp.size, path,
                                       bytes.fromhex(cp.root)):
            verdict.bad(event.position, f"position {event.position}: not in the signed "
                                        f"checkpoint {cp.first}..{cp.last} (altered?)")
            return verdict
        leaves.setdefault(cp.first, []).append(leaf)
    for cp in checkpoints:
        if not cp.v2:
            verdict.unproven += 1
            continue
        shown = proofs.get(cp.first)
        problem = (f"no proof from its entity tree that these are all of {entity}'s events "
                   f"(entities.jsonl has no line for it)" if shown is None else
                   en.check(shown, entity, leaves.get(cp.first, []),
                            bytes.fromhex(cp.entities), cp.entity_leaves))
        if problem:
            verdict.bad(cp.first, f"checkpoint {cp.first}..{cp.last}: {problem}")
    return verdict
