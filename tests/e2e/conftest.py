"""End-to-end fixtures: a real gRPC server (grpc_api.server.ServerThread) on the `ledger`
fixture, on both backends, and client stubs over a real channel to it."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
import pytest

from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.engine import Ledger
from tests.e2e.support import Server


@pytest.fixture
def server(ledger: Ledger) -> Iterator[Server]:
    thread = ServerThread(ledger).start()
    target = f"127.0.0.1:{thread.port}"
    channel = grpc.insecure_channel(target)
    grpc.channel_ready_future(channel).result(timeout=30)
    try:
        yield Server(ledger, thread.port, target, channel, pb_grpc.AdminServiceStub(channel),
                     pb_grpc.CardServiceStub(channel), pb_grpc.PosServiceStub(channel),
                     pb_grpc.ProgramServiceStub(channel))
    finally:
        channel.close()
        thread.stop(grace_s=1.0)
