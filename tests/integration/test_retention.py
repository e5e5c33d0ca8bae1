"""Request keys are kept for the contract's retry window (7 days) and pruned after it, by any
process, a chunk at a time, beside a running writer. A retry after the window is a new
request: this test shows what that means, so the README can say it."""

from __future__ import annotations

import time

from domain.cards import commands as cc
from ledger.engine import Ledger
from ledger.retention import prune_request_keys
from tests.support.alliance import new_card, ok, started_ledger
from tests.support.rpc import request_key_count

DAY_US = 86_400_000_000


def test_keys_live_through_the_retry_window_then_go(ledger: Ledger, alliance, store) -> None:
    number = new_card(ledger, alliance, 10_00)
    for index in range(5):
        ok(ledger.call(alliance.t1, cc.LoadValue(number, 1_00, "USD", "p"),
                       request_id=f"load-{index}"))
    kept = request_key_count(ledger)
    assert kept >= 5
    now_us = time.time_ns() // 1000  # keys carry the database's clock
    assert prune_request_keys(store, now_us + 6 * DAY_US, chunk=2) == 0
    assert request_key_count(ledger) == kept
    assert prune_request_keys(store, now_us + 8 * DAY_US, chunk=2) == kept  # several chunks
    assert request_key_count(ledger) == 0
    assert prune_request_keys(store, now_us + 8 * DAY_US) == 0  # a second run finds nothing


def test_a_retry_after_the_window_is_a_new_request(ledger: Ledger, alliance, store,
                                                   clock) -> None:
    number = new_card(ledger, alliance, 10_00)
    load = cc.LoadValue(number, 1_00, "USD", "p")
    first = ok(ledger.call(alliance.t1, load, request_id="late-retry"))
    again = ok(ledger.call(alliance.t1, load, request_id="late-retry"))
    assert again.replayed and again.card.balance_minor == first.card.balance_minor == 11_00
    prune_request_keys(store, time.time_ns() // 1000 + 8 * DAY_US)
    # A process that starts after the pruning (or whose cache no longer holds the key) has
    # nothing to replay: the load is applied again.
    with started_ledger(store, clock_us=clock) as fresh:
        late = ok(fresh.call(alliance.t1, load, request_id="late-retry"))
    assert not late.replayed and late.card.balance_minor == 12_00
