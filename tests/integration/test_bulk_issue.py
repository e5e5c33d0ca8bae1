"""Bulk issuance in the writer (issue 12): a batch of issues asks whether its card numbers
are taken in one query, and every guarantee of IssueCard stays: a number issued twice, in one
batch, in two batches or by two engines on one database at once, is one stream and one
approval, every other attempt DECLINED_CARD_EXISTS; a retry of an issue sent to a fresh
engine replays."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from domain.cards import commands as cc
from domain.common import Result
from ledger.codec import Outcome, card_stream_id
from ledger.engine import Ledger, Request
from tests.support.alliance import card_number


def _issues(numbers: list[str]) -> list[cc.IssueCard]:
    return [cc.IssueCard(n, "STANDARD", "USD", "cust", "S1") for n in numbers]


def _submit(engine: Ledger, credential: str, commands: list[Any],
            request_ids: list[str]) -> list[Any]:
    """Everything at once, with the given request ids (the writer batches them)."""
    done = threading.Semaphore(0)
    replies: list[Any] = [None] * len(commands)

    def answer(index: int) -> Any:
        def callback(reply: Any) -> None:
            replies[index] = reply
            done.release()
        return callback

    for index, (command, request_id) in enumerate(zip(commands, request_ids, strict=True)):
        engine.submit(Request(credential, command, answer(index), "", request_id, "",
                              time.monotonic() + 60))
    for _ in commands:
        assert done.acquire(timeout=60)
    return replies


def _results(replies: list[Any]) -> list[int]:
    assert all(isinstance(r, Outcome) for r in replies), replies[:3]
    return [r.result for r in replies]


def test_a_batch_asks_once_whether_its_numbers_are_taken(ledger, alliance, store, monkeypatch):
    numbers = [card_number(70_000 + i) for i in range(300)]
    calls: list[int] = []
    loads: list[int] = []
    original_exists, original_load = type(store).existing_streams, type(store).load_tails
    monkeypatch.setattr(type(store), "existing_streams",
                        lambda self, ids: calls.append(len(ids)) or original_exists(self, ids))
    monkeypatch.setattr(type(store), "load_tails", lambda self, ids, topic: loads.append(
        len(ids)) or original_load(self, ids, topic))
    replies = _submit(ledger, alliance.s1_manager, _issues(numbers),
                      [f"bulk-{i}" for i in range(300)])
    assert _results(replies) == [Result.APPROVED] * 300
    assert sum(calls) == 300 and len(calls) <= ledger.batches  # at most one query a batch
    assert loads == []  # no card loaded to learn that it does not exist


def test_the_same_number_twice_in_one_batch_and_across_batches(ledger, alliance, store):
    n = card_number(71_000)
    replies = _submit(ledger, alliance.s1_manager, _issues([n, n, card_number(71_001)]),
                      ["d-1", "d-2", "d-3"])
    assert _results(replies) == [Result.APPROVED, Result.DECLINED_CARD_EXISTS,
                                 Result.APPROVED]
    ledger.state.cards.clear()  # a cold cache: the number is found taken in the database
    again = _submit(ledger, alliance.s1_manager, _issues([n]), ["d-4"])
    assert _results(again) == [Result.DECLINED_CARD_EXISTS]
    assert len(store.stream(card_stream_id(n))) == 1


@pytest.mark.backends("sqlite", "postgres")
def test_two_engines_issuing_the_same_numbers_at_once_make_one_stream_each(
        ledger, other, alliance, store):
    other.sync()  # the other engine knows the credentials
    numbers = [card_number(72_000 + i) for i in range(400)]
    results: dict[str, list[int]] = {}

    def run(name: str, engine: Ledger) -> None:
        replies = _submit(engine, alliance.s1_manager, _issues(numbers),
                          [f"{name}-{i}" for i in range(400)])
        results[name] = _results(replies)

    threads = [threading.Thread(target=run, args=(name, engine))
               for name, engine in (("a", ledger), ("b", other))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    for index, number in enumerate(numbers):
        pair = sorted((results["a"][index], results["b"][index]))
        assert pair == [Result.APPROVED, Result.DECLINED_CARD_EXISTS], (number, pair)
        assert len(store.stream(card_stream_id(number))) == 1


@pytest.mark.backends("sqlite", "postgres")
def test_a_rerun_on_a_fresh_engine_replays_without_a_conflict(ledger, other, alliance, store):
    numbers = [card_number(73_000 + i) for i in range(250)]
    ids = [f"import:{n}" for n in numbers]
    first = _submit(ledger, alliance.s1_manager, _issues(numbers), ids)
    assert _results(first) == [Result.APPROVED] * 250
    other.sync()
    conflicts = other.conflicts
    again = _submit(other, alliance.s1_manager, _issues(numbers), ids)
    assert _results(again) == [Result.APPROVED] * 250 and all(r.replayed for r in again)
    assert other.conflicts == conflicts  # the keys were looked up with the numbers
    assert [r.card.card_number for r in again] == numbers
    # the same ids with another card's payload: a mismatch, nothing written
    mismatch = _submit(other, alliance.s1_manager, _issues([card_number(73_999)]), ids[:1])
    assert _results(mismatch) == [Result.DUPLICATE_REQUEST_MISMATCH]
