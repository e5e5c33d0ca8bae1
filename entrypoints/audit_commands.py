"""`loyalty-ledger audit keygen|checkpoint|export|verify` (tamper evidence: README "Tamper
evidence"); `audit replay` stays in projections/audit.py."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from domain.common import InvalidInput, parse_time_us
from ledger.store import EventStore


def cmd_keygen(ns: argparse.Namespace) -> int:
    from projections.checkpoints import generate_keys

    if not ns.out:
        raise InvalidInput("--out", "give the directory for the new key pair")
    private, public, key_id = generate_keys(ns.out)
    print(f"key id {key_id}\nprivate key (give to serve --audit-key; keep out of the "
          f"database): {private}\npublic key (give to auditors): {public}")
    return 0


def cmd_checkpoint(ns: argparse.Namespace, store: EventStore) -> int:
    from projections.checkpoints import Checkpointer, Signer

    checkpointer = Checkpointer(store, _signer(ns, Signer))
    made = checkpointer.run_once(flush=True)
    for cp in made:
        print(f"checkpoint {cp.first}..{cp.last}" + (f" of lane {cp.partition}" if store.split
                                                      else "")
              + f": {cp.size} events, root {cp.root}")
    print(f"{len(made)} checkpoints written")
    return 0


def _signer(ns: argparse.Namespace, signer: Any) -> Any:
    if not ns.audit_key:
        raise InvalidInput("--audit-key", "give the operator's private key file")
    try:
        return signer.from_file(ns.audit_key)
    except ValueError as error:
        raise InvalidInput("--audit-key", str(error)) from None


def _position_or_time(value: str, field: str, default: int, store: EventStore,
                      lane: int = 0) -> int:
    """A log position (an integer) or an RFC 3339 time: the last position of `lane` (one
    log: 0) recorded by then."""
    if not value:
        return default
    if value.isdigit():
        return int(value)
    at_us = parse_time_us(value, field, 0)
    from ledger.codec import decode_event
    from projections.runner import log_rows

    last = 0
    for row in log_rows(store, lane=lane):
        if decode_event(row.state).meta.recorded_at_us > at_us:
            break
        last = row.id
    return last


def _range(ns: argparse.Namespace, store: EventStore, lane: int) -> tuple[int, int]:
    first = max(1, _position_or_time(ns.from_, "--from", 1, store, lane))
    last = _position_or_time(ns.to, "--to", store.lane_head(lane), store, lane)
    return first, last


def cmd_export(ns: argparse.Namespace, store: EventStore) -> int:
    """One log: --from/--to are positions or times. The split log (a chain per lane, each
    with its own positions): with --lane L, positions (or times) of lane L, one package;
    without, times only, a package per lane (projections/audit_package.py export_lanes)."""
    from projections.audit_package import PackageError, export, export_lanes

    if not ns.out:
        raise InvalidInput("--out", "give the directory to write the package to")
    lane = getattr(ns, "lane", None)
    if lane is not None and lane not in store.lanes():
        raise InvalidInput("--lane", f"lane {lane} is not one of this log's "
                           f"(0..{store.lanes()[-1]})")
    every_lane = store.split and lane is None
    if every_lane and (ns.from_.isdigit() or ns.to.isdigit()):
        raise InvalidInput("--from" if ns.from_.isdigit() else "--to",
                           "the split log has no positions across lanes: give RFC 3339 times, "
                           "or positions of one lane with --lane")
    try:
        if every_lane:
            manifest = export_lanes(store, {one: _range(ns, store, one)
                                            for one in store.lanes()}, ns.out, ns.entity)
        else:
            first, last = _range(ns, store, lane or 0)
            if last < first:
                raise InvalidInput("--to", f"position {last} is before --from's {first}")
            manifest = export(store, first, last, ns.out, ns.entity, lane or 0)
    except PackageError as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2
    print(json.dumps(manifest, indent=2))
    return 0


def cmd_verify(ns: argparse.Namespace) -> int:
    """Offline (a package directory) or against a database (--database): exit 0 when every
    check holds, 1 naming the first bad position, 2 when the input cannot be read."""
    from projections.audit_package import PackageError, verify_package
    from projections.checkpoints import load_public_keys, verify_database

    if not ns.public_key:
        print("loyalty-ledger: --public-key: give the operator's public key file (repeat it "
              "for rotated keys)", file=sys.stderr)
        return 2
    try:
        keys = load_public_keys(ns.public_key)
        if ns.package:
            verdict = verify_package(ns.package, keys)
        elif ns.database:
            from entrypoints.cli import _open_ready_store

            store = _open_ready_store(ns.database)
            try:
                verdict = verify_database(store, keys)
            finally:
                store.close()
        else:
            print("loyalty-ledger: give a package directory or --database", file=sys.stderr)
            return 2
    except (PackageError, ValueError) as error:
        print(f"loyalty-ledger: {error}", file=sys.stderr)
        return 2
    print(f"{verdict.checkpoints} checkpoints, {verdict.events} events checked"
          + (f", {verdict.uncovered} after the last checkpoint (not yet signed)"
             if verdict.uncovered else ""))
    if verdict.ok:
        print(_verified(verdict))
        return 0
    print(f"FAILED: first bad position {verdict.first_bad_position}"
          + (f" in lane {verdict.first_bad_lane}" if verdict.first_bad_lane is not None
             else ""))
    for problem in verdict.problems:
        print(f"  {problem}")
    return 1


def _verified(verdict: Any) -> str:
    if not verdict.entity:
        return ("verified: every checkpoint signed, every event as recorded"
                + (f", {verdict.entity_trees} entity trees as the events give them"
                   if verdict.entity_trees else ""))
    proven = verdict.checkpoints - verdict.unproven
    return (f"verified: every checkpoint signed, every event of {verdict.entity} in the signed "
            f"log, and all of {verdict.entity}'s events in {proven} of {verdict.checkpoints} "
            f"checkpoints" + (f" ({verdict.unproven} v1 checkpoints, signed before the entity "
                              f"trees, cannot show that none was left out)"
                              if verdict.unproven else ""))
