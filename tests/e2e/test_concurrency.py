"""Many concurrent authorizations on ONE card through several terminals: the balance fits
exactly N of them, so exactly N are approved and the rest are declined, whatever the order.

First against the in-process server (both backends), then against `loyalty-ledger serve
--workers 2` (two processes sharing the port and a PostgreSQL database). No test waits for
time to pass: threads start together at a barrier and the assertions hold for any
interleaving."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import psycopg
import pytest

from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from tests.e2e.support import R, Server, all_movements, balance, call, issue, metadata, rid
from tests.helpers import Alliance, card_number

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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _drop_tables(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS ledger_events, ledger_snapshots, "
                     "ledger_request_keys CASCADE")


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "entrypoints.cli", *args]


@dataclass
class Workers:
    process: subprocess.Popen[str]
    target: str
    admin_token: str
    lines: queue.Queue[str]

    def channel(self) -> grpc.Channel:
        # a local subchannel pool: every channel opens its own connection, so the kernel
        # spreads them over both workers (SO_REUSEPORT)
        return grpc.insecure_channel(self.target, options=[("grpc.use_local_subchannel_pool", 1)])


def _start_workers(url: str) -> Iterator[Workers]:
    _drop_tables(url)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    init = subprocess.run(_cli("init", "--database", url), cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=True)
    admin_token = init.stdout.strip().splitlines()[-1]
    assert admin_token.startswith("llk_"), init.stdout
    target = f"127.0.0.1:{_free_port()}"
    process = subprocess.Popen(_cli("serve", "--database", url, "--listen", target,
                                    "--workers", "2"),
                               cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put("")  # end of output

    threading.Thread(target=relay, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=120)  # a guard against a hung start, not a wait
            assert line, "the server exited before it was ready"
            if line.startswith("ready: 2 workers"):
                break
        yield Workers(process, target, admin_token, lines)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def workers(pg_server_url: str) -> Iterator[Workers]:
    yield from _start_workers(pg_server_url)


def _register_alliance(workers: Workers) -> tuple[dict[str, str], dict[str, str]]:
    """The test alliance, registered over gRPC; returns (tokens, credential ids) by name."""
    channel = workers.channel()
    admin, token = pb_grpc.AdminServiceStub(channel), workers.admin_token
    try:
        for method, request in [
            (admin.RegisterPartner, pb.RegisterPartnerRequest(partner_id="P1", name="Retail",
                                                              currency="USD")),
            (admin.RegisterPartner, pb.RegisterPartnerRequest(partner_id="P2", name="Airline",
                                                              currency="USD")),
            (admin.RegisterStore, pb.RegisterStoreRequest(partner_id="P1", store_id="S1",
                                                          name="Flagship",
                                                          timezone="Asia/Shanghai")),
            (admin.RegisterStore, pb.RegisterStoreRequest(partner_id="P1", store_id="S2",
                                                          name="Mall",
                                                          timezone="Asia/Shanghai")),
            (admin.RegisterStore, pb.RegisterStoreRequest(partner_id="P2", store_id="A1",
                                                          name="Lounge",
                                                          timezone="Europe/Paris")),
            *[(admin.RegisterTerminal, pb.RegisterTerminalRequest(store_id=s, terminal_id=t))
              for s, t in (("S1", "T1"), ("S1", "T2"), ("S2", "T3"), ("A1", "TA1"))],
        ]:
            request.request_id = rid("setup")
            assert call(method, request, token).result == R.APPROVED
        principals = {
            "s1_manager": pb.Principal(role=pb.STORE_MANAGER, partner_id="P1", store_id="S1"),
            "t1": pb.Principal(role=pb.TERMINAL, partner_id="P1", store_id="S1",
                               terminal_id="T1"),
            "t2": pb.Principal(role=pb.TERMINAL, partner_id="P1", store_id="S1",
                               terminal_id="T2"),
            "t3": pb.Principal(role=pb.TERMINAL, partner_id="P1", store_id="S2",
                               terminal_id="T3"),
            "t_air": pb.Principal(role=pb.TERMINAL, partner_id="P2", store_id="A1",
                                  terminal_id="TA1"),
            "gw1": pb.Principal(role=pb.GATEWAY, partner_id="P1", store_id="S1"),
        }
        tokens, ids = {"admin": token}, {}
        for name, principal in principals.items():
            reply = call(admin.CreateCredential, pb.CreateCredentialRequest(
                request_id=rid("cred"), principal=principal, label=name), token)
            assert reply.result == R.APPROVED
            tokens[name], ids[name] = reply.token, reply.credential_id
        return tokens, ids
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
            grpc.channel_ready_future(channel).result(timeout=60)
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
            grpc.channel_ready_future(channel).result(timeout=60)
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
