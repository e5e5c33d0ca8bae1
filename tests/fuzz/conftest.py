"""Fuzz suite fixtures: one real server per store (SQLite file, PostgreSQL database) for the
whole module, the world it plays in, the budget options and the summary at the end.

Options (registered in tests/conftest.py, so they work from the repository root too; the
environment variables work as well):
  --fuzz-seconds N  (FUZZ_SECONDS)  wall-clock budget per store, split between unary calls and
                                    Batch streams; the default keeps the whole suite on both
                                    stores at about a minute
  --fuzz-seed N     (FUZZ_SEED)     the generator's seed: the same seed sends the same sequence
  --fuzz-calls N    (FUZZ_CALLS)    stop after N calls per phase instead of after the seconds
                                    (for reproducing a run exactly, whatever the machine's speed)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import os
import random
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from domain.common import luhn_complete
from grpc_api.generated import pos_pb2 as pb
from grpc_api.server import ServerThread
from ledger.store import open_store
from tests.fuzz.harness import Fuzzer, LogTrap
from tests.fuzz.world import World
from tests.support.alliance import FakeClock, build_alliance, started_ledger
from tests.support.databases import fresh_postgres
from tests.support.rpc import ready

DEFAULT_SECONDS = 20.0
START = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)  # a fixed clock: runs do not depend on the day
SUMMARIES: list[str] = []


def _option(config: pytest.Config, name: str, env: str, default: Any, kind: type) -> Any:
    value = config.getoption(name, default=None)
    if value is None:
        value = os.environ.get(env)
    return kind(value) if value is not None else default


@pytest.fixture(scope="session")
def fuzz_budget(pytestconfig: pytest.Config) -> dict[str, Any]:
    return {"seconds": _option(pytestconfig, "fuzz_seconds", "FUZZ_SECONDS", DEFAULT_SECONDS,
                               float),
            "seed": _option(pytestconfig, "fuzz_seed", "FUZZ_SEED", 1, int),
            "calls": _option(pytestconfig, "fuzz_calls", "FUZZ_CALLS", 0, int)}


class FixedClock(FakeClock):
    """FakeClock starting at a fixed instant (moves only when the test says so)."""

    def __init__(self) -> None:
        self.now_us = int(START.timestamp()) * 1_000_000


def _populate(world: World) -> None:
    """The world's starting point, over gRPC: a card class whose holds last a minute, points
    programs, a coupon campaign, a rule set, loaded cards, holds, a purchase and a coupon."""
    stubs = world.stubs

    def ok(service: str, name: str, request: Any, caller: str) -> Any:
        reply = getattr(stubs[service], name)(request, metadata=(
            ("authorization", f"Bearer {world.token(caller)}"),), timeout=60)
        assert getattr(reply, "result", pb.APPROVED) == pb.APPROVED, (name, reply)
        world.learn(name, request, caller, reply)
        return reply

    ok("AdminService", "DefineCardClass", pb.DefineCardClassRequest(
        request_id="w-class", card_class="FUZZ_SHORT", max_balance_major=1_000_000,
        hold_ttl_seconds=60), "admin")
    for owner, caller in (("P1", "p1_manager"), ("alliance", "admin")):
        ok("ProgramService", "DefineProgram", pb.DefineProgramRequest(
            request_id=f"w-prog-{owner}", owner=owner, currency="USD",
            point_value_micros=1_000_000, expiry_kind=pb.END_OF_YEAR, expiry_n=1,
            timezone="Asia/Shanghai", tiers=[pb.TierLevel(name="SILVER", threshold_minor=100_00)]),
           caller)
    ok("ProgramService", "DefineCouponCampaign", pb.DefineCouponCampaignRequest(
        request_id="w-camp", campaign=pb.CouponCampaign(
            campaign_id="fuzz-coupon", owner="P1", currency="USD", kind=pb.COUPON_VALUE,
            value_minor=500, valid_to="2099-01-01T00:00:00Z", funded_by="P1")), "p1_manager")
    ok("ProgramService", "PublishRuleSet", pb.PublishRuleSetRequest(
        request_id="w-rules", rule_set=pb.RuleSet(
            rule_set_id="fz-rs-0", version=1, scope="partner:P1",
            valid_from="2026-01-01T00:00:00Z", rules=[
                pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100)])),
       "p1_manager")
    cards = []
    for index, card_class in enumerate(["STANDARD"] * 5 + ["VIP"] * 2 + ["FUZZ_SHORT"]):
        number = luhn_complete(f"6{index + 1:014d}")
        ok("CardService", "IssueCard", pb.IssueCardRequest(
            request_id=f"w-issue-{index}", card_number=number, card_class=card_class,
            currency="USD", issuing_store_id="S1"), "s1_manager")
        ok("CardService", "ActivateCard", pb.CardActionRequest(
            request_id=f"w-act-{index}", card_number=number), "s1_manager")
        ok("CardService", "LoadValue", pb.LoadValueRequest(
            request_id=f"w-load-{index}", card_number=number, amount_minor=1_000_00,
            currency="USD", payment_ref="psp"), "admin")
        cards.append(number)
    ok("PosService", "Authorize", pb.AuthorizeRequest(
        request_id="w-auth-0", card_number=cards[0], amount_minor=10_00, currency="USD"), "t1")
    captured = ok("PosService", "Authorize", pb.AuthorizeRequest(
        request_id="w-auth-1", card_number=cards[1], amount_minor=20_00, currency="USD"), "t1")
    ok("PosService", "Capture", pb.CaptureRequest(
        request_id="w-cap-1", authorization_id=captured.authorization_id), "t1")
    # The hold that expires: the FUZZ_SHORT class holds for 60 s; the movement check runs
    # again after the clock moved past every hold's lifetime.
    ok("PosService", "Authorize", pb.AuthorizeRequest(
        request_id="w-auth-short", card_number=cards[7], amount_minor=100_00, currency="USD"),
       "t1")
    ok("PosService", "Purchase", pb.PurchaseRequest(
        request_id="w-buy", card_number=cards[2], currency="USD", stored_value_minor=6_00,
        lines=[pb.PurchaseLine(sku="tea-2", category="grocery", quantity=1,
                               unit_price_minor=6_00)], local_time="2026-06-01T12:30"), "t1")
    ok("ProgramService", "IssueCoupon", pb.IssueCouponRequest(
        request_id="w-coupon", card_number=cards[3], campaign_id="fuzz-coupon"), "p1_manager")


class Target:
    """One store's server, world and fuzzer, shared by the module's tests."""

    def __init__(self, store_name: str, world: World, fuzzer: Fuzzer, clock: FixedClock,
                 budget: dict[str, Any]) -> None:
        self.store_name, self.world, self.fuzzer = store_name, world, fuzzer
        self.clock, self.budget = clock, budget
        self.elapsed = 0.0


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           fuzz_budget: dict[str, Any]) -> Iterator[Target]:
    databases = contextlib.ExitStack()
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/ledger.db"
    else:
        url = databases.enter_context(fresh_postgres("ledger_fuzz"))
    trap = LogTrap()
    logging.getLogger().addHandler(trap)
    store = open_store(url)
    store.create_schema()
    clock = FixedClock()
    # Card numbers the ledger makes up are a sequence, so a seed replays the same run.
    generated = (luhn_complete(f"8{n:014d}") for n in itertools.count(1))
    try:
        with started_ledger(store, clock_us=clock,
                            card_numbers=lambda: next(generated)) as ledger:
            alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
            thread = ServerThread(ledger).start()
            channel = grpc.insecure_channel(f"127.0.0.1:{thread.port}")
            ready(channel)
            try:
                world = World(ledger, alliance, channel)
                _populate(world)
                # The same seed on both stores: the same requests, so the stores compare.
                fuzzer = Fuzzer(world, random.Random(fuzz_budget["seed"]), trap, request.param)
                fuzzer.check_log()
                target = Target(request.param, world, fuzzer, clock, fuzz_budget)
                yield target
                SUMMARIES.append(fuzzer.summary(target.elapsed))
            finally:
                channel.close()
                thread.stop(grace_s=1.0, quiet_s=0)
    finally:
        store.close()
        logging.getLogger().removeHandler(trap)
        databases.close()  # drops the PostgreSQL database


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if SUMMARIES:
        terminalreporter.section("fuzz summary")
        for summary in SUMMARIES:
            terminalreporter.write_line(summary)
