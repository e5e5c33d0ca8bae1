"""Durability: a real `loyalty-ledger serve` process on PostgreSQL, killed with SIGKILL in the
middle of a POS load, restarted, and every request retried with its request id.

What must hold afterwards:
- every reply the clients received (acknowledged) comes back replayed, unchanged;
- nothing is applied twice: each request id appears at most once in a card's movements;
- for each card, the balance and the held value equal the sums of its movements and an oracle
  computed from the replies (the acknowledged ones, then the retries' for the others).
"""

from __future__ import annotations

import random
import re
import subprocess
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger import limits
from ledger.ownership import partition_of_card
from tests.support.alliance import card_number
from tests.support.databases import empty_postgres, owned_partitions
from tests.support.processes import ROOT, ServerProcess, cli, env
from tests.support.rpc import metadata as md

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

USD = "USD"
WORKERS = 8
OPS_PER_WORKER = 150
KILL_AFTER_ACKS = WORKERS * OPS_PER_WORKER * 2 // 5
CARDS = 6
INITIAL_LOAD = 40_000
RPC_TIMEOUT_S = 15.0


@dataclass
class Op:
    """One request a terminal sends, and the replies it got."""

    worker: int
    kind: str  # "authorize", "load" or "purchase"
    request: Any
    card: str
    acked: Any = None  # the reply received before the crash, if any
    final: Any = None  # the reply the oracle uses
    retries: list[Any] = field(default_factory=list)

    def send(self, stubs: dict[str, Any], token: str) -> Any:
        method = {"authorize": stubs["pos"].Authorize, "load": stubs["cards"].LoadValue,
                  "purchase": stubs["pos"].Purchase}[self.kind]
        return method(self.request, metadata=md(token), timeout=RPC_TIMEOUT_S)


def _setup(server: ServerProcess, admin_token: str, numbers: list[str] | None = None
           ) -> tuple[dict[int, str], list[str]]:
    admin = server.stub(pb_grpc.AdminServiceStub)
    cards = server.stub(pb_grpc.CardServiceStub)
    R = pb.Result
    assert admin.RegisterPartner(pb.RegisterPartnerRequest(
        request_id="p1", partner_id="P1", name="Retail", currency=USD),
        metadata=md(admin_token)).result == R.APPROVED
    assert admin.RegisterStore(pb.RegisterStoreRequest(
        request_id="s1", partner_id="P1", store_id="S1", name="Flagship",
        timezone="Asia/Shanghai"), metadata=md(admin_token)).result == R.APPROVED
    programs = server.stub(pb_grpc.ProgramServiceStub)
    assert programs.DefineProgram(pb.DefineProgramRequest(
        request_id="program", owner="P1", currency=USD, point_value_micros=1_000_000,
        timezone="UTC"), metadata=md(admin_token)).result == R.APPROVED
    assert programs.PublishRuleSet(pb.PublishRuleSetRequest(request_id="rules", rule_set=pb.RuleSet(
        rule_set_id="base", version=1, scope="partner:P1", rules=[
            pb.Rule(rule_id="earn", effect=pb.EARN, rate_num=1, rate_den=100)])),
        metadata=md(admin_token)).result == R.APPROVED
    tokens: dict[int, str] = {}
    for w in range(WORKERS):
        assert admin.RegisterTerminal(pb.RegisterTerminalRequest(
            request_id=f"t{w}", store_id="S1", terminal_id=f"T{w}"),
            metadata=md(admin_token)).result == R.APPROVED
        reply = admin.CreateCredential(pb.CreateCredentialRequest(
            request_id=f"cred-t{w}", label=f"terminal {w}", principal=pb.Principal(
                role=pb.TERMINAL, partner_id="P1", store_id="S1", terminal_id=f"T{w}")),
            metadata=md(admin_token))
        assert reply.result == R.APPROVED and reply.token
        tokens[w] = reply.token
    if numbers is None:
        numbers = [card_number(700_000 + i) for i in range(CARDS)]
    for i, number in enumerate(numbers):
        issued = cards.IssueCard(pb.IssueCardRequest(
            request_id=f"issue-{i}", card_number=number, card_class="STANDARD", currency=USD,
            issuing_store_id="S1"), metadata=md(admin_token))
        assert issued.result == R.APPROVED
        assert cards.ActivateCard(pb.CardActionRequest(request_id=f"activate-{i}",
                                                       card_number=number),
                                  metadata=md(admin_token)).result == R.APPROVED
        loaded = cards.LoadValue(pb.LoadValueRequest(
            request_id=f"initial-{i}", card_number=number, amount_minor=INITIAL_LOAD,
            currency=USD, payment_ref="initial"), metadata=md(tokens[0]))
        assert loaded.result == R.APPROVED and loaded.balance_minor == INITIAL_LOAD
    return tokens, numbers


def _plan(numbers: list[str]) -> list[list[Op]]:
    rng = random.Random(20240611)
    plans: list[list[Op]] = []
    for w in range(WORKERS):
        ops: list[Op] = []
        for i in range(OPS_PER_WORKER):
            number = rng.choice(numbers)
            request_id = f"w{w}-op{i}"
            draw = rng.random()
            if draw < 0.2:
                price = rng.randint(100, 3_000)
                request = pb.PurchaseRequest(
                    request_id=request_id, card_number=number, currency=USD,
                    lines=[pb.PurchaseLine(sku="sku-1", category="general", quantity=1,
                                           unit_price_minor=price)],
                    stored_value_minor=price, receipt_ref=f"r-{w}-{i}")
                ops.append(Op(w, "purchase", request, number))
            elif draw < 0.7:
                request = pb.AuthorizeRequest(
                    request_id=request_id, card_number=number,
                    amount_minor=rng.randint(100, 3_000), currency=USD,
                    allow_partial=rng.random() < 0.3, stan=f"{i:06d}")
                ops.append(Op(w, "authorize", request, number))
            else:
                request = pb.LoadValueRequest(
                    request_id=request_id, card_number=number,
                    amount_minor=rng.randint(500, 5_000), currency=USD,
                    payment_ref=f"pay-{w}-{i}")
                ops.append(Op(w, "load", request, number))
        plans.append(ops)
    return plans


def _approved(op: Op, reply: Any) -> int:
    """The amount a reply says was applied to the card (held, loaded or spent)."""
    if reply.result not in (pb.APPROVED, pb.PARTIALLY_APPROVED):
        return 0
    if op.kind == "purchase":
        return int(reply.stored_value_charged_minor)
    return int(reply.approved_amount_minor if op.kind == "authorize"
               else op.request.amount_minor)


def _movements(cards: Any, token: str, number: str) -> list[Any]:
    found: list[Any] = []
    after = 0
    while True:
        page = cards.ListMovements(pb.ListMovementsRequest(card_number=number,
                                                           after_version=after, limit=1000),
                                   metadata=md(token), timeout=RPC_TIMEOUT_S).movements
        if not page:
            return found
        found += list(page)
        after = page[-1].version


def _same_reply(a: Any, b: Any) -> bool:
    a2, b2 = type(a)(), type(b)()
    a2.CopyFrom(a)
    b2.CopyFrom(b)
    a2.replayed = b2.replayed = False
    return a2 == b2


def _init(url: str) -> str:
    empty_postgres(url)
    init = subprocess.run(cli("init", "--database", url), cwd=ROOT, env=env(),
                          capture_output=True, text=True, timeout=120)
    assert init.returncode == 0, init.stderr
    admin_token = init.stdout.strip().splitlines()[-1]
    assert admin_token.startswith("llk_")
    return admin_token


def _drive_and_kill(plans: list[list[Op]], server: ServerProcess, tokens: dict[int, str],
                    kill: ServerProcess) -> list[Op]:
    """Every terminal sends its plan through `server`; `kill` gets SIGKILL once
    KILL_AFTER_ACKS replies have come back. Returns every op (acknowledged or not)."""
    stubs = {"pos": server.stub(pb_grpc.PosServiceStub),
             "cards": server.stub(pb_grpc.CardServiceStub)}
    acks = threading.Condition()
    acked = [0]
    failures: list[BaseException] = []

    def drive(w: int) -> None:
        try:
            for op in plans[w]:
                try:
                    reply = op.send(stubs, tokens[w])
                except grpc.RpcError:
                    return  # this one and the rest are unacknowledged
                op.acked = reply
                with acks:
                    acked[0] += 1
                    acks.notify_all()
        except BaseException as error:
            failures.append(error)

    workers = [threading.Thread(target=drive, args=(w,)) for w in range(WORKERS)]
    for worker in workers:
        worker.start()
    with acks:
        reached = acks.wait_for(lambda: acked[0] >= KILL_AFTER_ACKS, timeout=300)
    assert reached, f"only {acked[0]} replies before the time limit"
    kill.kill(close_channel=False)  # calls through it now fail
    for worker in workers:
        worker.join(120)
    assert not failures, failures
    all_ops = [op for ops in plans for op in ops]
    for op in all_ops:
        if op.acked is not None:
            # a first reply is a replay only where a killed owner had committed the request
            assert not op.acked.replayed or kill is not server, op.acked
            assert op.acked.result in (pb.APPROVED, pb.PARTIALLY_APPROVED,
                                       pb.DECLINED_INSUFFICIENT_FUNDS), op.acked
    return all_ops


def _retry_and_check(all_ops: list[Op], numbers: list[str], tokens: dict[int, str],
                     server: ServerProcess, admin_token: str) -> None:
    """Retry every request through `server`: the acknowledged ones replay unchanged; then
    each card's figures equal the oracle built from the replies, and its movements name each
    request id once."""
    stubs = {"pos": server.stub(pb_grpc.PosServiceStub),
             "cards": server.stub(pb_grpc.CardServiceStub)}
    # Retry every request, acknowledged or not, in each terminal's order.
    for op in all_ops:
        reply = op.send(stubs, tokens[op.worker])
        op.retries.append(reply)
        if op.acked is not None:
            assert reply.replayed, (op.request, reply)
            assert _same_reply(reply, op.acked), (op.acked, reply)
            op.final = op.acked
        else:
            op.final = reply  # decided now, or replayed if it committed before the kill
    # a second round: everything is known now and replays exactly
    for op in all_ops:
        reply = op.send(stubs, tokens[op.worker])
        assert reply.replayed and _same_reply(reply, op.final), (op.final, reply)

    # the oracle: the initial load, then what the replies say was applied
    balance = {n: INITIAL_LOAD for n in numbers}
    held = dict.fromkeys(numbers, 0)
    points = dict.fromkeys(numbers, 0)
    applied: dict[str, set[str]] = defaultdict(set)
    for op in all_ops:
        amount = _approved(op, op.final)
        if op.kind == "load":
            balance[op.card] += amount
        elif op.kind == "purchase":
            balance[op.card] -= amount
            if amount:
                points[op.card] += op.final.points_earned
        else:
            held[op.card] += amount
        if amount:
            applied[op.card].add(op.request.request_id)

    pos = server.stub(pb_grpc.PosServiceStub)
    cards = server.stub(pb_grpc.CardServiceStub)
    for number in numbers:
        now = pos.GetBalance(pb.GetBalanceRequest(card_number=number),
                             metadata=md(admin_token), timeout=RPC_TIMEOUT_S)
        assert (now.balance_minor, now.held_minor) == (balance[number], held[number]), number
        assert now.points == points[number], number  # earned once per applied purchase
        assert now.available_minor == now.balance_minor - now.held_minor >= 0
        history = _movements(cards, admin_token, number)
        assert [m.version for m in history] == list(range(1, len(history) + 1))
        loaded = sum(m.amount_minor for m in history if m.kind == "LOADED")
        authorized = sum(m.amount_minor for m in history if m.kind == "AUTHORIZED")
        spent = sum(m.amount_minor for m in history if m.kind == "PURCHASE")
        assert not {m.kind for m in history} - {"ISSUED", "ACTIVATED", "LOADED",
                                                 "AUTHORIZED", "PURCHASE"}
        assert (loaded - spent, authorized) == (now.balance_minor, now.held_minor)
        assert (history[-1].balance_minor, history[-1].held_minor) == (
            now.balance_minor, now.held_minor)
        ids = [m.request_id for m in history
               if m.kind in ("LOADED", "AUTHORIZED", "PURCHASE")]
        assert len(ids) == len(set(ids)), "a request was applied twice"
        assert set(ids) - {f"initial-{numbers.index(number)}"} == applied[number]


def test_kill_minus_nine_mid_load_then_retry_everything(pg_server_url):
    url = pg_server_url
    admin_token = _init(url)
    server = ServerProcess(url)
    restarted: ServerProcess | None = None
    try:
        tokens, numbers = _setup(server, admin_token)
        all_ops = _drive_and_kill(_plan(numbers), server, tokens, kill=server)
        server.channel.close()
        acknowledged = [op for op in all_ops if op.acked is not None]
        assert KILL_AFTER_ACKS <= len(acknowledged) < len(all_ops)
        restarted = ServerProcess(url)
        _retry_and_check(all_ops, numbers, tokens, restarted, admin_token)
    finally:
        server.kill()
        if restarted is not None:
            restarted.stop()


def test_kill_minus_nine_of_a_partition_owner_mid_load(pg_server_url):
    """Two workers own half of the card partitions each (`serve --workers 2` runs them so);
    the terminals reach worker B only, which sends the requests for A's cards to A. A is
    killed with SIGKILL mid-load: what B had sent A and not heard back, B decides itself (a
    replay where A had committed); B takes A's partitions over within seconds; every reply
    the terminals got is durable and every request applied once."""
    url = pg_server_url
    admin_token = _init(url)
    a = ServerProcess(url, "--worker", "0/2", "--no-projector")
    b = ServerProcess(url, "--worker", "1/2", "--no-projector")
    try:
        until_s = time.monotonic() + 30
        while (owned_partitions(url, a.proc.pid), owned_partitions(url, b.proc.pid)) != (
                limits.PARTITIONS // 2, limits.PARTITIONS // 2):
            assert time.monotonic() < until_s, "the workers never held half each"
            time.sleep(0.1)
        pool = [card_number(700_000 + i) for i in range(64)]
        of_a = [n for n in pool if partition_of_card(n, limits.PARTITIONS) % 2 == 0]
        of_b = [n for n in pool if partition_of_card(n, limits.PARTITIONS) % 2 == 1]
        numbers = of_a[:CARDS // 2] + of_b[:CARDS - CARDS // 2]
        tokens, numbers = _setup(b, admin_token, numbers)
        all_ops = _drive_and_kill(_plan(numbers), b, tokens, kill=a)
        # B kept answering: only calls that failed on their own are unacknowledged
        acknowledged = [op for op in all_ops if op.acked is not None]
        assert len(acknowledged) == len(all_ops), [op.request for op in all_ops
                                                   if op.acked is None][:5]
        until_s = time.monotonic() + 30
        while owned_partitions(url, b.proc.pid) != limits.PARTITIONS:
            assert time.monotonic() < until_s, "B never took A's partitions over"
            time.sleep(0.1)
        _retry_and_check(all_ops, numbers, tokens, b, admin_token)
    finally:
        a.kill()
        b.stop()
    forwarded = [int(m.group(1)) for line in b.output
                 if (m := re.search(r"(\d+) forwarded to partition owners", line))]
    assert forwarded and forwarded[0] > 0, b.output[-3:]  # A's cards went to A before


def test_the_read_model_follower_ends_with_a_killed_server(pg_server_url):
    """`serve` starts `project`; kill -9 of the server leaves no time to stop it, and an
    orphan follower would go on moving the read models' positions: it ends by itself."""
    import signal
    import time
    from pathlib import Path

    url = empty_postgres(pg_server_url)
    subprocess.run(cli("init", "--database", url), cwd=ROOT, env=env(), check=True,
                   capture_output=True)
    server = ServerProcess(url)

    def children() -> list[int]:
        found = []
        for task in Path(f"/proc/{server.proc.pid}/task").iterdir():
            found += [int(pid) for pid in (task / "children").read_text().split()]
        return found

    followers = [pid for pid in children()
                 if b"project" in Path(f"/proc/{pid}/cmdline").read_bytes()]
    assert len(followers) == 1, children()
    # the follower runs below the server's CPU priority (limits.PROJECTOR_NICE): its nice
    # value, stat field 19, once its os.nice has run (it does so before opening the store)
    nice_of = lambda pid: int(  # noqa: E731
        Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[16])
    deadline = time.monotonic() + 30
    while nice_of(followers[0]) == nice_of(server.proc.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert nice_of(followers[0]) - nice_of(server.proc.pid) == limits.PROJECTOR_NICE
    server.proc.send_signal(signal.SIGKILL)
    server.proc.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and Path(f"/proc/{followers[0]}").exists():
        status = Path(f"/proc/{followers[0]}/stat").read_text().split()[2]
        if status == "Z":  # ended; a zombie until init reaps it
            break
        time.sleep(0.2)
    alive = Path(f"/proc/{followers[0]}").exists() and \
        Path(f"/proc/{followers[0]}/stat").read_text().split()[2] != "Z"
    assert not alive, "the follower outlived its server"
