"""ExecuteExchange against Authorize, over real gRPC in one run (issue 9's target: the
p99 of ExecuteExchange at most 1.5x the p99 of Authorize).

A server (grpc_api.server.ServerThread) on a temporary SQLite file (or `--database URL`), a
small alliance with two points programs and a rate between them, `--cards` cards that earned
points; then `--clients` client threads each repeat, on their own cards: an Authorize, and a
QuoteExchange followed by its ExecuteExchange. Every call is timed from the client (send to
reply, the reply only after the events are durable); both kinds run interleaved, so they see
the same load. Quote latency is shown too (a read: nothing written).

    nice -n 19 .venv/bin/python -m benchmarks.exchange [--rounds 300] [--clients 4]
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import threading
import time
from typing import Any

import grpc

from benchmarks.stats import percentile
from domain.cards import commands as cc
from domain.common import APPROVALS, Principal, Role, luhn_complete
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding
from domain.points.program import DefineProgram
from domain.purchases.commands import Purchase
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule, RuleSet
from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.store import open_store

_ids = itertools.count(1)


def _rid(prefix: str) -> str:
    return f"{prefix}-{next(_ids)}"


def _ok(reply: Any) -> Outcome:
    assert isinstance(reply, Outcome) and reply.result in APPROVALS, reply
    return reply


def _setup(ledger: Ledger, cards: int) -> tuple[str, list[str]]:
    """The alliance and `cards` cards with 1,000,000 points each; the till's bearer token."""
    admin = ledger.authenticate(ledger.bootstrap_admin("bench"))
    assert admin is not None
    a = admin.credential_id
    for command in (rc.RegisterPartner("P1", "Retail", "USD"),
                    rc.RegisterPartner("P2", "Airline", "USD"),
                    rc.RegisterStore("P1", "S1", "Store", "UTC"),
                    rc.RegisterTerminal("S1", "T1"),
                    DefineProgram("P1", "USD", 1_000_000, 0, 0, "UTC", 0),
                    DefineProgram("P2", "USD", 1_500_000, 3, 1, "UTC", 0),
                    PublishRuleSet(RuleSet(rule_set_id="base", version=1, scope="partner:P1",
                                           valid_from_us=0, valid_to_us=2**62, rules=(Rule(
                                               rule_id="base", effect=Effect.EARN,
                                               rate_num=1, rate_den=100),))),
                    PublishExchangeRate(ExchangeRate("P1", "P2", 1, 0, 1, 2, Rounding.DOWN, 10,
                                                     100, 100, 10**9, 0, 0))):
        _ok(ledger.call(a, command, request_id=_rid("setup")))
    till = _ok(ledger.call(a, rc.CreateCredential(Principal(Role.TERMINAL, "P1", "S1", "T1"),
                                                  "till"), request_id=_rid("setup")))
    numbers = [luhn_complete(f"8{seed:014d}") for seed in range(1, cards + 1)]
    for number in numbers:
        _ok(ledger.call(a, cc.IssueCard(number, "STANDARD", "USD", "", "S1"),
                        request_id=_rid("issue")))
        _ok(ledger.call(a, cc.ActivateCard(number, ""), request_id=_rid("act")))
        _ok(ledger.call(a, cc.LoadValue(number, 10**8, "USD", "bench"), request_id=_rid("l")))
        _ok(ledger.call(till.credential_id, Purchase(
            number, "USD", (Line("tv", "electronics", 1, 10**8),), 0, False, 0, "", "r"),
            request_id=_rid("buy")))
    return till.token, numbers


def _client(target: str, token: str, cards: list[str], rounds: int,
            timings: dict[str, list[float]], lock: threading.Lock) -> None:
    channel = grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
    pos, exchange = pb_grpc.PosServiceStub(channel), xpb_grpc.ExchangeServiceStub(channel)
    md = (("authorization", f"Bearer {token}"),)
    mine: dict[str, list[float]] = {"Authorize": [], "QuoteExchange": [],
                                     "ExecuteExchange": []}
    try:
        for index in range(rounds):
            number = cards[index % len(cards)]
            start = time.perf_counter()
            reply = pos.Authorize(pb.AuthorizeRequest(
                request_id=_rid("a"), card_number=number, amount_minor=1, currency="USD"),
                metadata=md, timeout=30)
            mine["Authorize"].append(time.perf_counter() - start)
            assert reply.result == pb.APPROVED, reply
            start = time.perf_counter()
            offer = exchange.QuoteExchange(xpb.QuoteExchangeRequest(
                card_number=number, from_program="P1", to_program="P2", points_taken=100),
                metadata=md, timeout=30)
            mine["QuoteExchange"].append(time.perf_counter() - start)
            assert offer.result == pb.APPROVED, offer
            start = time.perf_counter()
            done = exchange.ExecuteExchange(xpb.ExecuteExchangeRequest(
                request_id=_rid("x"), card_number=number, quote_id=offer.quote_id),
                metadata=md, timeout=30)
            mine["ExecuteExchange"].append(time.perf_counter() - start)
            assert done.result == pb.APPROVED, done
    finally:
        channel.close()
    with lock:
        for name, values in mine.items():
            timings[name].extend(values)


def run(url: str, cards: int, clients: int, rounds: int) -> dict[str, list[float]]:
    store = open_store(url)
    store.create_schema()
    ledger = Ledger(store, coupon_key=b"benchmark key: never in production").start()
    server = None
    try:
        token, numbers = _setup(ledger, cards)
        server = ServerThread(ledger).start()
        target = f"127.0.0.1:{server.port}"
        timings: dict[str, list[float]] = {"Authorize": [], "QuoteExchange": [],
                                           "ExecuteExchange": []}
        lock = threading.Lock()
        share = max(1, len(numbers) // clients)
        threads = [threading.Thread(target=_client, args=(
            target, token, numbers[i * share:(i + 1) * share], rounds, timings, lock))
            for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return timings
    finally:
        if server is not None:
            server.stop(grace_s=1.0, quiet_s=0)
        ledger.stop()
        store.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="", help="a store URL (default: a temporary "
                        "SQLite file)")
    parser.add_argument("--cards", type=int, default=40)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=300, help="per client")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database or f"sqlite:///{tmp}/bench.db"
        timings = run(url, args.cards, args.clients, args.rounds)
    print(f"{'RPC':18} {'calls':>6} {'p50 ms':>8} {'p99 ms':>8}")
    p99 = {}
    for name, values in timings.items():
        p50, p99[name] = (percentile(values, 0.5) or 0) * 1e3, (percentile(values, 0.99) or 0) * 1e3
        print(f"{name:18} {len(values):6d} {p50:8.2f} {p99[name]:8.2f}")
    print(f"ExecuteExchange p99 / Authorize p99 = "
          f"{p99['ExecuteExchange'] / p99['Authorize']:.2f} (target <= 1.5)")


if __name__ == "__main__":
    main()
