"""Signed checkpoints over the log (projections/checkpoints.py): the checkpointer binds every
event into the partition's chain and signs Merkle roots; `verify` finds a row altered,
removed or inserted directly in the database and names its position, and refuses checkpoints
not signed by the operator's key."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from domain.cards import commands as cc
from domain.settlement.periods import CloseSettlementPeriod
from ledger.store import EVENTS_TABLE
from projections import checkpoints as cps
from tests.integration.test_engine_stories import USD, approved, call, new_card

pytestmark = pytest.mark.backends("sqlite", "postgres")


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
    numbers = [new_card(ledger, alliance, load=10_000) for _ in range(cards)]
    for number in numbers:
        for amount in (100, 200, 300):
            approved(call(ledger, alliance.t1, cc.Authorize(number, amount, USD, False, "")))
    return numbers


def _sql(store, sqlite: str, postgres: str, params=()) -> None:
    with store.session(commit=True) as session:
        session.execute(sqlite if session.dialect == "sqlite" else postgres, params)


def test_checkpoints_cover_the_log_and_verify(ledger, alliance, store, keys) -> None:
    signer, public = keys
    _traffic(ledger, alliance)
    clock = Clock()
    checkpointer = cps.Checkpointer(store, signer, every_events=7, clock=clock)
    made = checkpointer.run_once()
    total = store.max_notification_id()
    assert made and all(cp.size == 7 for cp in made)
    assert made[-1].last <= total < made[-1].last + 7  # the rest waits for more or for time
    clock.now += cps.limits.AUDIT_CHECKPOINT_S
    made += checkpointer.run_once()
    assert made[-1].last == total
    verdict = cps.verify_database(store, public)
    assert verdict.ok, verdict.problems
    assert (verdict.events, verdict.checkpoints, verdict.uncovered) == (total, len(made), 0)
    # More traffic: covered by the next pass, the chain continuing the last checkpoint.
    _traffic(ledger, alliance, cards=1)
    made2 = checkpointer.run_once(flush=True)
    assert made2[0].chain_before == made[-1].chain
    assert cps.verify_database(store, public).ok


def test_a_settlement_close_ends_a_checkpoint_at_its_marker(ledger, alliance, store,
                                                            keys) -> None:
    signer, _ = keys
    _traffic(ledger, alliance, cards=1)
    approved(call(ledger, alliance.admin, CloseSettlementPeriod("month end")))
    close = store.max_notification_id()
    _traffic(ledger, alliance, cards=1)
    made = cps.Checkpointer(store, signer, every_events=10_000).run_once()
    assert [cp.last for cp in made] == [close]


@pytest.mark.parametrize("tamper", ["alter", "remove", "reorder"])
def test_a_row_changed_in_the_database_is_found_and_named(ledger, alliance, store, keys,
                                                          tamper: str) -> None:
    signer, public = keys
    _traffic(ledger, alliance)
    cps.Checkpointer(store, signer, every_events=5).run_once(flush=True)
    assert cps.verify_database(store, public).ok
    victim = store.max_notification_id() // 2
    if tamper == "alter":  # one byte of the payload: an amount, say
        _sql(store, f"UPDATE {EVENTS_TABLE} SET state = CAST(state || X'00' AS BLOB) "
                    "WHERE rowid = ?",
             f"UPDATE {EVENTS_TABLE} SET state = state || '\\x00'::bytea "
             "WHERE notification_id = %s", (victim,))
        named = victim
    elif tamper == "remove":
        _sql(store, f"DELETE FROM {EVENTS_TABLE} WHERE rowid = ?",
             f"DELETE FROM {EVENTS_TABLE} WHERE notification_id = %s", (victim,))
        named = victim + 1
    else:
        _reorder(store, victim)
        named = victim
    verdict = cps.verify_database(store, public)
    assert not verdict.ok
    assert verdict.first_bad_position == named, verdict.problems


def _reorder(store, position: int) -> None:
    """Swap the payloads of two neighbouring events of the log."""
    with store.session(commit=True) as session:
        key = "rowid" if session.dialect == "sqlite" else "notification_id"
        [(a,)], [(b,)] = (session.query(f"SELECT state FROM {EVENTS_TABLE} WHERE {key} = ?", (p,))
                      for p in (position, position + 1))
        session.execute(f"UPDATE {EVENTS_TABLE} SET state = ? WHERE {key} = ?", (b, position))
        session.execute(f"UPDATE {EVENTS_TABLE} SET state = ? WHERE {key} = ?",
                        (a, position + 1))


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
        written = cps.read_checkpoints(session)
    assert all(b.first > a.last and b.chain_before == a.chain
               for a, b in itertools.pairwise(written))
    assert written[-1].last == store.max_notification_id()
    assert cps.verify_database(store, public).ok
