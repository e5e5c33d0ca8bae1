"""The points expiry job, as `loyalty-ledger expire --as-of` and the scheduler in `serve` run
it, on both stores: lots whose time is up at `as_of` expire, once, with their remainder only;
an earlier `as_of` expires less; a second run changes nothing; a future `as_of` is refused; a
caller from the wire cannot trigger it."""

from __future__ import annotations

import concurrent.futures
import subprocess

import pytest

from domain.cards import events as ev
from domain.points.purse import ExpiryKind
from domain.purchases.commands import MaintainCard
from grpc_api.translate import format_time_us
from ledger.engine import Failure, Ledger, Refusal, Request
from projections.maintenance import PointsExpiry
from tests.integration.test_engine_stories import call, card_events, new_card, view
from tests.integration.test_purchase_stories import basket, buy, purchase, setup_program
from tests.support.alliance import wait_until
from tests.support.processes import ROOT, ServerProcess, cli, env

# Stories told on SQLite; those marked backends("sqlite", "postgres") restart on the stored
# log or start a server process, and run on PostgreSQL too (tests/conftest.py).
pytestmark = pytest.mark.backends("sqlite")

DAY_S = 86_400


def _history(ledger: Ledger, alliance, clock) -> tuple[str, str, int]:
    """Two cards: one earns 55 (spends 20 of it), one earns 120 ten days later. Lots expire a
    month after earning. Returns the card numbers and when the first lot expires."""
    setup_program(ledger, alliance, kind=ExpiryKind.MONTHS_AFTER, n=1)
    early, late = new_card(ledger, alliance, load=500_00), new_card(ledger, alliance, load=0)
    first = buy(ledger, alliance, purchase(early, stored_value=55_00))
    buy(ledger, alliance, purchase(early, basket(("pen-1", "office", 1, 20_00)), points=20))
    clock.advance(10 * DAY_S)
    buy(ledger, alliance, purchase(late, basket(("tv-1", "electronics", 1, 120_00))))
    return early, late, first.purchase.expires_at_us


def _call_system(ledger: Ledger, command: MaintainCard):
    future: concurrent.futures.Future = concurrent.futures.Future()
    ledger.submit(Request("", command, future.set_result, system=True))
    return future.result(30)


def test_expiry_as_of_a_time_is_deterministic_and_happens_once(ledger, alliance, clock):
    early, late, first_expiry = _history(ledger, alliance, clock)
    clock.advance(60 * DAY_S)  # both lots are past their expiry now
    job = PointsExpiry(ledger)
    before_first = job.run(first_expiry - 1)
    assert (before_first.cards_checked, before_first.points_expired) == (2, 0)
    at_first = job.run(first_expiry)
    assert (at_first.cards_with_expiry, at_first.points_expired) == (1, 55 - 20 + 20)
    everything = job.run(clock.now_us)
    assert (everything.cards_with_expiry, everything.points_expired) == (1, 120)
    again = PointsExpiry(ledger).run(clock.now_us)  # a fresh job (another process) too
    assert (again.points_expired, again.failures) == (0, 0)
    for number, amounts in ((early, [35, 20]), (late, [120])):
        expired = [e.amount for e in card_events(ledger.store, number)
                   if isinstance(e, ev.PointsExpired)]
        assert sorted(expired) == sorted(amounts)
        assert view(ledger, alliance, number).points == 0


def test_expiry_is_never_early_and_only_the_ledger_runs_it(ledger, alliance, clock):
    early, _, _ = _history(ledger, alliance, clock)
    future = _call_system(ledger, MaintainCard(early, clock.now_us + 1))
    assert isinstance(future, Failure) and future.code == Refusal.INVALID_INPUT
    from_wire = call(ledger, alliance.admin, MaintainCard(early, clock.now_us))
    assert isinstance(from_wire, Failure) and from_wire.code == Refusal.DENIED


@pytest.mark.slow
def test_the_expire_command(ledger, alliance, clock, store_url):
    if not store_url.startswith("sqlite"):
        return  # the command is the same on both stores; one subprocess run is enough here
    # lots earned "two years ago" by the fake clock, so they are due by the real clock
    clock.advance(-730 * DAY_S)
    _, _, first_expiry = _history(ledger, alliance, clock)
    ledger.stop()

    def expire(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(cli("expire", "--database", store_url, *args), cwd=ROOT,
                              env=env(), capture_output=True, text=True, timeout=120,
                              check=False)

    done = expire("--as-of", format_time_us(first_expiry))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("expired 55 points on 1 of 2 cards"), done.stdout  # 35 + 20
    assert expire().stdout.startswith("expired 120 points on 1 of 2 cards, lowered 0 tiers")
    assert expire().stdout.startswith("expired 0 points on 0 of 2 cards")
    refused = expire("--as-of", "2999-01-01T00:00:00Z")
    assert refused.returncode == 2 and "future" in refused.stderr
    bad = expire("--as-of", "next tuesday")
    assert bad.returncode == 2 and "--as-of" in bad.stderr
    ledger.start()  # the fixture stops it again


@pytest.mark.slow
@pytest.mark.backends("sqlite", "postgres")  # a server process on the store
def test_serve_runs_the_expiry_job_on_its_schedule(ledger, alliance, clock, store_url):
    clock.advance(-730 * DAY_S)  # lots due by the real clock
    early, late, _ = _history(ledger, alliance, clock)
    ledger.stop()
    server = ServerProcess(store_url, "--expire-every-s", "0.2")
    try:
        def expired() -> int:
            return sum(e.amount for number in (early, late)
                       for e in card_events(ledger.store, number)
                       if isinstance(e, ev.PointsExpired))
        wait_until(lambda: expired() == 55 + 120)
    finally:
        server.stop()
    ledger.start()
