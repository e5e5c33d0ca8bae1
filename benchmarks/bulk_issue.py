"""Bulk issuance (issue 12): cards issued per second three ways, in one run on one database:

- the import command's path, in process (`loyalty-ledger import-cards`: a card file parsed,
  checked and issued through the writer in chunks; `--load-every K` gives every K-th line an
  initial load, as a second request after its issue);
- IssueCard operations in gRPC Batch messages (1,000 per message, `--streams` streams at once)
  to a `loyalty-ledger serve` process;
- unary IssueCard to the same server, `--concurrency` calls in flight (the baseline).

    .venv/bin/python -m benchmarks.bulk_issue --database postgresql://postgres@127.0.0.1:5432/bulk_bench

The database is scratch: its ledger tables are dropped first (default: a temporary SQLite
file). Prints a table with each path's cards/s and its ratio to unary; the machine is noisy,
so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import queue
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import grpc

from benchmarks.busy_card import ROOT, _cli, _free_port, fresh_database
from domain.common import Principal, Role, luhn_complete
from domain.registry import commands as rc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger import limits
from ledger.card_import import collecting_less, import_cards
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.store import open_store, redact

CALL_TIMEOUT_S = 120.0  # a guard against a hang
BATCH_OPS = 1_000  # IssueCard operations per Batch message (the contract's maximum)


def _numbers(prefix: str, count: int) -> list[str]:
    return [luhn_complete(f"{prefix}{i:013d}") for i in range(count)]


def _setup(url: str) -> str:
    """A fresh ledger with one partner and store; the token of the store's manager."""
    fresh_database(url)
    store = open_store(url)
    store.create_schema()
    ledger = Ledger(store)
    admin_token = ledger.bootstrap_admin("bench")
    ledger.start()
    try:
        admin = ledger.authenticate(admin_token)
        assert admin is not None
        reply: Outcome | None = None
        for index, command in enumerate((
                rc.RegisterPartner("P1", "Bench", "USD"),
                rc.RegisterStore("P1", "S1", "Bench store", "UTC"),
                rc.CreateCredential(Principal(Role.STORE_MANAGER, "P1", "S1"), "issuer"))):
            answer = ledger.call(admin.credential_id, command, request_id=f"setup-{index}")
            assert isinstance(answer, Outcome) and answer.result == 1, answer
            reply = answer
        assert reply is not None
        return reply.token  # the last one: the store manager's
    finally:
        ledger.stop()
        store.close()


def measure_import(url: str, token: str, cards: int, load_every: int) -> float:
    """The import command's path (ledger/card_import.py) on a file of `cards` lines."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cards.csv"
        with path.open("w") as out:
            out.write("card_number,card_class,currency,customer_ref,amount_minor,payment_ref\n")
            for i, number in enumerate(_numbers("31", cards)):
                load = f"{1_000 + i % 97},psp-{i // 1_000}" if load_every and \
                    i % load_every == 0 else ","
                out.write(f"{number},STANDARD,USD,cust-{i},{load}\n")
        store = open_store(url)
        ledger = Ledger(store, card_cache_max=limits.IMPORT_CARD_CACHE_MAX).start()
        try:
            credential = ledger.authenticate(token)
            assert credential is not None
            with path.open(encoding="utf-8", newline="") as lines, collecting_less():
                start = time.perf_counter()
                summary = import_cards(ledger, credential.credential_id, lines, "S1")
                elapsed = time.perf_counter() - start
        finally:
            ledger.stop()
            store.close()
    assert summary.ok and summary.issued == cards, summary
    return cards / elapsed


class Server:
    """`loyalty-ledger serve` (one process, no projector, no expiry job) on the database."""

    def __init__(self, url: str) -> None:
        self.target = f"127.0.0.1:{_free_port()}"
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.process = subprocess.Popen(
            _cli("serve", "--database", url, "--listen", self.target, "--expire-every-s", "0",
                 "--no-projector"), cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        lines: queue.Queue[str] = queue.Queue()

        def relay() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.put(line)
            lines.put("")

        threading.Thread(target=relay, daemon=True).start()
        while True:
            line = lines.get(timeout=120)  # a guard against a hung start
            if not line:
                raise RuntimeError("the server exited before it was ready")
            if line.startswith("ready:"):
                return

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


def _issue_request(number: str, request_id: str) -> pb.IssueCardRequest:
    return pb.IssueCardRequest(request_id=request_id, card_number=number, card_class="STANDARD",
                               currency="USD", customer_ref="cust", issuing_store_id="S1")


def measure_batch(target: str, token: str, cards: int, streams: int) -> float:
    """IssueCard operations in Batch messages of BATCH_OPS, on `streams` streams at once."""
    numbers = _numbers("32", cards)
    messages = [pb.BatchRequest(operations=[
        pb.PosOperation(issue=_issue_request(n, f"batch-{n}"))
        for n in numbers[start:start + BATCH_OPS]]) for start in range(0, cards, BATCH_OPS)]
    shares = [messages[i::streams] for i in range(streams)]

    def stream(share: list[pb.BatchRequest]) -> int:
        with grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)]) as ch:
            replies = pb_grpc.PosServiceStub(ch).Batch(iter(share), metadata=_md(token),
                                                       timeout=CALL_TIMEOUT_S)
            approved = 0
            for reply in replies:
                approved += sum(1 for r in reply.replies if r.issue.result == pb.APPROVED)
            return approved

    with concurrent.futures.ThreadPoolExecutor(streams) as pool:
        start = time.perf_counter()
        approved = sum(pool.map(stream, shares))
        elapsed = time.perf_counter() - start
    assert approved == cards, f"{approved} of {cards} approved"
    return cards / elapsed


def measure_unary(target: str, token: str, cards: int, concurrency: int) -> float:
    """Unary IssueCard, `concurrency` calls in flight on one channel."""
    numbers = iter(_numbers("33", cards))
    lock = threading.Lock()
    with grpc.insecure_channel(target) as channel:
        stub = pb_grpc.CardServiceStub(channel)

        def caller(_: int) -> int:
            approved = 0
            while True:
                with lock:
                    number = next(numbers, None)
                if number is None:
                    return approved
                reply = stub.IssueCard(_issue_request(number, f"unary-{number}"),
                                       metadata=_md(token), timeout=CALL_TIMEOUT_S)
                approved += reply.result == pb.APPROVED

        with concurrent.futures.ThreadPoolExecutor(concurrency) as pool:
            start = time.perf_counter()
            approved = sum(pool.map(caller, range(concurrency)))
            elapsed = time.perf_counter() - start
    assert approved == cards, f"{approved} of {cards} approved"
    return cards / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", default="", help="PostgreSQL URL of a scratch database "
                        "(its ledger tables are dropped); default: a temporary SQLite file")
    parser.add_argument("--cards", type=int, default=50_000, help="cards imported")
    parser.add_argument("--load-every", type=int, default=0,
                        help="give every K-th line of the file an initial load (0 = none)")
    parser.add_argument("--batch-cards", type=int, default=20_000,
                        help="cards issued through Batch")
    parser.add_argument("--streams", type=int, default=4, help="Batch streams at once")
    parser.add_argument("--unary-cards", type=int, default=3_000,
                        help="cards issued by unary IssueCard")
    parser.add_argument("--concurrency", type=int, default=16, help="unary calls in flight")
    ns = parser.parse_args()
    url = ns.database or f"sqlite:///{tempfile.mkdtemp()}/bulk.db"
    token = _setup(url)
    loads = f" (load every {ns.load_every})" if ns.load_every else ""
    results = [(f"import-cards, in process{loads}", ns.cards,
                measure_import(url, token, ns.cards, ns.load_every))]
    server = Server(url)
    try:
        results.append((f"gRPC Batch x{BATCH_OPS}, {ns.streams} streams", ns.batch_cards,
                        measure_batch(server.target, token, ns.batch_cards, ns.streams)))
        results.append((f"gRPC unary IssueCard, {ns.concurrency} in flight", ns.unary_cards,
                        measure_unary(server.target, token, ns.unary_cards, ns.concurrency)))
    finally:
        server.stop()
    unary = results[-1][2]
    print(f"bulk issuance on {redact(url) if ns.database else 'a temporary SQLite file'}")
    print(f"{'path':<48} {'cards':>8} {'cards/s':>10} {'x unary':>8}")
    for name, cards, rate in results:
        print(f"{name:<48} {cards:>8,} {rate:>10,.0f} {rate / unary:>7.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
