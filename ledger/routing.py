"""Requests carried to the process that owns their card's partition, and the replies back
(issue 14).

Whichever process accepts a gRPC call submits its request to its own `Ledger`; when the
request names a card whose partition another live process owns (ledger/ownership.py), the
`Router` sends it there instead, over a local stream socket, and the owner's writer decides
it with every other request for its partitions: a busy card is decided by one process only,
never fought over by several. Requests to one owner travel in batches (whatever is waiting
when the socket is free goes in one frame), encoded with msgspec (MessagePack); the replies
come back the same way and the caller's callback runs as if its own writer had answered.

A frame is a 4-byte big-endian length and a MessagePack array: `Forwarded` items one way,
`Returned` items the other. If the owner's socket cannot be reached or breaks, every request
sent to it and not answered is decided by the receiving process itself: the owner may have
committed some of them before it went, and those come back as replays of what it decided
(the request key is in the log), so nothing is lost and nothing applied twice.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import msgspec

from ledger import limits
from ledger.codec import Outcome
from ledger.handlers import HANDLERS, routed_by
from ledger.ownership import Ownership, partition_of_card
from ledger.refusals import Failure
from ledger.store import ConfigError
from ledger.work import Reply, Request

log = logging.getLogger("ledger.routing")

_HEADER = struct.Struct(">I")
FRAME_MAX = 64 * 1024 * 1024  # a frame longer than this is a broken peer, not a batch


def _command_union() -> Any:
    union: Any = None
    for command in HANDLERS:
        union = command if union is None else union | command
    return union


# Its `command` field is the tagged union of every command type (made at import: the handler
# table decides which types there are), hence a struct made at run time.
Forwarded: Any = msgspec.defstruct(
    "Forwarded", [("seq", int), ("credential_id", str), ("command", _command_union()),
                  ("request_id", str), ("terminal_id", str), ("timeout_s", float),
                  ("system", bool)], array_like=True, frozen=True)


class Returned(msgspec.Struct, array_like=True, frozen=True):
    seq: int
    outcome: Outcome | None = None
    failure: Failure | None = None


_encoder = msgspec.msgpack.Encoder()
_forwarded = msgspec.msgpack.Decoder(list[Forwarded])
_returned = msgspec.msgpack.Decoder(list[Returned])
_one = msgspec.msgpack.Decoder(Forwarded)


def encode_request(request: Request) -> bytes:
    """A request as bytes to keep (a saga: ledger/engine.py), in a forwarded frame's shape."""
    return _encoder.encode(Forwarded(0, request.credential_id, request.command,
                                     request.request_id, request.terminal_id, 0.0,
                                     request.system))


def decode_request(data: bytes) -> tuple[str, Any, str]:
    """(credential id, command, terminal id) of `encode_request`'s bytes."""
    kept = _one.decode(data)
    return kept.credential_id, kept.command, kept.terminal_id


def _frame(items: list[Any]) -> bytes:
    body = _encoder.encode(items)
    return _HEADER.pack(len(body)) + body


def _read_exact(sock: socket.socket, size: int) -> bytes:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            raise ConnectionError("peer closed the route")
        got += n
    return bytes(buffer)


def _read_frame(sock: socket.socket) -> bytes:
    (size,) = _HEADER.unpack(_read_exact(sock, _HEADER.size))
    if size > FRAME_MAX:
        raise ConnectionError(f"a route frame of {size} bytes")
    return _read_exact(sock, size)


def _drain(first: Any, waiting: queue.SimpleQueue[Any], most: int) -> list[Any]:
    items = [first]
    while len(items) < most:
        try:
            items.append(waiting.get_nowait())
        except queue.Empty:
            break
    return items


class _Peer:
    """The connection to one owner: a sender thread batching requests into frames, a
    receiver thread answering their callers."""

    def __init__(self, address: str, local: Callable[[Request], None]) -> None:
        self.address = address
        self._local = local
        self._seq = itertools.count(1)
        self._pending: dict[int, Request] = {}
        self._lock = threading.Lock()
        self._waiting: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._sock: socket.socket | None = None
        self.dead = False
        self.died_at = 0.0
        self.sent = 0
        self._sender = threading.Thread(target=self._send_loop, name=f"route-to-{address}",
                                        daemon=True)
        self._sender.start()

    def send(self, request: Request) -> bool:
        """Queue a request for the owner; False if this connection is gone (decide it
        locally)."""
        with self._lock:
            if self.dead:
                return False
            seq = next(self._seq)
            self._pending[seq] = request
        self._waiting.put(seq)
        return True

    def close(self, until: float) -> None:
        """Wait (until the monotonic time `until`) for the owner to answer what it was sent,
        then end the connection: what is still unanswered is decided here (`_lost`) before
        this returns."""
        while self._pending and not self.dead and time.monotonic() < until:
            time.sleep(0.01)
        self._waiting.put(None)
        self._sender.join(max(0.0, until - time.monotonic()) + 1.0)

    def _send_loop(self) -> None:
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(limits.ROUTE_CONNECT_TIMEOUT_S)
            sock.connect(_path(self.address))
            sock.settimeout(None)
            self._sock = sock
            threading.Thread(target=self._receive_loop, name=f"route-from-{self.address}",
                             daemon=True).start()
            while True:
                first = self._waiting.get()
                if first is None:
                    break
                seqs = _drain(first, self._waiting, limits.BATCH_MAX)
                if None in seqs:
                    break
                now = time.monotonic()
                with self._lock:
                    items = [Forwarded(seq, r.credential_id, r.command, r.request_id,
                                       r.terminal_id, r.deadline - now if
                                       math.isfinite(r.deadline) else math.inf, r.system)
                             for seq in seqs if (r := self._pending.get(seq)) is not None]
                sock.sendall(_frame(items))
                self.sent += len(items)
        except Exception as error:  # OSError, or anything unexpected: never leave it hanging
            self._lost(error)
            return
        self._lost(None)

    def _receive_loop(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            while True:
                for item in _returned.decode(_read_frame(sock)):
                    reply = item.failure if item.failure is not None else item.outcome
                    if reply is None:
                        raise ConnectionError(f"a reply to {item.seq} with nothing in it")
                    with self._lock:
                        request = self._pending.pop(item.seq, None)
                    if request is not None:
                        try:
                            request.callback(reply)
                        except Exception:  # the caller's problem, not the route's
                            log.exception("a routed request's callback failed")
        except Exception as error:  # OSError, DecodeError, a broken peer: decide them here
            self._lost(error)

    def _lost(self, error: BaseException | None) -> None:
        """Decide here every request the owner has not answered (a replay if it had)."""
        with self._lock:
            if self.dead:
                return
            self.dead = True
            self.died_at = time.monotonic()
            orphans = list(self._pending.values())
            self._pending.clear()
        if orphans:  # an owner that stops in order has answered everything first
            log.warning("route to %s lost (%s); %d requests it had not answered are decided "
                        "here", self.address, error, len(orphans))
        elif error is not None:
            log.info("route to %s closed (%s)", self.address, error)
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.shutdown(socket.SHUT_RDWR)
            self._sock.close()
        self._waiting.put(None)
        for request in orphans:
            self._local(request)


class Router:
    """Sends a request to its card's owner when that is another live process."""

    def __init__(self, ownership: Ownership, local: Callable[[Request], None]) -> None:
        self.ownership = ownership
        self._local = local
        self._peers: dict[str, _Peer] = {}
        self._lock = threading.Lock()
        self.forwarded = 0

    def forward(self, request: Request) -> bool:
        """True if the request went to its owner (its callback runs when the owner
        answers); False if this process should decide it."""
        count = self.ownership.count
        if not count or len(self.ownership.owned) == count:  # nobody else to route to
            return False
        number = routed_by(request.command)
        if not number:
            return False
        address = self.ownership.owner(partition_of_card(number, count))
        if address is None or address == self.ownership.address:
            return False
        peer = self._peers.get(address)
        if peer is None or peer.dead:
            with self._lock:
                peer = self._peers.get(address)
                if peer is not None and peer.dead and (
                        time.monotonic() - peer.died_at < limits.ROUTE_CONNECT_TIMEOUT_S):
                    return False  # it just went: decide here until the leases say more
                if peer is None or peer.dead:
                    peer = self._peers[address] = _Peer(address, self._local)
        if not peer.send(request):
            return False
        self.forwarded += 1
        return True

    def close(self, wait_s: float = limits.ROUTE_DRAIN_S) -> None:
        """Let the owners answer what they were sent (up to `wait_s`), then end the routes;
        what is unanswered by then is queued here. Call before stopping the ledger."""
        until = time.monotonic() + wait_s
        for peer in list(self._peers.values()):
            peer.close(until)


class _Connection(NamedTuple):
    sock: socket.socket
    replies: queue.SimpleQueue[Returned | None]
    out: threading.Thread  # the reply loop


class RouteListener:
    """The owner's side: requests from other processes go to this process's writer, and
    their replies back in frames."""

    def __init__(self, address: str, submit: Callable[[Request], None]) -> None:
        self.address = address
        self._submit = submit
        path = _path(address)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by a process that was killed
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._server.bind(path)
        os.chmod(path, 0o600)
        self._server.listen(64)
        self.received = 0
        self._closed = False
        self._connections: list[_Connection] = []
        threading.Thread(target=self._accept_loop, name="route-listener", daemon=True).start()

    def close(self, drain_s: float = limits.ROUTE_DRAIN_S) -> None:
        """Stop listening; send the replies already made (up to `drain_s`: after the ledger
        has stopped, that is every reply), then drop every connection (a sender decides what
        it had sent and not heard back)."""
        self._closed = True
        with contextlib.suppress(OSError):
            self._server.shutdown(socket.SHUT_RDWR)
        self._server.close()
        until = time.monotonic() + drain_s
        for connection in self._connections:
            connection.replies.put(None)  # its reply loop sends what is queued, then ends
        for connection in self._connections:
            connection.out.join(max(0.0, until - time.monotonic()))
            with contextlib.suppress(OSError):
                connection.sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            os.unlink(_path(self.address))

    def _accept_loop(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._server.accept()
            except OSError:
                return
            replies: queue.SimpleQueue[Returned | None] = queue.SimpleQueue()
            out = threading.Thread(target=self._reply_loop, args=(sock, replies),
                                   daemon=True, name="route-out")
            self._connections = [c for c in self._connections if c.out.is_alive()]
            self._connections.append(_Connection(sock, replies, out))
            threading.Thread(target=self._serve, args=(sock, replies), daemon=True,
                             name="route-in").start()
            out.start()

    def _serve(self, sock: socket.socket, replies: queue.SimpleQueue[Returned | None]) -> None:
        try:
            while True:
                items = _forwarded.decode(_read_frame(sock))
                now = time.monotonic()
                for item in items:
                    self.received += 1
                    self._submit(Request(
                        item.credential_id, item.command, _answer(replies, item.seq), "",
                        item.request_id, item.terminal_id, now + item.timeout_s, item.system))
        except (OSError, msgspec.DecodeError):
            pass
        except Exception:  # a broken frame: end this connection, keep the others
            log.exception("a route connection sent what could not be read")
        replies.put(None)

    @staticmethod
    def _reply_loop(sock: socket.socket, replies: queue.SimpleQueue[Returned | None]) -> None:
        try:
            while True:
                first = replies.get()
                if first is None:
                    break
                items = _drain(first, replies, limits.BATCH_MAX)
                done = None in items
                sock.sendall(_frame([item for item in items if item is not None]))
                if done:
                    break
        except OSError:
            pass
        with contextlib.suppress(OSError):
            sock.close()


def _answer(replies: queue.SimpleQueue[Returned | None], seq: int) -> Callable[[Reply], None]:
    def done(reply: Reply) -> None:
        if isinstance(reply, Failure):
            replies.put(Returned(seq, None, reply))
        else:
            replies.put(Returned(seq, reply, None))
    return done


def private_directory(path: str) -> str:
    """The directory of the route sockets, made private to this user (0700) or checked to be:
    an owner trusts the credential a forwarded request names, so nobody but the ledger's own
    processes may reach its socket."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    found = os.stat(path)
    if found.st_uid != os.getuid() or found.st_mode & 0o077:
        raise ConfigError(f"route socket directory {path} must belong to this user and be "
                          f"private to it (mode 0700; it is {found.st_mode & 0o777:o}, owner "
                          f"uid {found.st_uid})")
    return path


def _path(address: str) -> str:
    if not address.startswith("unix:"):
        raise ValueError(f"a route address is unix:PATH, not {address!r}")
    return address[len("unix:"):]
