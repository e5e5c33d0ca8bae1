"""The audit replay's bulk paths (projections/audit_read.py): the stored replies read a page
at a time (on PostgreSQL in one binary query), and the cards replayed in shares side by side
in processes of their own. Whatever the path, the replay finds the same differences, in the
same order, and rebuilds the same figures."""

from __future__ import annotations

import json
import random

import msgspec
import pytest

from domain.cards import commands as cc
from ledger.codec import card_stream_id, decode_event, decode_outcome, encode
from projections.audit import At, figures, replay
from projections.audit_read import Share, key_of
from tests.integration.test_engine_stories import USD, approved, call, new_card
from tests.integration.test_replay import _traffic
from tests.support.lanes import lane_tables, stream_rows

pytestmark = pytest.mark.backends("sqlite", "postgres", "split")


def _share_of(number: str) -> int:
    return 0 if Share(0, 2).keeps_stream(card_stream_id(number).bytes) else 1


def _cards_in_both_shares(ledger, alliance) -> list[str]:
    """Cards until each of two shares has one (a handful may all fall in one)."""
    numbers: list[str] = []
    while {_share_of(n) for n in numbers} != {0, 1}:
        numbers.append(new_card(ledger, alliance, load=2_000))
    return numbers


def _last_event(store, number: str):
    """(position, event) of the card's latest event: the position an int on one log, an `At`
    (lane, position) on a split one."""
    stream = card_stream_id(number)
    row = stream_rows(store, stream)[-1]
    position = At(store.lane_of(stream), row.id) if store.split else row.id
    return position, decode_event(row.state)


def _lane(store, position) -> int:
    return position.lane if isinstance(position, At) else 0


def _id(position) -> int:
    return position.id if isinstance(position, At) else position


def _forge_reply(store, event, balance_minor: int, lane: int) -> None:
    """The stored reply of `event`'s request (in its card's lane), showing the card with
    another balance."""
    space, request_id = key_of(event.meta)
    with lane_tables(store, lane) as (session, _, keys, _):
        (outcome,) = session.query(f"SELECT outcome FROM {keys} WHERE key_space = ? "
                                   "AND request_id = ?", (space, request_id))[0]
        reply = decode_outcome(bytes(outcome))
        assert reply.card is not None
        forged = msgspec.structs.replace(reply, card=msgspec.structs.replace(
            reply.card, balance_minor=balance_minor))
        assert session.execute(f"UPDATE {keys} SET outcome = ? WHERE key_space = ? "
                               "AND request_id = ?", (encode(forged), space, request_id)) == 1


def _forge_amount(store, position: int, event) -> None:
    forged = msgspec.structs.replace(event, amount_minor=event.amount_minor * 10,
                                     legs=tuple(msgspec.structs.replace(
                                         leg, amount_minor=leg.amount_minor * 10)
                                         for leg in event.legs[:1]) + event.legs[1:])
    with lane_tables(store, _lane(store, position)) as (session, events, _, column):
        assert session.execute(f"UPDATE {events} SET state = ? WHERE {column} = ?",
                               (encode(forged), _id(position))) == 1


@pytest.mark.parametrize("shares", [1, 2])
def test_a_wrong_stored_reply_is_found_with_its_position(ledger, alliance, shares):
    """A reply edited in the request keys' table (the engine told the till 1,500; the table
    now says 9,999) is named with the position of the event it answered."""
    number = new_card(ledger, alliance, load=1_000)
    approved(call(ledger, alliance.t1, cc.LoadValue(number, 500, USD, "second")))
    position, event = _last_event(ledger.store, number)
    clean = replay(ledger.store, shares=shares)
    assert clean.differences == [] and clean.replies_compared >= 2
    _forge_reply(ledger.store, event, 9_999, _lane(ledger.store, position))
    report = replay(ledger.store, shares=shares)
    assert report.differences == [f"log id {position}: the reply gave card {number} balance "
                                  "9999, the replay 1500"]
    assert report.replies_compared == clean.replies_compared


def test_shares_find_the_same_differences_in_the_same_order(ledger, alliance, clock):
    """Two shares against one on a log with purchases, returns, two rule-set versions, a
    forged amount (its postings no longer sum to zero, and the reply the till got differs)
    and a forged reply, on cards of both shares: the same report, the same figures."""
    _traffic(ledger, alliance, clock, random.Random(20261204))
    numbers = _cards_in_both_shares(ledger, alliance)
    by_share = {_share_of(n): n for n in numbers}
    position, event = _last_event(ledger.store, by_share[1])
    _forge_amount(ledger.store, position, event)
    at, answered = _last_event(ledger.store, by_share[0])
    _forge_reply(ledger.store, answered, 1, _lane(ledger.store, at))
    one = replay(ledger.store, shares=1)
    shown: list[tuple[str, int, int]] = []
    two = replay(ledger.store, lambda *step: shown.append(step), shares=2)
    assert len(one.differences) >= 3, one.differences
    last = ledger.store.max_notification_id()
    # the progress shown is every share's: the log to its end, then all the cards
    assert ("log", last, last) in shown and shown[-1] == ("cards", len(one.cards),
                                                          len(one.cards))
    assert all(phase == "cards" for phase, _, _ in shown[shown.index(("log", last, last))
                                                         + 1:])
    assert two.differences == one.differences
    for name in ("events", "purchases", "lots", "cards_compared", "replies_compared",
                 "postings"):
        assert getattr(two, name) == getattr(one, name), name
    assert list(two.cards) == list(one.cards)  # the order each card was first seen
    assert json.dumps(figures(two)) == json.dumps(figures(one))
    assert one.purchases >= 40 and one.replies_compared >= 40


def test_as_of_in_shares_is_the_same_as_in_one(ledger, alliance, clock):
    numbers = _cards_in_both_shares(ledger, alliance)
    between = clock.now_us
    clock.advance(60)
    for number in numbers:
        approved(call(ledger, alliance.t1, cc.LoadValue(number, 500, USD, "later")))
    one = replay(ledger.store, as_of_us=between, shares=1)
    two = replay(ledger.store, as_of_us=between, shares=2)
    assert json.dumps(figures(two)) == json.dumps(figures(one))
    assert {c["balance_minor"] for c in figures(one)["cards"].values()} == {2_000}


def test_a_share_that_fails_names_itself(ledger, alliance):
    """A row that does not decode stops the replay (as in one process), naming the share."""
    numbers = _cards_in_both_shares(ledger, alliance)
    number = next(n for n in numbers if _share_of(n) == 1)
    position, _ = _last_event(ledger.store, number)
    with lane_tables(ledger.store, _lane(ledger.store, position)) as (session, events, _,
                                                                      column):
        session.execute(f"UPDATE {events} SET state = ? WHERE {column} = ?",
                        (b"\xc1not msgpack", _id(position)))
    with pytest.raises(msgspec.DecodeError):
        replay(ledger.store, shares=1)
    with pytest.raises(RuntimeError, match=r"share 1 of 2 failed:(.|\n)*DecodeError"):
        replay(ledger.store, shares=2)


def test_shares_must_be_one_or_more(ledger):
    with pytest.raises(ValueError, match="shares must be 1 or more, not 0"):
        replay(ledger.store, shares=0)
