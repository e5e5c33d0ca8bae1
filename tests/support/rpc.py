"""Over real gRPC: a server on its own thread in this process (`serve`), calling RPCs, reading
what the database holds, and building the alliance, cards and holds through the API."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from domain.registry import commands as rc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.engine import Ledger
from ledger.store import KEYS_TABLE, PostgresStore, SQLiteStore
from tests.support.alliance import PRINCIPALS, SETUP, Alliance, card_number

R = pb.Result
_ids = itertools.count(1)


def metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """gRPC metadata carrying `token` as a bearer token (None: no authorization at all)."""
    return () if token is None else (("authorization", f"Bearer {token}"),)


@dataclass
class Server:
    """A running server and stubs for its services over one channel."""

    ledger: Ledger
    port: int
    target: str
    channel: grpc.Channel
    admin: pb_grpc.AdminServiceStub
    cards: pb_grpc.CardServiceStub
    pos: pb_grpc.PosServiceStub
    programs: pb_grpc.ProgramServiceStub
    settlement: pb_grpc.SettlementServiceStub

    @staticmethod
    def md(token: str | None) -> tuple[tuple[str, str], ...]:
        return metadata(token)

    def new_channel(self) -> grpc.Channel:
        """A separate channel (its own HTTP/2 connection) to the same server."""
        return grpc.insecure_channel(self.target,
                                     options=[("grpc.use_local_subchannel_pool", 1)])


def ready(channel: grpc.Channel, timeout_s: float = 30.0) -> None:
    """Wait until the server behind `channel` answers a health check. Not
    grpc.channel_ready_future: that leaves a thread polling the channel's state every 0.2 s,
    and channel.close() then waits for the poll (0.2 s per channel closed)."""
    reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(),
                                                      wait_for_ready=True, timeout=timeout_s)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING, reply


@contextmanager
def serve(ledger: Ledger) -> Iterator[Server]:
    """A real gRPC server (grpc_api.server.ServerThread) on `ledger`, and stubs over one
    channel to it. On exit the server stops without shutdown's quiet wait: the test's clients
    have their replies by then, and the calls still in progress are let finish."""
    thread = ServerThread(ledger).start()
    target = f"127.0.0.1:{thread.port}"
    channel = grpc.insecure_channel(target)
    ready(channel)
    try:
        yield Server(ledger, thread.port, target, channel, pb_grpc.AdminServiceStub(channel),
                     pb_grpc.CardServiceStub(channel), pb_grpc.PosServiceStub(channel),
                     pb_grpc.ProgramServiceStub(channel), pb_grpc.SettlementServiceStub(channel))
    finally:
        channel.close()
        thread.stop(grace_s=1.0, quiet_s=0)


def rid(prefix: str = "e2e") -> str:
    return f"{prefix}-{next(_ids)}"


class Status(NamedTuple):
    code: grpc.StatusCode
    details: str


def call(method: Any, request: Any, token: str | None) -> Any:
    """The reply of a unary RPC (raises grpc.RpcError on a gRPC status)."""
    return method(request, metadata=metadata(token), timeout=60)


def status_of(method: Any, request: Any, token: str | None) -> Status | None:
    """The gRPC status of a unary call that failed, or None when it returned a reply."""
    try:
        method(request, metadata=metadata(token), timeout=60)
    except grpc.RpcError as error:
        return Status(error.code(), error.details() or "")
    return None


def batch(server: Server, token: str | None, *messages: pb.BatchRequest) -> list[pb.BatchReply]:
    """Send `messages` on one Batch stream; the reply messages, in order."""
    return list(server.pos.Batch(iter(messages), metadata=metadata(token), timeout=120))


def batch_status(server: Server, token: str | None,
                 *messages: pb.BatchRequest) -> tuple[list[pb.BatchReply], Status | None]:
    replies: list[pb.BatchReply] = []
    try:
        for reply in server.pos.Batch(iter(messages), metadata=metadata(token), timeout=120):
            replies.append(reply)
    except grpc.RpcError as error:
        return replies, Status(error.code(), error.details() or "")
    return replies, None


class DbState(NamedTuple):
    """Everything a request can write: the log (events), request keys, the registry."""

    last_event: int
    request_keys: int
    registry_version: int


def request_key_count(ledger: Ledger) -> int:
    store = ledger.store
    if isinstance(store, SQLiteStore):
        with store.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT count(*) FROM {KEYS_TABLE}")
            return int(c.fetchone()[0])
    if store.split:  # every lane's key table (a reversal's tombstone is in each: counted once)
        pairs: set[tuple[str, str]] = set()
        for lane in store.lanes():
            part = store.lane_store(lane)  # type: ignore[attr-defined]
            with part.datastore.get_connection() as conn:
                pairs |= {(r["key_space"], r["request_id"]) for r in conn.execute(
                    f"SELECT key_space, request_id FROM {part.tables.keys}").fetchall()}
        return len(pairs)
    assert isinstance(store, PostgresStore)
    with store.datastore.get_connection() as conn:
        row = conn.execute(f"SELECT count(*) AS n FROM {KEYS_TABLE}").fetchone()
    assert row is not None
    return int(row["n"])


def db_state(ledger: Ledger) -> DbState:
    return DbState(ledger.store.max_notification_id(), request_key_count(ledger),
                   ledger.registry.version)


# ------------------------------------------------------------------------------ cards


def issue(server: Server, alliance: Alliance, seed: int, *, by: str = "s1_manager",
          store: str = "", activate: bool = True, load: int = 0,
          card_class: str = "STANDARD") -> str:
    """A card issued (and activated, and loaded) over gRPC; returns its number."""
    token = alliance.admin_token if by == "admin" else alliance.tokens[by]
    number = card_number(seed)
    reply = call(server.cards.IssueCard, pb.IssueCardRequest(
        request_id=rid("issue"), card_number=number, card_class=card_class, currency="USD",
        customer_ref=f"cust-{seed}", issuing_store_id=store), token)
    assert reply.result == R.APPROVED, reply
    if activate:
        reply = call(server.cards.ActivateCard, pb.CardActionRequest(
            request_id=rid("act"), card_number=number), token)
        assert reply.result == R.APPROVED, reply
    if load:
        loaded = call(server.cards.LoadValue, pb.LoadValueRequest(
            request_id=rid("load"), card_number=number, amount_minor=load, currency="USD",
            payment_ref="pay"), alliance.admin_token)
        assert loaded.result == R.APPROVED, loaded
    return number


def authorize(server: Server, token: str, number: str, amount: int,
              request_id: str | None = None) -> pb.AuthorizeReply:
    reply = call(server.pos.Authorize, pb.AuthorizeRequest(
        request_id=request_id or rid("auth"), card_number=number, amount_minor=amount,
        currency="USD"), token)
    assert reply.result == R.APPROVED, reply
    return reply


def get_card(server: Server, alliance: Alliance, number: str) -> pb.CardReply:
    return call(server.cards.GetCard, pb.GetCardRequest(card_number=number),
                alliance.admin_token)


def version(server: Server, alliance: Alliance, number: str) -> int:
    reply = get_card(server, alliance, number)
    assert reply.result == R.APPROVED, reply
    return int(reply.card.version)


def balance(server: Server, alliance: Alliance, number: str) -> pb.BalanceReply:
    return call(server.pos.GetBalance, pb.GetBalanceRequest(card_number=number),
                alliance.admin_token)


def all_movements(server: Server, token: str, number: str) -> list[pb.Movement]:
    reply = call(server.cards.ListMovements,
                 pb.ListMovementsRequest(card_number=number, limit=1000), token)
    return list(reply.movements)


# ------------------------------------------------------------------------------ the alliance


def _setup_call(admin: pb_grpc.AdminServiceStub, command: Any) -> tuple[Any, Any]:
    if isinstance(command, rc.RegisterPartner):
        return admin.RegisterPartner, pb.RegisterPartnerRequest(
            partner_id=command.partner_id, name=command.name, currency=command.currency)
    if isinstance(command, rc.RegisterStore):
        return admin.RegisterStore, pb.RegisterStoreRequest(
            partner_id=command.partner_id, store_id=command.store_id, name=command.name,
            timezone=command.timezone)
    assert isinstance(command, rc.RegisterTerminal), command
    return admin.RegisterTerminal, pb.RegisterTerminalRequest(
        store_id=command.store_id, terminal_id=command.terminal_id)


def register_alliance(channel: grpc.Channel, admin_token: str,
                      names: tuple[str, ...] = tuple(PRINCIPALS)
                      ) -> tuple[dict[str, str], dict[str, str]]:
    """The test alliance (tests/support/alliance.py's SETUP and PRINCIPALS, those in `names`)
    registered over gRPC, for servers in other processes; (tokens, credential ids) by name,
    the admin's token under "admin"."""
    admin = pb_grpc.AdminServiceStub(channel)
    for command in SETUP:
        method, request = _setup_call(admin, command)
        request.request_id = rid("setup")
        assert call(method, request, admin_token).result == R.APPROVED
    tokens, ids = {"admin": admin_token}, {}
    for name in names:
        p = PRINCIPALS[name]
        principal = pb.Principal(role=int(p.role), partner_id=p.partner_id,
                                 store_id=p.store_id, terminal_id=p.terminal_id)
        reply = call(admin.CreateCredential, pb.CreateCredentialRequest(
            request_id=rid("cred"), principal=principal, label=name), admin_token)
        assert reply.result == R.APPROVED, reply
        tokens[name], ids[name] = reply.token, reply.credential_id
    return tokens, ids
