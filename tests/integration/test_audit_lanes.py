"""The audit on the split log (ledger/partitioned.py): a signed chain per lane, each lane's
positions its own. The checkpointer covers every lane; `verify --database` names the lane of
a bad position; `audit export` writes a package per lane (times, or one lane's positions with
--lane), which verifies offline as a whole and names the lane of a changed event; a
reconciliation reads each card lane between its own marks of the close."""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import pytest

from domain.cards import commands as cc
from domain.common import InvalidInput, format_time_us
from domain.settlement.periods import CloseSettlementPeriod
from entrypoints.audit_commands import cmd_export
from projections import audit_package as ap
from projections import checkpoints as cps
from projections.reconcile import closed_ranges, ledger_rows
from projections.settlement import settlement_runner
from tests.integration.test_engine_stories import USD, approved, call, new_card
from tests.support.lanes import lane_of_card, lane_tables
from tests.support.processes import run

pytestmark = pytest.mark.backends("split")


@pytest.fixture
def keys(tmp_path: Path) -> tuple[cps.Signer, dict]:
    private, public, _ = cps.generate_keys(tmp_path / "k")
    return cps.Signer.from_file(private), cps.load_public_keys([public])


def _traffic(ledger, alliance, cards: int = 6) -> list[str]:
    """Cards spread over the card lanes, each loaded and used at two stores."""
    numbers = [new_card(ledger, alliance, load=10_000) for _ in range(cards)]
    for number in numbers:
        approved(call(ledger, alliance.t1, cc.Authorize(number, 100, USD, False, "")))
        approved(call(ledger, alliance.t_air, cc.Authorize(number, 200, USD, False, "")))
    return numbers


def _export(store, out: Path, **given: str | int | None) -> int:
    ns = argparse.Namespace(out=str(out), entity="", from_="", to="", lane=None)
    for name, value in given.items():
        setattr(ns, name, value)
    return cmd_export(ns, store)


def test_every_lane_has_its_own_chain_and_a_bad_row_is_named_with_its_lane(
        ledger, alliance, store, keys) -> None:
    signer, public = keys
    numbers = _traffic(ledger, alliance)
    made = cps.Checkpointer(store, signer, every_events=4).run_once(flush=True)
    lanes = {lane_of_card(store, n) for n in numbers}
    assert len(lanes) > 1  # the cards are in several lanes
    assert {cp.partition for cp in made} == lanes | {0}
    for lane in lanes | {0}:  # each lane's chain: from genesis, continuing, to its head
        chain = [cp for cp in made if cp.partition == lane]
        assert chain[0].first == 1 and chain[0].chain_before == cps.ch.GENESIS.hex()
        assert all(b.chain_before == a.chain and b.first > a.last
                   for a, b in itertools.pairwise(chain))
        assert chain[-1].last == store.lane_head(lane)
    verdict = cps.verify_database(store, public)
    assert verdict.ok, verdict.problems
    assert verdict.events == store.max_notification_id()  # every lane's rows, no holes here
    victim_lane = max(lanes)
    victim = store.lane_head(victim_lane) - 1
    with lane_tables(store, victim_lane) as (session, events, _, key):
        session.execute(f"UPDATE {events} SET state = state || '\\x00'::bytea "
                        f"WHERE {key} = ?", (victim,))
    verdict = cps.verify_database(store, public)
    assert not verdict.ok
    assert (verdict.first_bad_lane, verdict.first_bad_position) == (victim_lane, victim)
    assert verdict.problems[0].startswith(f"lane {victim_lane}: position {victim}: ")


def test_export_per_lane_verifies_offline_and_names_the_lane_of_a_changed_event(
        ledger, alliance, store, keys, clock, tmp_path: Path) -> None:
    signer, public = keys
    numbers = _traffic(ledger, alliance)
    cps.Checkpointer(store, signer, every_events=4).run_once(flush=True)
    with pytest.raises(InvalidInput, match="no positions across lanes"):
        _export(store, tmp_path / "bad", from_="1", to="50")
    assert _export(store, tmp_path / "all", to=format_time_us(clock.now_us)) == 0
    manifest = json.loads((tmp_path / "all" / "manifest.json").read_text())
    assert manifest["format"] == ap.LANES_FORMAT
    lanes = sorted({lane_of_card(store, n) for n in numbers} | {0})
    assert manifest["lanes"] == [f"lane-{lane:02d}" for lane in lanes]
    verdict = ap.verify_package(tmp_path / "all", public)
    assert verdict.ok, verdict.problems
    assert verdict.events == store.max_notification_id()
    # One lane by its own positions: one package, as on one log.
    lane = lanes[-1]
    assert _export(store, tmp_path / "one", lane=lane, from_="1",
                   to=str(store.lane_head(lane))) == 0
    one = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert (one["format"], one["partition"], one["last"]) == (
        ap.FORMAT, lane, store.lane_head(lane))
    assert ap.verify_package(tmp_path / "one", public).ok
    # A payload changed in one lane's file of the whole package: named with its lane.
    events = tmp_path / "all" / f"lane-{lane:02d}" / "events.jsonl"
    rows = [json.loads(line) for line in events.read_text().splitlines()]
    rows[1]["state"] = rows[2]["state"]
    events.write_text("".join(json.dumps(row) + "\n" for row in rows))
    verdict = ap.verify_package(tmp_path / "all", public)
    assert not verdict.ok
    assert (verdict.first_bad_lane, verdict.first_bad_position) == (lane, rows[1]["position"])


def test_a_period_is_read_in_each_card_lane_between_its_marks(ledger, alliance, store) -> None:
    numbers = _traffic(ledger, alliance)
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("month end")))
    later = _traffic(ledger, alliance, cards=2)  # period 2: not in period 1's rows
    runner = settlement_runner(store)
    ranges = closed_ranges(runner, 1)
    assert sorted(ranges) == store.lanes()[1:]
    for lane, (first, last) in ranges.items():
        assert first == 1 and last == store.position_of(store.marks_stream(lane), 1)
    rows = ledger_rows(runner, "P1", 1, {"S1": "UTC", "A1": "UTC"})
    kinds = sorted(row.type for row, _ in rows)
    # each card of period 1: its load at S1 (authorizations are not journal rows)
    assert kinds.count("LOADED") == len(numbers), kinds
    assert len(later) == 2


def test_the_audit_commands_on_the_split_log(ledger, alliance, store, store_url: str,
                                             tmp_path: Path) -> None:
    """keygen, checkpoint, export (every lane, by time) and verify, as an operator and an
    auditor run them; a changed event is named with its lane; positions need --lane."""
    numbers = _traffic(ledger, alliance, cards=4)
    ledger.stop()
    keys = tmp_path / "keys"
    assert run("audit", "keygen", "--out", str(keys)).returncode == 0
    public = str(keys / "audit-key.pub.pem")
    signed = run("audit", "checkpoint", "--audit-key", str(keys / "audit-key.pem"),
                 "--database", store_url)
    lanes = sorted({lane_of_card(store, n) for n in numbers} | {0})
    assert signed.returncode == 0 and f"{len(lanes)} checkpoints written" in signed.stdout, \
        signed.stdout + signed.stderr
    assert all(f"of lane {lane}:" in signed.stdout for lane in lanes)
    whole = tmp_path / "whole"
    assert run("audit", "export", "--out", str(whole), "--database", store_url).returncode == 0
    done = run("audit", "verify", str(whole), "--public-key", public)
    assert done.returncode == 0 and "verified" in done.stdout, done.stdout + done.stderr
    refused = run("audit", "export", "--from", "1", "--to", "9", "--out", str(tmp_path / "x"),
                  "--database", store_url)
    assert refused.returncode == 2 and "--lane" in refused.stderr, refused.stderr
    lane = lanes[-1]
    path = whole / f"lane-{lane:02d}" / "events.jsonl"
    rows = path.read_text().splitlines()
    victim = json.loads(rows[1])
    victim["state"] = victim["state"][:-4] + ("AAAA" if victim["state"][-4:] != "AAAA"
                                              else "BBBB")
    rows[1] = json.dumps(victim)
    path.write_text("\n".join(rows) + "\n")
    done = run("audit", "verify", str(whole), "--public-key", public)
    assert done.returncode == 1, done.stdout
    assert f"first bad position {victim['position']} in lane {lane}" in done.stdout, done.stdout
    ledger.start()  # the fixture stops it again
