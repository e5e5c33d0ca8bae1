"""The import command's logic through a running engine (no process): a card file's good lines
issued and loaded with the same events and request keys as IssueCard and LoadValue, its bad
lines reported by number with nothing written, and a rerun (after a crash, or after fixing the
file) applying nothing twice. The command itself, in process (`cli.main`), for its summary and
exit status; tests/e2e/test_cli.py runs it as a process."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.cards import commands as cc
from domain.common import Result, luhn_complete
from entrypoints import cli
from ledger.card_import import import_cards, issue_request_id
from ledger.codec import Outcome
from ledger.engine import Ledger
from tests.support.alliance import Alliance
from tests.support.rpc import db_state

HEADER = "card_number,card_class,currency,customer_ref,amount_minor,payment_ref"


def number(seed: int) -> str:
    return luhn_complete(f"71{seed:013d}")


def good_lines(count: int, start: int = 0) -> list[str]:
    """Every other line with an initial load of 1,000 + its seed."""
    return [f"{number(i)},STANDARD,USD,cust-{i}," + (f"{1_000 + i},psp-{i}" if i % 2 == 0
                                                     else ",")
            for i in range(start, start + count)]


def run(ledger: Ledger, credential: str, lines: list[str], store: str = "S1") -> object:
    return import_cards(ledger, credential, [HEADER, *lines], store)


def card(ledger: Ledger, alliance: Alliance, card_number: str) -> object:
    reply = ledger.call(alliance.admin, cc.GetCard(card_number))
    assert isinstance(reply, Outcome)
    return reply.card if reply.result == Result.APPROVED else None


@pytest.mark.backends("sqlite", "postgres")
def test_a_file_is_imported_and_a_rerun_applies_nothing_twice(ledger, alliance) -> None:
    lines = good_lines(5_000)  # several chunks
    before = db_state(ledger)
    summary = run(ledger, alliance.s1_manager, lines)
    assert (summary.lines, summary.issued, summary.issued_before, summary.loaded,
            summary.loaded_before) == (5_000, 5_000, 0, 2_500, 0)
    assert summary.ok and summary.loaded_minor == sum(1_000 + i for i in range(0, 5_000, 2))
    after = db_state(ledger)
    assert after.request_keys - before.request_keys == 7_500  # one per issue and load
    assert after.last_event - before.last_event == 7_500  # CardIssued, ValueLoaded
    loaded = card(ledger, alliance, number(42))
    assert (loaded.balance_minor, loaded.issuing_store_id, loaded.version) == (1_042, "S1", 2)

    again = run(ledger, alliance.s1_manager, lines)
    assert (again.issued, again.issued_before, again.loaded, again.loaded_before) == (
        0, 5_000, 0, 2_500)
    assert again.ok and db_state(ledger) == after


def test_a_crash_midway_then_a_rerun_does_the_rest_once(ledger, alliance) -> None:
    lines = good_lines(3_000)
    run(ledger, alliance.s1_manager, lines[:1_700])  # the run that "crashed"
    # a crash between a line's issue and its load: the issue is recorded, the load is not
    line = 1_800
    issue = cc.IssueCard(number(line), "STANDARD", "USD", f"cust-{line}", "S1")
    first = ledger.call(alliance.s1_manager, issue, request_id=issue_request_id(number(line)))
    assert isinstance(first, Outcome) and first.result == Result.APPROVED
    summary = run(ledger, alliance.s1_manager, lines)
    assert (summary.issued_before, summary.issued) == (1_701, 1_299)
    assert (summary.loaded_before, summary.loaded) == (850, 650)
    assert summary.ok
    assert card(ledger, alliance, number(line)).balance_minor == 2_800  # loaded once
    assert card(ledger, alliance, number(1_600)).balance_minor == 2_600  # not twice


def test_bad_lines_are_reported_by_number_and_nothing_is_written_for_them(ledger,
                                                                          alliance) -> None:
    taken = number(900)
    ledger.call(alliance.s1_manager, cc.IssueCard(taken, "STANDARD", "USD", "", "S1"),
                request_id="elsewhere-1")
    luhn_bad = number(5)[:-1] + str((int(number(5)[-1]) + 1) % 10)
    lines = [f"{line}," for line in good_lines(4)]  # lines 2..5
    lines += [
        f"{luhn_bad},STANDARD,USD,,,,",  # line 6
        f"{number(6)},STANDARD,EUR,,,,",  # line 7: fine (a EUR card)
        f"{number(7)},STANDARD,USD,,abc,psp,",  # line 8
        f"{taken},STANDARD,USD,,500,psp,",  # line 9: issued before, not by the file
        f"{number(8)},STANDARD,USD,,,,",  # line 10
        f"{number(9)},STANDARD,USD,,,,S9",  # line 11: at a store that does not exist
        f"{number(10)},STANDARD,USD,,2000000000,psp,",  # line 12: over the max balance
    ]
    before = db_state(ledger)
    summary = import_cards(ledger, alliance.s1_manager,
                           [HEADER + ",issuing_store_id", *lines], "S1")
    errors = {e.line: e.message for e in summary.errors}
    assert sorted(errors) == [6, 8, 11]
    assert errors[6] == "card_number: fails the Luhn check"
    assert errors[8].startswith("amount_minor: not an integer")
    assert errors[11].startswith("issue refused (INVALID_INPUT): issuing_store_id")
    assert summary.already_existed == [9]
    assert summary.declined == [(12, "load DECLINED_LIMIT_EXCEEDED")]
    assert not summary.ok
    assert summary.issued == 4 + 1 + 1 + 1  # lines 2..5, 7, 10, 12
    after = db_state(ledger)
    # written: 7 issues, 2 loads of lines 2 and 4, the declined issue of line 9 and the
    # declined load of line 12 (declines keep their key, as on the wire: a retry replays)
    assert after.request_keys - before.request_keys == 7 + 2 + 1 + 1
    assert after.last_event - before.last_event == 7 + 2
    assert card(ledger, alliance, taken).balance_minor == 0  # the file never loads it


def test_the_importer_s_scope_is_the_unary_scope(ledger, alliance) -> None:
    summary = run(ledger, alliance.t1, good_lines(2, start=50))  # a terminal may not issue
    assert [e.line for e in summary.errors] == [2, 3]
    assert all(e.message.startswith("issue refused (DENIED)") for e in summary.errors)
    other_store = run(ledger, alliance.s1_manager, good_lines(1, start=60), store="S2")
    assert other_store.errors[0].message.startswith("issue refused (DENIED)")
    assert run(ledger, alliance.p1_manager, good_lines(1, start=70), store="S2").ok


# ------------------------------------------------------------------------------ the command


def test_the_command_prints_a_summary_and_exits_by_what_it_did(ledger, alliance, store_url,
                                                               tmp_path: Path, monkeypatch,
                                                               capsys) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, alliance.tokens["s1_manager"])
    path = tmp_path / "cards.csv"
    path.write_text("\n".join([HEADER, *good_lines(10, start=100)]) + "\n")
    argv = ["import-cards", str(path), "--database", store_url, "--store", "S1"]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    assert "10 card lines" in out and "issued                    10  (10 now" in out
    assert "loaded                     5" in out and "import-cards: lines" in err
    assert cli.main(argv) == 0  # again: replayed
    assert "(0 now, 10 by an earlier run: replayed)" in capsys.readouterr().out

    path.write_text(f"{HEADER}\n{number(200)},STANDARD,USD,,,\n{number(201)},bad,USD,,,\n")
    assert cli.main(argv) == 1
    out, err = capsys.readouterr()
    assert "errors                     1" in out
    assert "line 3: card_class: must be 1..32 of [A-Z0-9_]" in err


@pytest.mark.parametrize(("content", "message"), [
    ("card_number,name\n", "line 1: unknown column 'name'"),
    ("", "line 1: the file is empty"),
])
def test_the_command_refuses_a_bad_file_whole(ledger, alliance, store_url, tmp_path: Path,
                                              monkeypatch, capsys, content: str,
                                              message: str) -> None:
    monkeypatch.setenv(cli.TOKEN_ENV, alliance.tokens["s1_manager"])
    path = tmp_path / "cards.csv"
    path.write_text(content)
    before = db_state(ledger)
    assert cli.main(["import-cards", str(path), "--database", store_url]) == 2
    assert message in capsys.readouterr().err
    assert db_state(ledger) == before


def test_the_command_needs_a_known_token_and_a_readable_file(ledger, store_url, tmp_path: Path,
                                                             monkeypatch, capsys) -> None:
    path = tmp_path / "cards.csv"
    path.write_text(HEADER + "\n")
    monkeypatch.delenv(cli.TOKEN_ENV, raising=False)
    assert cli.main(["import-cards", str(path), "--database", store_url]) == 2
    assert "set LEDGER_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv(cli.TOKEN_ENV, "llk_nope_nope")
    assert cli.main(["import-cards", str(path), "--database", store_url]) == 2
    assert "LEDGER_TOKEN: unknown or revoked token" in capsys.readouterr().err
    assert cli.main(["import-cards", str(tmp_path / "missing.csv"), "--database",
                     store_url]) == 2
    assert "cannot read" in capsys.readouterr().err
