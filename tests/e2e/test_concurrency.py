"""Many concurrent authorizations on ONE card through several terminals: the balance fits
exactly N of them, so exactly N are approved and the rest are declined, whatever the order.

First against the in-process server (both backends), then against `loyalty-ledger serve
--workers 2` (two processes sharing the port and a PostgreSQL database). No test waits for
time to pass: threads start together at a barrier and the assertions hold for any
interleaving."""

from __future__ import annotations

import signal
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from benchmarks.busy_card import Cluster as Workers
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from tests.support.alliance import Alliance, card_number
from tests.support.processes import workers as serve_workers
from tests.support.rpc import (
    R,
    Server,
    all_movements,
    balance,
    call,
    issue,
    metadata,
    ready,
    register_alliance,
    rid,
)

CALLS = 100
AMOUNT = 100
FITS = 37  # the balance covers exactly this many authorizations
ROOT = Path(__file__).resolve().parents[2]
# who calls: a terminal token name, or (gateway, the terminal it acts for in Batch)
CALLERS: list[tuple[str, str]] = [("t1", ""), ("t2", ""), ("t3", ""), ("t_air", ""),
                                  ("gw1", "T1"), ("gw1", "T2")]


@dataclass(frozen=True)
class Outcome:
    caller: str
    result: int
    available_minor: int
    authorization_id: str
    approved_amount_minor: int


def _authorize_once(pos: pb_grpc.PosServiceStub, token: str, terminal: str, number: str,
                    request_id: str) -> pb.AuthorizeReply:
    """One authorization: unary for a terminal, a one-operation Batch for a gateway. A
    retry after RESOURCE_EXHAUSTED (overload) reuses the request id, as the contract allows
    (the ledger decides it at most once). UNAVAILABLE means a database outage: never the
    answer to a busy card (issue 13)."""
    request = pb.AuthorizeRequest(request_id=request_id, card_number=number,
                                  amount_minor=AMOUNT, currency="USD")
    for _ in range(50):
        try:
            if not terminal:
                reply: pb.AuthorizeReply = pos.Authorize(request, metadata=metadata(token),
                                                         timeout=120)
                return reply
            batch = pb.BatchRequest(operations=[pb.PosOperation(terminal_id=terminal,
                                                                authorize=request)])
            (message,) = list(pos.Batch(iter([batch]), metadata=metadata(token), timeout=120))
            (op,) = message.replies
            if op.error.startswith("RESOURCE_EXHAUSTED"):
                continue
            assert not op.error, op.error
            return op.reply
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
    raise AssertionError(f"{request_id}: still refused after 50 attempts")


def _storm(stubs: list[pb_grpc.PosServiceStub], tokens: dict[str, str], number: str,
           callers: list[tuple[str, str]]) -> list[Outcome]:
    """CALLS authorizations of AMOUNT at once, round-robin over callers and stubs."""
    barrier = threading.Barrier(CALLS, timeout=120)  # a guard against a hang, not a wait

    def one(i: int) -> Outcome:
        name, terminal = callers[i % len(callers)]
        stub = stubs[i % len(stubs)]
        barrier.wait()
        reply = _authorize_once(stub, tokens[name], terminal, number, f"storm-{i}")
        return Outcome(f"{name}/{terminal}" if terminal else name, reply.result,
                       reply.available_minor, reply.authorization_id,
                       reply.approved_amount_minor)

    with ThreadPoolExecutor(max_workers=CALLS) as pool:
        return list(pool.map(one, range(CALLS)))


def _assert_exact_fit(outcomes: list[Outcome], held_minor: int, available_minor: int,
                      balance_minor: int) -> None:
    results = Counter(o.result for o in outcomes)
    assert results == {R.APPROVED: FITS, R.DECLINED_INSUFFICIENT_FUNDS: CALLS - FITS}, results
    approved = [o for o in outcomes if o.result == R.APPROVED]
    assert all(o.available_minor >= 0 for o in outcomes)
    assert all(o.approved_amount_minor == AMOUNT for o in approved)
    assert len({o.authorization_id for o in approved}) == FITS
    # decided one after another: each approval left a distinct available balance
    assert sorted(o.available_minor for o in approved) == [AMOUNT * k for k in range(FITS)]
    assert all(o.available_minor < AMOUNT for o in outcomes
               if o.result == R.DECLINED_INSUFFICIENT_FUNDS)
    assert (held_minor, available_minor, balance_minor) == (FITS * AMOUNT, 0, FITS * AMOUNT)
    assert {o.caller for o in outcomes} >= {"t1", "t2", "t3", "t_air", "gw1/T1", "gw1/T2"}


def test_concurrent_authorizations_on_one_card_fit_exactly(server: Server,
                                                           alliance: Alliance) -> None:
    number = issue(server, alliance, 1, load=FITS * AMOUNT)
    channels = [server.new_channel() for _ in range(len(CALLERS))]
    try:
        stubs = [pb_grpc.PosServiceStub(channel) for channel in channels]
        outcomes = _storm(stubs, alliance.tokens, number, CALLERS)
    finally:
        for channel in channels:
            channel.close()
    seen = balance(server, alliance, number)
    _assert_exact_fit(outcomes, seen.held_minor, seen.available_minor, seen.balance_minor)
    movements = all_movements(server, alliance.admin_token, number)
    authorized = [m for m in movements if m.kind == "AUTHORIZED"]
    assert len(authorized) == FITS
    assert [m.held_minor for m in authorized] == [AMOUNT * k for k in range(1, FITS + 1)]
    assert {m.terminal_id for m in authorized} <= {"T1", "T2", "T3", "TA1"}


# ------------------------------------------------------------------------------ two workers


@pytest.fixture
def workers(pg_server_url: str) -> Iterator[Workers]:
    with serve_workers(pg_server_url) as running:
        yield running


def _register_alliance(workers: Workers) -> tuple[dict[str, str], dict[str, str]]:
    """The test alliance, registered over gRPC; returns (tokens, credential ids) by name."""
    channel = workers.channel()
    try:
        return register_alliance(channel, workers.admin_token,
                                 ("s1_manager", "t1", "t2", "t3", "t_air", "gw1"))
    finally:
        channel.close()


def _issue_loaded_card(workers: Workers, seed: int, amount: int) -> str:
    """Through one channel, with the admin token only (both workers know it since `init`)."""
    channel = workers.channel()
    try:
        cards = pb_grpc.CardServiceStub(channel)
        number = card_number(seed)
        for method, request in [
            (cards.IssueCard, pb.IssueCardRequest(request_id=rid(), card_number=number,
                                                  card_class="STANDARD", currency="USD",
                                                  issuing_store_id="S1")),
            (cards.ActivateCard, pb.CardActionRequest(request_id=rid(), card_number=number)),
            (cards.LoadValue, pb.LoadValueRequest(request_id=rid(), card_number=number,
                                                  amount_minor=amount, currency="USD",
                                                  payment_ref="pay")),
        ]:
            assert call(method, request, workers.admin_token).result == R.APPROVED
        return number
    finally:
        channel.close()


def _on_channels(channels: list[grpc.Channel], each: Callable[[grpc.Channel], None]) -> None:
    with ThreadPoolExecutor(max_workers=len(channels)) as pool:
        list(pool.map(each, channels))


@pytest.mark.slow
def test_two_workers_fit_exactly(workers: Workers) -> None:
    tokens, _ = _register_alliance(workers)
    number = _issue_loaded_card(workers, 1, FITS * AMOUNT)
    channels = [workers.channel() for _ in range(24)]
    try:
        for channel in channels:
            ready(channel, 60)
        stubs = [pb_grpc.PosServiceStub(channel) for channel in channels]
        outcomes = _storm(stubs, tokens, number, CALLERS)
        seen = call(stubs[0].GetBalance, pb.GetBalanceRequest(card_number=number),
                    workers.admin_token)
        _assert_exact_fit(outcomes, seen.held_minor, seen.available_minor, seen.balance_minor)
        # every worker agrees
        for stub in stubs:
            again = call(stub.GetBalance, pb.GetBalanceRequest(card_number=number),
                         workers.admin_token)
            assert (again.balance_minor, again.held_minor) == (FITS * AMOUNT, FITS * AMOUNT)
        movements = call(pb_grpc.CardServiceStub(channels[0]).ListMovements,
                         pb.ListMovementsRequest(card_number=number, limit=1000),
                         workers.admin_token).movements
        authorized = [m for m in movements if m.kind == "AUTHORIZED"]
        assert [m.held_minor for m in authorized] == [AMOUNT * k for k in range(1, FITS + 1)]
    finally:
        for channel in channels:
            channel.close()
    workers.process.send_signal(signal.SIGTERM)
    assert workers.process.wait(timeout=60) == 0


def _codes(channels: list[grpc.Channel], token: str, number: str) -> Counter[str]:
    """The outcome of one ListMovements with `token` on every channel."""
    codes: list[str] = []

    def each(channel: grpc.Channel) -> None:
        try:
            call(pb_grpc.CardServiceStub(channel).ListMovements,
                 pb.ListMovementsRequest(card_number=number), token)
            codes.append("OK")
        except grpc.RpcError as error:
            codes.append(error.code().name)

    _on_channels(channels, each)
    return Counter(codes)


def _warm(channels: list[grpc.Channel], workers: Workers, number: str) -> None:
    """A decided request (GetBalance, admin token) on every channel: every worker follows
    the log up to now."""
    _on_channels(channels, lambda ch: call(
        pb_grpc.PosServiceStub(ch).GetBalance, pb.GetBalanceRequest(card_number=number),
        workers.admin_token))


@pytest.mark.slow
def test_two_workers_see_new_and_revoked_credentials_at_once(workers: Workers) -> None:
    """32 channels reach both workers (all on one: probability 2**-31). A credential created
    or revoked through one worker must be honoured by every worker on the next call.
    (Regression: a worker once refreshed its registry only when its writer decided a request.)"""
    _register_alliance(workers)
    number = _issue_loaded_card(workers, 2, 1_000)
    channels = [workers.channel() for _ in range(32)]
    admin_channel = workers.channel()
    admin = pb_grpc.AdminServiceStub(admin_channel)
    try:
        for channel in channels:
            ready(channel, 60)
        _warm(channels, workers, number)
        created = call(admin.CreateCredential, pb.CreateCredentialRequest(
            request_id=rid(), principal=pb.Principal(role=pb.AUDITOR)), workers.admin_token)
        after_create = _codes(channels, created.token, number)

        _warm(channels, workers, number)
        assert _codes(channels, created.token, number) == {"OK": 32}  # both know it now
        revoked = call(admin.RevokeCredential, pb.RevokeCredentialRequest(
            request_id=rid(), credential_id=created.credential_id), workers.admin_token)
        assert revoked.result == R.APPROVED
        after_revoke = _codes(channels, created.token, number)
        assert (after_create, after_revoke) == ({"OK": 32}, {"UNAUTHENTICATED": 32}), (
            f"new credential: {dict(after_create)}; revoked credential: {dict(after_revoke)}")
    finally:
        admin_channel.close()
        for channel in channels:
            channel.close()
