"""Signed checkpoints over the log (projections/checkpoints.py): the checkpointer binds every
event into the partition's chain and signs Merkle roots; `verify` finds a row altered,
removed or inserted directly in the database and names its position, and refuses checkpoints
not signed by the operator's key. An entity's package proves it holds all of that entity's
events per checkpoint: one left out, one added, a forged count, a dropped proof or checkpoint
are each named; v1 checkpoints (before the entity trees) still verify.

On the split log (LEDGER_TEST_BACKEND=split) every lane has its own chain: the cards of a
test are all in one card lane (tests/support/lanes.py), whose chain, positions and package
the test looks at; `verify --database` covers every lane."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import msgspec
import pytest

from domain.cards import commands as cc
from domain.settlement.periods import CloseSettlementPeriod
from projections import audit_package as ap
from projections import checkpoints as cps
from tests.integration.test_engine_stories import USD, approved, call, new_card
from tests.support.lanes import card_lane, head, lane_tables, numbers_in_lane

pytestmark = pytest.mark.backends("sqlite", "postgres", "split")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def keys(tmp_path: Path) -> tuple[cps.Signer, dict]:
    private, public, _ = cps.generate_keys(tmp_path / "k")
    return cps.Signer.from_file(private), cps.load_public_keys([public])


def _traffic(ledger, alliance, cards: int = 4) -> list[str]:
    """Cards of the test's lane (`card_lane`), loaded and authorized."""
    store = ledger.store
    numbers = [new_card(ledger, alliance, load=10_000, number=number)
               for number in numbers_in_lane(store, card_lane(store), cards)]
    for number in numbers:
        for amount in (100, 200, 300):
            approved(call(ledger, alliance.t1, cc.Authorize(number, amount, USD, False, "")))
    return numbers


def _mine(store, made: list) -> list:
    """The checkpoints of the test's lane (all of them on one log)."""
    return [cp for cp in made if cp.partition == card_lane(store)]


def _sql(store, sqlite: str, postgres: str, params=()) -> None:
    with store.session(commit=True) as session:
        session.execute(sqlite if session.dialect == "sqlite" else postgres, params)


def test_checkpoints_cover_the_log_and_verify(ledger, alliance, store, keys) -> None:
    signer, public = keys
    _traffic(ledger, alliance)
    clock = Clock()
    checkpointer = cps.Checkpointer(store, signer, every_events=7, clock=clock)
    made = checkpointer.run_once()
    total = head(store, card_lane(store))
    assert _mine(store, made) and all(cp.size == 7 for cp in made)
    # the rest waits for more or for time
    assert _mine(store, made)[-1].last <= total < _mine(store, made)[-1].last + 7
    clock.now += cps.limits.AUDIT_CHECKPOINT_S
    made += checkpointer.run_once()
    assert _mine(store, made)[-1].last == total
    verdict = cps.verify_database(store, public)
    assert verdict.ok, verdict.problems
    assert (verdict.events, verdict.checkpoints, verdict.uncovered) == (
        store.max_notification_id(), len(made), 0)  # every lane's events (one log: total)
    assert verdict.entity_trees == len(made)  # each signed entity tree as the log gives it
    # More traffic: covered by the next pass, the chain continuing the last checkpoint.
    _traffic(ledger, alliance, cards=1)
    made2 = checkpointer.run_once(flush=True)
    assert _mine(store, made2)[0].chain_before == _mine(store, made)[-1].chain
    assert cps.verify_database(store, public).ok


def test_a_settlement_close_ends_a_checkpoint_at_its_marker(ledger, alliance, store,
                                                            keys) -> None:
    signer, _ = keys
    _traffic(ledger, alliance, cards=1)
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("month end")))
    lane = card_lane(store)
    # one log: the close; split: the close's mark in the card lane (the ledger writes it
    # after the close)
    close = (store.position_of(store.marks_stream(lane), 1) if store.split
             else store.max_notification_id())
    _traffic(ledger, alliance, cards=1)
    made = cps.Checkpointer(store, signer, every_events=10_000).run_once()
    assert [cp.last for cp in _mine(store, made)] == [close] and close


@pytest.mark.parametrize("tamper", ["alter", "remove", "reorder"])
def test_a_row_changed_in_the_database_is_found_and_named(ledger, alliance, store, keys,
                                                          tamper: str) -> None:
    signer, public = keys
    _traffic(ledger, alliance)
    cps.Checkpointer(store, signer, every_events=5).run_once(flush=True)
    assert cps.verify_database(store, public).ok
    lane = card_lane(store)
    victim = head(store, lane) // 2
    with lane_tables(store, lane) as (session, events, _, key):
        if tamper == "alter":  # one byte of the payload: an amount, say
            session.execute(f"UPDATE {events} SET state = CAST(state || X'00' AS BLOB) "
                            "WHERE rowid = ?" if session.dialect == "sqlite" else
                            f"UPDATE {events} SET state = state || '\\x00'::bytea "
                            "WHERE notification_id = ?", (victim,))
            named = victim
        elif tamper == "remove":
            session.execute(f"DELETE FROM {events} WHERE {key} = ?", (victim,))
            named = victim + 1
        else:
            _reorder(session, events, key, victim)
            named = victim
    verdict = cps.verify_database(store, public)
    assert not verdict.ok
    assert verdict.first_bad_position == named, verdict.problems
    assert verdict.first_bad_lane == (lane if store.split else None)


def _reorder(session, events: str, key: str, position: int) -> None:
    """Swap the payloads of two neighbouring events of the log."""
    [(a,)], [(b,)] = (session.query(f"SELECT state FROM {events} WHERE {key} = ?", (p,))
                      for p in (position, position + 1))
    session.execute(f"UPDATE {events} SET state = ? WHERE {key} = ?", (b, position))
    session.execute(f"UPDATE {events} SET state = ? WHERE {key} = ?", (a, position + 1))


def test_a_checkpoint_signed_by_another_key_is_refused(ledger, alliance, store, keys,
                                                       tmp_path: Path) -> None:
    _, public = keys
    _traffic(ledger, alliance, cards=1)
    private2, _, key_id2 = cps.generate_keys(tmp_path / "other")
    cps.Checkpointer(store, cps.Signer.from_file(private2), every_events=4).run_once(flush=True)
    verdict = cps.verify_database(store, public)
    assert not verdict.ok and key_id2 in verdict.problems[0]
    assert verdict.first_bad_position == 1


def test_two_checkpointers_never_cover_an_event_twice(ledger, alliance, store, keys) -> None:
    signer, public = keys
    _traffic(ledger, alliance)
    first = cps.Checkpointer(store, signer, every_events=6)
    second = cps.Checkpointer(store, signer, every_events=4)
    first.run_once()
    second.run_once(flush=True)  # continues after what the first wrote
    first.run_once(flush=True)  # finds the second's checkpoints and writes nothing twice
    with store.session(commit=False) as session:
        written = cps.read_checkpoints(session, card_lane(store))
    assert all(b.first > a.last and b.chain_before == a.chain
               for a, b in itertools.pairwise(written))
    assert written[-1].last == head(store, card_lane(store))
    verdict = cps.verify_database(store, public)
    # the second, starting after the first's checkpoints, looked up the cards issued before:
    # its entity trees are the ones worked out from the log's start
    with store.session(commit=False) as session:
        every = sum(len(cps.read_checkpoints(session, lane)) for lane in store.lanes())
    assert verdict.ok and verdict.entity_trees == every, verdict.problems


def test_a_checkpointer_that_forgets_issuers_looks_them_up(ledger, alliance, store, keys,
                                                          monkeypatch, tmp_path: Path) -> None:
    """Card issuers kept for two cards at most: the checkpointer and `verify --database` look
    the others up again; an offline verifier, which cannot, keeps them all."""
    signer, public = keys
    monkeypatch.setattr("ledger.limits.AUDIT_ISSUERS_MAX", 2)
    _lounge_traffic(ledger, alliance)
    made = cps.Checkpointer(store, signer, every_events=5).run_once(flush=True)
    ap.export(store, 1, _mine(store, made)[-1].last, tmp_path / "whole", "", card_lane(store))
    for verdict, checkpoints in ((cps.verify_database(store, public), made),
                                 (ap.verify_package(tmp_path / "whole", public),
                                  _mine(store, made))):
        assert verdict.ok and verdict.entity_trees == len(checkpoints), verdict.problems


# ------------------------------------------------- an entity's package: all of its events


def _lounge_traffic(ledger, alliance) -> None:
    """P1's cards (issued and loaded at S1), two of them then used at P2's lounge A1: the
    first checkpoints hold none of P2's events, the later ones some."""
    numbers = _traffic(ledger, alliance, cards=3)
    for number in numbers[:2]:
        approved(call(ledger, alliance.t_air, cc.Authorize(number, 500, USD, False, "")))
    approved(call(ledger, alliance.t1, cc.Authorize(numbers[2], 50, USD, False, "")))


def _package(store, signer, tmp_path: Path, entity: str, every: int = 5) -> Path:
    cps.Checkpointer(store, signer, every_events=every).run_once(flush=True)
    out = tmp_path / (entity or "whole")
    ap.export(store, 1, head(store, card_lane(store)), out, entity, card_lane(store))
    return out


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_an_entitys_package_proves_it_holds_all_of_its_events(ledger, alliance, store, keys,
                                                              tmp_path: Path) -> None:
    signer, public = keys
    _lounge_traffic(ledger, alliance)
    p2 = _package(store, signer, tmp_path, "P2")
    verdict = ap.verify_package(p2, public)
    assert verdict.ok, verdict.problems
    assert (verdict.entity, verdict.unproven) == ("P2", 0)
    proofs = _rows(p2 / "entities.jsonl")
    assert len(proofs) == verdict.checkpoints
    assert {p["count"] > 0 for p in proofs} == {True, False}  # some present, some absent
    # The package holds exactly the events the whole log shows as P2's (its credentials,
    # its lounge A1; P2 issues no card).
    lane = card_lane(store)
    ap.export(store, 1, head(store, lane), tmp_path / "whole", "", lane)
    theirs = [row["position"] for row in _rows(tmp_path / "whole" / "events.jsonl")
              if row["event"][1][3] == "P2" or row["event"][1][4] == "A1"]
    assert [row["position"] for row in _rows(p2 / "events.jsonl")] == theirs and theirs
    # A P1 card used at P2's lounge is P1's event too.
    ap.export(store, 1, head(store, lane), tmp_path / "P1", "P1", lane)
    assert set(theirs) <= {row["position"] for row in _rows(tmp_path / "P1" / "events.jsonl")}
    assert ap.verify_package(tmp_path / "P1", public).ok
    whole = ap.verify_package(tmp_path / "whole", public)  # from the log's start: the entity
    assert whole.ok and whole.entity_trees == verdict.checkpoints  # trees are rechecked too
    # A later range: the issuers of P1's cards, issued before it, are looked up.
    with store.session(commit=False) as session:
        late = cps.read_checkpoints(session, lane)[-2].first
    ap.export(store, late, head(store, lane), tmp_path / "P1-late", "P1", lane)
    late_verdict = ap.verify_package(tmp_path / "P1-late", public)
    assert late_verdict.ok and late_verdict.checkpoints == 2, late_verdict.problems
    assert {row["position"] for row in _rows(tmp_path / "P1-late" / "events.jsonl")} == {
        row["position"] for row in _rows(tmp_path / "P1" / "events.jsonl")
        if row["position"] >= late}


@pytest.mark.backends("sqlite")
@pytest.mark.parametrize("tamper", ["remove", "add", "add_where_none", "count", "absence",
                                    "checkpoint", "manifest"])
def test_a_changed_entity_package_is_caught_naming_what_is_wrong(
        ledger, alliance, store, keys, tmp_path: Path, tamper: str) -> None:
    signer, public = keys
    _lounge_traffic(ledger, alliance)
    p2 = _package(store, signer, tmp_path, "P2")
    events, proofs = _rows(p2 / "events.jsonl"), _rows(p2 / "entities.jsonl")
    checkpoints = _rows(p2 / "checkpoints.jsonl")
    if tamper == "remove":  # one of P2's events left out
        gone = events.pop(1)
        _write(p2 / "events.jsonl", events)
        named, says = gone["proof"]["checkpoint"], "1 left out"
    elif tamper.startswith("add"):  # an event of P1 alone, with its valid inclusion proof
        ap.export(store, 1, head(store, card_lane(store)), tmp_path / "P1", "P1",
                  card_lane(store))
        mine = {row["position"] for row in events}
        into = {p["checkpoint"] for p in proofs if (p["count"] > 0) == (tamper == "add")}
        extra = next(row for row in _rows(tmp_path / "P1" / "events.jsonl")
                     if row["position"] not in mine and row["proof"]["checkpoint"] in into)
        _write(p2 / "events.jsonl", sorted([*events, extra], key=lambda r: r["position"]))
        named = extra["proof"]["checkpoint"]
        says = ("1 not its own (added?)" if tamper == "add" else
                "the package holds 1 events of P2 here, the signed entity tree has none")
    elif tamper == "count":  # the signed count claimed one lower, an event left out to match
        at = next(i for i, p in enumerate(proofs) if p["count"] > 0)
        proofs[at]["count"] -= 1
        _write(p2 / "entities.jsonl", proofs)
        named, says = proofs[at]["checkpoint"], "is not in the signed entity tree"
    elif tamper == "absence":  # a checkpoint's proof that P2 had no events there dropped
        at = next(i for i, p in enumerate(proofs) if p["count"] == 0)
        named, says = proofs.pop(at)["checkpoint"], "no proof from its entity tree"
        _write(p2 / "entities.jsonl", proofs)
    elif tamper == "checkpoint":  # a whole checkpoint left out, with its events and proof
        cut = next(cp for cp in checkpoints[1:-1]
                   if any(row["proof"]["checkpoint"] == cp["first"] for row in events))
        _write(p2 / "checkpoints.jsonl", [cp for cp in checkpoints if cp is not cut])
        _write(p2 / "events.jsonl",
               [row for row in events if row["proof"]["checkpoint"] != cut["first"]])
        _write(p2 / "entities.jsonl", [p for p in proofs if p["checkpoint"] != cut["first"]])
        named = next(cp["first"] for cp in checkpoints if cp["first"] > cut["first"])
        says = "does not continue the one before it"
    else:  # the manifest claims a longer range than the checkpoints cover
        manifest = json.loads((p2 / "manifest.json").read_text())
        manifest["last"] += 100
        (p2 / "manifest.json").write_text(json.dumps(manifest))
        named, says = None, "the checkpoints cover"
    verdict = ap.verify_package(p2, public)
    assert not verdict.ok
    assert any(says in problem for problem in verdict.problems), verdict.problems
    assert verdict.first_bad_position == named, verdict.problems


@pytest.mark.backends("sqlite")
def test_bad_entity_proof_files_are_unreadable_packages(ledger, alliance, store, keys,
                                                        tmp_path: Path) -> None:
    signer, public = keys
    _lounge_traffic(ledger, alliance)
    p2 = _package(store, signer, tmp_path, "P2")
    proofs = (p2 / "entities.jsonl").read_text().splitlines()
    for lines, says in (([proofs[0], proofs[0]], "a second proof for checkpoint"),
                        (['{"checkpoint": "one"}'], "entities.jsonl line 1"),
                        (["{not json"], "entities.jsonl line 1")):
        (p2 / "entities.jsonl").write_text("\n".join(lines) + "\n")
        with pytest.raises(ap.PackageError, match=says):
            ap.verify_package(p2, public)


@pytest.mark.backends("sqlite")
def test_an_entity_tree_the_log_does_not_give_is_refused(ledger, alliance, store, keys,
                                                         tmp_path: Path) -> None:
    """The operator's own checkpointer misstating the entities (signed with the right key):
    `verify --database` and a whole-log package find it; no entity's package is made."""
    signer, public = keys
    _lounge_traffic(ledger, alliance)
    cps.Checkpointer(store, signer, every_events=1_000).run_once(flush=True)
    lane = card_lane(store)
    with store.session(commit=False) as session:
        [cp] = cps.read_checkpoints(session, lane)
    forged = signer.sign(msgspec.structs.replace(cp, entity_leaves=cp.entity_leaves + 1))
    _sql(store, "UPDATE audit_checkpoints SET entity_leaves = ?, signature = ? "
                "WHERE partition_no = ?",
         "UPDATE audit_checkpoints SET entity_leaves = %s, signature = %s "
         "WHERE partition_no = %s", (forged.entity_leaves, forged.signature, lane))
    with pytest.raises(ap.PackageError, match=f"checkpoint {cp.first}..{cp.last}: the entity "
                                              f"tree worked out from the log differs"):
        ap.export(store, 1, cp.last, tmp_path / "p2", "P2", lane)
    assert not (tmp_path / "p2" / "manifest.json").exists()
    says = "the entity tree worked out from its events differs from the signed one"
    ap.export(store, 1, cp.last, tmp_path / "whole", "", lane)
    for verdict in (cps.verify_database(store, public),
                    ap.verify_package(tmp_path / "whole", public)):
        assert not verdict.ok and says in verdict.problems[0]
        assert verdict.first_bad_position == cp.first


_V1_TABLE = ("CREATE TABLE audit_checkpoints (partition_no INTEGER NOT NULL, first_position "
             "BIGINT NOT NULL, last_position BIGINT NOT NULL, size BIGINT NOT NULL, root TEXT "
             "NOT NULL, chain_before TEXT NOT NULL, chain TEXT NOT NULL, at_us BIGINT NOT NULL, "
             "key_id TEXT NOT NULL, signature TEXT NOT NULL, "
             "PRIMARY KEY (partition_no, first_position))")


def test_v1_checkpoints_in_an_older_table_still_verify(ledger, alliance, store, keys,
                                                       tmp_path: Path) -> None:
    """A database checkpointed before the entity trees: its table gains the new columns, its
    v1 checkpoints verify, an entity's package over them passes with those checkpoints counted
    as proving no completeness, and the checkpointer continues with v2 ones."""
    signer, public = keys
    _lounge_traffic(ledger, alliance)
    cps.Checkpointer(store, signer, every_events=5).run_once(flush=True)
    lane = card_lane(store)
    with store.session(commit=True) as session:
        v1 = [signer.sign(msgspec.structs.replace(cp, entities="", entity_leaves=0,
                                                  signature=""))
              for every in store.lanes() for cp in cps.read_checkpoints(session, every)]
        session.execute("DROP TABLE audit_checkpoints")
        session.execute(_V1_TABLE)
        for cp in v1:
            session.execute("INSERT INTO audit_checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                            msgspec.structs.astuple(cp)[:10])
    assert all(cp.message().startswith(b"loyalty-ledger/checkpoint/v1 ") for cp in v1)
    verdict = cps.verify_database(store, public)  # adds the columns first
    assert verdict.ok and verdict.checkpoints == len(v1), verdict.problems
    _lounge_traffic(ledger, alliance)
    made = cps.Checkpointer(store, signer, every_events=5).run_once(flush=True)
    assert made and all(cp.v2 for cp in made)
    assert _mine(store, made)[0].chain_before == _mine(store, v1)[-1].chain
    assert cps.verify_database(store, public).ok
    ap.export(store, 1, head(store, lane), tmp_path / "p2", "P2", lane)
    verdict = ap.verify_package(tmp_path / "p2", public)
    assert verdict.ok, verdict.problems
    assert (verdict.unproven, verdict.checkpoints) == (
        len(_mine(store, v1)), len(_mine(store, v1)) + len(_mine(store, made)))
    assert len(_rows(tmp_path / "p2" / "entities.jsonl")) == len(_mine(store, made))
