"""`serve --workers 2` on PostgreSQL with card partitions (issue 14): each worker owns half
of the partitions; a worker killed with SIGKILL is replaced, the survivor holds its
partitions meanwhile and hands them back to the new worker, and requests are decided
throughout."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest

from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger import limits
from tests.support.alliance import card_number
from tests.support.databases import empty_postgres, owned_partitions
from tests.support.processes import run, worker_pids
from tests.support.processes import workers as serve_workers
from tests.support.rpc import metadata as md

pytestmark = [pytest.mark.postgres]

HALF = limits.PARTITIONS // 2
WAIT_S = 60.0  # a guard against a hung test, not a timing assertion


def until(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)


def halves(url: str, supervisor: int) -> list[int] | None:
    """The two workers' pids once each holds its half of the partitions."""
    pids = worker_pids(supervisor)
    if len(pids) == 2 and all(owned_partitions(url, pid) == HALF for pid in pids):
        return pids
    return None


def test_a_killed_worker_is_replaced_and_gets_its_partitions_back(pg_server_url):
    url = empty_postgres(pg_server_url)
    with serve_workers(url) as running:
        first = until(lambda: halves(url, running.process.pid), "two workers, half each")
        listed = run("partitions", "--database", url)
        assert listed.returncode == 0, listed.stderr
        lines = listed.stdout.strip().splitlines()
        assert lines[-1] == f"{limits.PARTITIONS} partitions, {limits.PARTITIONS} owned by 2 " \
            "processes; one log"
        assert sum(f"ledger-{first[0]}.sock" in line for line in lines) == HALF
        os.kill(first[0], signal.SIGKILL)
        survivor = first[1]
        # the survivor takes the dead worker's half over (LEASE_STARTUP_S after it started,
        # LEASE_TAKEOVER_S after the lease went), unless the new worker is quicker to take
        # its own; either way the pair ends with a new worker holding its half again
        after = until(lambda: (pids := halves(url, running.process.pid)) and first[0] not in pids
                      and pids, "a new worker holding its half")
        assert survivor in after
        channel = running.channel()
        admin = md(running.admin_token)
        registry = pb_grpc.AdminServiceStub(channel)
        assert registry.RegisterPartner(pb.RegisterPartnerRequest(
            request_id="p1", partner_id="P1", name="Retail", currency="USD"),
            metadata=admin, timeout=30).result == pb.APPROVED
        assert registry.RegisterStore(pb.RegisterStoreRequest(
            request_id="s1", partner_id="P1", store_id="S1", name="Flagship",
            timezone="UTC"), metadata=admin, timeout=30).result == pb.APPROVED
        cards = pb_grpc.CardServiceStub(channel)
        pos = pb_grpc.PosServiceStub(channel)
        for i in range(8):  # cards in both workers' partitions
            number = card_number(910_000 + i)
            assert cards.IssueCard(pb.IssueCardRequest(
                request_id=f"issue-{i}", card_number=number, card_class="STANDARD",
                currency="USD", issuing_store_id="S1"), metadata=admin,
                timeout=30).result == pb.APPROVED
            balance = pos.GetBalance(pb.GetBalanceRequest(card_number=number), metadata=admin,
                                     timeout=30)
            assert balance.balance_minor == 0
        channel.close()
    assert running.process.returncode == 0


def test_front_processes_route_every_card_to_its_owner(pg_server_url):
    """`serve --workers 2 --fronts 1`: the front terminates gRPC and owns nothing; the busy
    card's requests are decided by its owner wherever they arrive: every round decides every
    request and approves exactly what fits."""
    from benchmarks.busy_card import cluster, register, run_round

    url = empty_postgres(pg_server_url)
    with cluster(url, 2, "--fronts", "1") as running:
        until(lambda: halves(url, running.process.pid) is None
              and len(worker_pids(running.process.pid)) == 3
              and sorted(owned_partitions(url, pid) for pid in worker_pids(
                  running.process.pid)) == [0, HALF, HALF], "two owners and a front")
        alliance = register(running)
        for _ in range(3):
            done = run_round(running, alliance, "authorize", 20)
            assert done.ok, done.problems()
    lines = running.stopped
    assert len(lines) == 3, lines
    # the front owns nothing, so it decides no card request (the alliance's registration,
    # which names no card, is decided wherever it arrives, and may conflict as before)
    front = [line for line in lines if "received as owner of 0" in line]
    assert len(front) == 1, lines
