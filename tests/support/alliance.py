"""The test alliance, its cards and credentials, built through a started engine; request ids,
card numbers and a clock the test moves. The same alliance over gRPC (for server processes) is
tests/support/rpc.py::register_alliance, from the same tables."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from domain.cards import commands as cc
from domain.common import Principal, Role, luhn_complete
from domain.registry import commands as rc
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.store import EventStore

_request_ids = itertools.count(1)
TEST_COUPON_KEY = b"test coupon key: never in production"


def rid(prefix: str = "r") -> str:
    """A fresh request id."""
    return f"{prefix}-{next(_request_ids)}"


def card_number(seed: int) -> str:
    """A Luhn-valid 16-digit card number, distinct per seed."""
    return luhn_complete(f"6{seed:014d}")


class FakeClock:
    """Microseconds since the epoch; starts at the real time, moves only when told to."""

    def __init__(self) -> None:
        self.now_us = time.time_ns() // 1000

    def __call__(self) -> int:
        return self.now_us

    def advance(self, seconds: float) -> None:
        self.now_us += int(seconds * 1_000_000)


@dataclass
class Alliance:
    """Credential ids (for Ledger.call) and bearer tokens (for gRPC) by name."""

    admin: str
    admin_token: str
    credentials: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, name: str) -> str:
        try:
            return self.__dict__["credentials"][name]
        except KeyError:
            raise AttributeError(name) from None


def ok(reply: Any) -> Outcome:
    assert isinstance(reply, Outcome), reply
    return reply


# name -> principal. P1 = retailer (USD), P2 = airline partner (USD).
PRINCIPALS = {
    "p1_manager": Principal(Role.PARTNER_MANAGER, "P1"),
    "p2_manager": Principal(Role.PARTNER_MANAGER, "P2"),
    "s1_manager": Principal(Role.STORE_MANAGER, "P1", "S1"),
    "t1": Principal(Role.TERMINAL, "P1", "S1", "T1"),
    "t2": Principal(Role.TERMINAL, "P1", "S1", "T2"),
    "t3": Principal(Role.TERMINAL, "P1", "S2", "T3"),
    "t_air": Principal(Role.TERMINAL, "P2", "A1", "TA1"),
    "gw1": Principal(Role.GATEWAY, "P1", "S1"),
    "auditor": Principal(Role.AUDITOR),
    "finance": Principal(Role.FINANCE),
}


# The registry every test alliance starts with, in order.
SETUP: tuple[Any, ...] = (
    rc.RegisterPartner("P1", "Retail Group", "USD"),
    rc.RegisterPartner("P2", "Airline", "USD"),
    rc.RegisterStore("P1", "S1", "Flagship", "Asia/Shanghai"),
    rc.RegisterStore("P1", "S2", "Mall", "Asia/Shanghai"),
    rc.RegisterStore("P2", "A1", "Airport lounge", "Europe/Paris"),
    rc.RegisterTerminal("S1", "T1"),
    rc.RegisterTerminal("S1", "T2"),
    rc.RegisterTerminal("S2", "T3"),
    rc.RegisterTerminal("A1", "TA1"),
)


def build_alliance(ledger: Ledger, admin_token: str) -> Alliance:
    admin = ledger.authenticate(admin_token)
    assert admin is not None
    a = Alliance(admin.credential_id, admin_token)
    for command in SETUP:
        assert ok(ledger.call(a.admin, command, request_id=rid("setup"))).result == 1
    for name, principal in PRINCIPALS.items():
        reply = ok(ledger.call(a.admin, rc.CreateCredential(principal, name),
                               request_id=rid("cred")))
        a.credentials[name] = reply.credential_id
        a.tokens[name] = reply.token
    return a


@contextmanager
def started_ledger(store: EventStore, **options: Any) -> Iterator[Ledger]:
    """A started ledger on `store` with a bootstrap ADMIN token in `admin_token`; stopped
    on exit. `options` go to Ledger (clock_us, queue_max, batch_max, card_cache_max...)."""
    options.setdefault("coupon_key", TEST_COUPON_KEY)
    engine = Ledger(store, **options)
    engine.admin_token = engine.bootstrap_admin()  # type: ignore[attr-defined]
    engine.start()
    try:
        yield engine
    finally:
        engine.stop()


def new_card(engine: Ledger, alliance: Alliance, load: int, currency: str = "USD") -> str:
    """A card issued at S1 by its store manager, activated and loaded with `load`."""
    number = ok(engine.call(alliance.s1_manager, cc.IssueCard("", "STANDARD", currency, "",
                                                              ""),
                            request_id=rid("issue"))).card_number
    ok(engine.call(alliance.s1_manager, cc.ActivateCard(number, ""), request_id=rid("act")))
    if load:
        ok(engine.call(alliance.s1_manager, cc.LoadValue(number, load, currency, "psp-1"),
                       request_id=rid("load")))
    return number


def wait_until(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    """Poll `condition` until it holds; fail after `timeout_s` (never a timing assertion:
    the timeout only bounds a hang)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.005)
