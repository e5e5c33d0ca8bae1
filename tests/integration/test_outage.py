"""A database outage, on PostgreSQL, through a TCP proxy the test can cut: requests fail with
UNAVAILABLE and nothing is half-applied; when the database is back the same server recovers by
itself, a refused request sent again is applied once, and a commit whose outcome the client
never learned is, on retry, either applied then or replayed, never doubled."""

from __future__ import annotations

import contextlib
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.common import Result
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.codec import card_stream_id, decode_event
from ledger.engine import Failure, Ledger, Refusal
from ledger.store import EventStore, Unavailable, open_store
from tests.support.alliance import (
    Alliance,
    build_alliance,
    new_card,
    ok,
    started_ledger,
    wait_until,
)
from tests.support.databases import empty_postgres

USD = "USD"


class Proxy:
    """Forwards TCP connections to the database; `cut()` drops every connection and refuses
    new ones until `restore()`."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.up = threading.Event()
        self.up.set()
        self.lock = threading.Lock()
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if not self.up.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for s in (source, sink):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        self.up.clear()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()
            self.sockets.clear()

    def restore(self) -> None:
        self.up.set()

    def close(self) -> None:
        self.cut()
        self.listener.close()


@pytest.fixture
def proxied(pg_server_url: str) -> Iterator[tuple[Proxy, EventStore]]:
    url = empty_postgres(pg_server_url)
    parts = urllib.parse.urlsplit(url)
    open_store(url).create_schema()
    proxy = Proxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    store = open_store(urllib.parse.urlunsplit(
        parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{proxy.port}")))
    yield proxy, store
    store.close()
    proxy.close()


@pytest.fixture
def engine(proxied: tuple[Proxy, EventStore]) -> Iterator[Ledger]:
    with started_ledger(proxied[1]) as ledger:
        yield ledger


@pytest.fixture
def members(engine: Ledger) -> Alliance:
    return build_alliance(engine, engine.admin_token)  # type: ignore[attr-defined]






def held_in_database(url_store: EventStore, number: str) -> int:
    """Held value folded from the card's events as stored (not the engine's cache)."""
    events = [decode_event(e.state) for e in url_store.stream(card_stream_id(number))]
    state = cards.fold(events, None)  # type: ignore[arg-type]
    assert state is not None
    return state.held_minor


def test_an_outage_is_unavailable_then_the_server_recovers_by_itself(engine, members,
                                                                     proxied, pg_server_url):
    proxy, _ = proxied
    number = new_card(engine, members, load=1_000)
    server = ServerThread(engine).start()
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    pos = pb_grpc.PosServiceStub(channel)
    md = (("authorization", f"Bearer {members.tokens['t1']}"),)
    request = pb.AuthorizeRequest(request_id="during-outage", card_number=number,
                                  amount_minor=300, currency=USD)
    direct = open_store(pg_server_url)
    try:
        proxy.cut()
        with pytest.raises(grpc.RpcError) as refused:
            pos.Authorize(request, metadata=md, timeout=60)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert held_in_database(direct, number) == 0  # nothing written
        proxy.restore()

        def answered() -> bool:
            try:
                return pos.Authorize(request, metadata=md, timeout=60) is not None
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAVAILABLE, error
                return False

        wait_until(answered)  # same server, no restart
        again = pos.Authorize(request, metadata=md, timeout=60)
        assert again.result == pb.APPROVED and again.replayed  # applied once, then replayed
        assert held_in_database(direct, number) == 300
    finally:
        direct.close()
        channel.close()
        server.stop(grace_s=1.0, quiet_s=0)


def test_a_connection_lost_during_commit_never_doubles(engine, members, proxied, pg_server_url,
                                                       monkeypatch):
    proxy, store = proxied
    number = new_card(engine, members, load=1_000)
    real = store.append
    cut_once = threading.Event()

    def append_then_cut(events: Any, keys: Any, snapshots: Any = ()) -> Any:
        """Commit, then lose the connection before the reply: the caller hears UNAVAILABLE
        although the commit happened (the ambiguous case)."""
        ids = real(events, keys, snapshots)
        if not cut_once.is_set() and events:
            cut_once.set()
            proxy.cut()
            raise Unavailable("connection lost after COMMIT was sent")
        return ids

    monkeypatch.setattr(store, "append", append_then_cut)
    first = engine.call(members.t1, cc.Authorize(number, 400, USD, False, ""),
                        request_id="ambiguous-1", terminal_id="")
    assert isinstance(first, Failure) and first.code == Refusal.DATABASE_DOWN
    proxy.restore()
    direct = open_store(pg_server_url)
    try:
        def retried() -> Any:
            reply = engine.call(members.t1, cc.Authorize(number, 400, USD, False, ""),
                                request_id="ambiguous-1", terminal_id="")
            return reply if not isinstance(reply, Failure) else None

        replies: list[Any] = []
        wait_until(lambda: bool(replies.append(retried()) or replies[-1] is not None))
        reply = ok(replies[-1])
        assert reply.result == Result.APPROVED and reply.replayed  # the commit had happened
        assert held_in_database(direct, number) == 400  # once, not twice
        assert ok(engine.call(members.admin, cc.GetBalance(number))).card.held_minor == 400  # type: ignore[union-attr]
    finally:
        direct.close()
