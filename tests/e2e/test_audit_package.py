"""An external auditor's round trip with the `loyalty-ledger audit` commands: a key pair, signed
checkpoints, a whole-log package and one entity's package, verified offline with the public
key only (the partner's package shown to hold all of its events); an event left out of it,
a package or a database row changed afterwards fails with the first bad position,
and a package checked against another key fails."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from domain.cards import commands as cc
from ledger.store import EVENTS_TABLE
from tests.integration.test_engine_stories import USD, approved, call, new_card
from tests.support.processes import run

pytestmark = [pytest.mark.slow, pytest.mark.backends("sqlite")]  # runs the command 12 times


def test_an_auditor_checks_the_log_and_a_partner_its_own_events(ledger, alliance, store,
                                                                 store_url: str,
                                                                 tmp_path: Path) -> None:
    if store.split:
        pytest.skip("one log's package layout and positions (one checkpoint, one package); "
                    "the split log's: tests/integration/test_audit_lanes.py")
    cards = [new_card(ledger, alliance, load=50_000) for _ in range(3)]
    for number in cards:
        approved(call(ledger, alliance.t1, cc.Authorize(number, 1_000, USD, False, "")))
        approved(call(ledger, alliance.t_air, cc.Authorize(number, 2_000, USD, False, "")))
    keys = tmp_path / "keys"
    made = run("audit", "keygen", "--out", str(keys))
    assert made.returncode == 0 and "key id" in made.stdout, made.stderr
    public = str(keys / "audit-key.pub.pem")
    signed = run("audit", "checkpoint", "--audit-key", str(keys / "audit-key.pem"),
                 "--database", store_url)
    assert signed.returncode == 0 and "1 checkpoints written" in signed.stdout, signed.stderr

    whole, p2 = tmp_path / "whole", tmp_path / "p2"
    assert run("audit", "export", "--out", str(whole), "--database", store_url).returncode == 0
    exported = run("audit", "export", "--entity", "P2", "--out", str(p2), "--database",
                   store_url)
    assert exported.returncode == 0, exported.stderr
    lines = [json.loads(line) for line in (p2 / "events.jsonl").read_text().splitlines()]
    assert len(lines) == 3 and all(line["event"][1][3] == "P2" for line in lines)  # the lounge
    for package in (whole, p2):
        done = run("audit", "verify", str(package), "--public-key", public)
        assert done.returncode == 0 and "verified" in done.stdout, (done.stdout, done.stderr)
    assert "and all of P2's events in 1 of 1 checkpoints" in done.stdout, done.stdout

    # One of P2's events left out of its package: the signed count says so.
    left_out = tmp_path / "p2-left-out"
    left_out.mkdir()
    for name in ("manifest.json", "checkpoints.jsonl", "entities.jsonl"):
        (left_out / name).write_bytes((p2 / name).read_bytes())
    (left_out / "events.jsonl").write_text("".join(
        line + "\n" for line in (p2 / "events.jsonl").read_text().splitlines()[1:]))
    done = run("audit", "verify", str(left_out), "--public-key", public)
    assert done.returncode == 1 and "the signed checkpoint counts 3: 1 left out" in done.stdout, \
        done.stdout

    # One amount changed in each package: found, and the position named.
    for package in (whole, p2):
        path = package / "events.jsonl"
        rows = path.read_text().splitlines()
        victim = json.loads(rows[1])
        victim["state"] = victim["state"][:-4] + ("AAAA" if victim["state"][-4:] != "AAAA"
                                                  else "BBBB")
        rows[1] = json.dumps(victim)
        path.write_text("\n".join(rows) + "\n")
        done = run("audit", "verify", str(package), "--public-key", public)
        assert done.returncode == 1
        assert f"first bad position {victim['position']}" in done.stdout, done.stdout

    # Another operator's key: nothing verifies.
    other = tmp_path / "other"
    assert run("audit", "keygen", "--out", str(other)).returncode == 0
    done = run("audit", "verify", "--database", store_url, "--public-key",
               str(other / "audit-key.pub.pem"))
    assert done.returncode == 1 and "not signed by any given key" in done.stdout

    # Point in time: every card and account as of now, all checks passing.
    figures = tmp_path / "figures.json"
    replayed = run("audit", "replay", "--as-of", "9999-01-01T00:00:00Z", "--figures",
                   str(figures), "--database", store_url)
    assert replayed.returncode == 0 and "audit replay: OK" in replayed.stdout, replayed.stdout
    rebuilt = json.loads(figures.read_text())
    assert {number: card["balance_minor"] for number, card in rebuilt["cards"].items()} \
        == dict.fromkeys(cards, 50_000)
    assert {number: card["held_minor"] for number, card in rebuilt["cards"].items()} \
        == dict.fromkeys(cards, 3_000)
    assert sum(rebuilt["balances"].values()) == 0

    # A row changed directly in the database.
    assert run("audit", "verify", "--database", store_url, "--public-key",
               public).returncode == 0
    with store.session(commit=True) as session:
        session.execute(f"UPDATE {EVENTS_TABLE} SET state = CAST(state || X'00' AS BLOB) "
                        "WHERE rowid = 5")
    done = run("audit", "verify", "--database", store_url, "--public-key", public)
    assert done.returncode == 1 and "first bad position 5" in done.stdout, done.stdout


def test_bad_audit_arguments_are_one_line_and_exit_2(ledger, alliance, store_url: str,
                                                     tmp_path: Path) -> None:
    new_card(ledger, alliance)  # events, but no checkpoint yet
    for args, names in (
            (("audit", "keygen"), "--out"),
            (("audit", "checkpoint", "--database", store_url), "--audit-key"),
            (("audit", "checkpoint", "--audit-key", str(tmp_path / "none.pem"), "--database",
              store_url), "none.pem"),
            (("audit", "verify", str(tmp_path)), "--public-key"),
            (("audit", "export", "--out", str(tmp_path / "x"), "--database", store_url),
             "no signed checkpoint"),
            (("audit", "export", "--out", str(tmp_path / "x"), "--from", "tomorrow",
              "--database", store_url), "--from"),
            (("audit", "replay", "--as-of", "yesterday", "--database", store_url),
             "--as-of")):
        done = run(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert names in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_the_follower_signs_a_checkpoint_at_a_settlement_close(ledger, alliance, store,
                                                               store_url: str,
                                                               tmp_path: Path) -> None:
    """`project --audit-key` (what `serve --audit-key` starts) checkpoints beside the read
    models: a close ends a checkpoint at its marker without waiting for the interval (the
    split log: the registry's lane's, `read_checkpoints` default)."""
    import subprocess
    import time

    from domain.settlement.periods import CloseSettlementPeriod
    from projections import checkpoints as cps
    from tests.support.processes import cli, env

    new_card(ledger, alliance, load=1_000)
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("month end")))
    close = store.lane_head(0)  # the registry's lane (one log: the log's end)
    assert run("audit", "keygen", "--out", str(tmp_path / "k")).returncode == 0
    follower = subprocess.Popen(cli("project", "--database", store_url, "--poll-s", "0.2",
                                    "--audit-key", str(tmp_path / "k" / "audit-key.pem")),
                                env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        written: list = []
        for _ in range(600):  # waits for the follower, at most a minute; no timing asserted
            cps.create_tables(store)
            with store.session(commit=False) as session:
                written = cps.read_checkpoints(session)
            if written or follower.poll() is not None:
                break
            time.sleep(0.1)
    finally:
        follower.terminate()
        follower.wait(timeout=30)
    assert [cp.last for cp in written] == [close], follower.stderr.read() if follower.stderr \
        else ""
