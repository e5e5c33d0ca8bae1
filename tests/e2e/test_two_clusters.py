"""Card partitions on two PostgreSQL servers (issue 14): the whole engine with `init --split
--place 8-15=...` putting partitions 0-7 beside the global tables on the first server (5432)
and 8-15 on the second (5433, the cluster `.ci/run` creates).

One story for the module: two `serve` processes, A (worker 0 of 2) and B (worker 1 of 2),
each owning half of the partitions on both servers; eight terminals of two partners send
loads, authorizations and captures for cards of both partners on both servers, all through
B, which forwards A's cards to A; A is killed with SIGKILL mid-load and B takes its
partitions over. Then every request is sent again. The tests read what that left:
- every call was answered, every retry replays its first reply (`replayed`, the same reply);
- each card's balance, holds and movements equal an oracle built from the replies;
- partition 8's events are in the second server's `ledger_p08.ledger_events` and nowhere on
  the first, and each card's events are on the server of its partition only;
- the finance read model (rebuilt by `loyalty-ledger project --rebuild finance`, read over
  gRPC and by `report liability`) has each issuer's stored value outstanding as the oracle;
- a settlement period closed over gRPC has the cross-partner spending of the cards of both
  servers in its statement (and `report statement` reads the same statement).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import psycopg
import pytest

from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger import limits
from ledger.codec import card_stream_id
from ledger.ownership import partition_of_card
from tests.support.alliance import card_number
from tests.support.databases import fresh_postgres, fresh_second_postgres, owned_partitions
from tests.support.processes import ServerProcess, run
from tests.support.rpc import metadata as md
from tests.support.rpc import register_alliance

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PARTITIONS = limits.PARTITIONS
FAR = range(8, 16)  # the partitions `--place` puts on the second server
USD = "USD"
STORES = {"P1": "S1", "P2": "A1"}
# The terminals: four of the retailer P1 at S1/S2, four of the airline P2 at A1. The first of
# each partner come from the test alliance (tests/support/alliance.py); the rest are added.
TERMINALS = [("P1", "S1", "T1", "t1"), ("P1", "S1", "T2", "t2"), ("P1", "S2", "T3", "t3"),
             ("P1", "S1", "T9", ""), ("P2", "A1", "TA1", "t_air"), ("P2", "A1", "TA2", ""),
             ("P2", "A1", "TA3", ""), ("P2", "A1", "TA4", "")]
INTENTS = 90  # per terminal: authorizations (most followed by their capture) and loads
KILL_AFTER_ACKS = len(TERMINALS) * INTENTS * 2 // 5
INITIAL_LOAD = 30_000
RPC_TIMEOUT_S = 15.0
WAIT_S = 60.0  # a guard against a hung test, not a timing assertion


def _until(condition: Any, what: str) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (value := condition()):
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.1)
    return value


def _far(number: str) -> bool:
    return partition_of_card(number, PARTITIONS) in FAR


def _cards() -> dict[str, str]:
    """Eight cards, number -> issuer: of each partner one in an even and one in an odd
    partition (A's and B's) on each server, one of P1's in partition 8."""
    wanted = [("P1", "far", 8)] + [(issuer, server, parity) for issuer in ("P1", "P2")
                                   for server in ("near", "far") for parity in (0, 1)
                                   if (issuer, server, parity) != ("P1", "far", 0)]
    found: dict[str, str] = {}
    seed = 730_000
    while wanted:
        number = card_number(seed)
        seed += 1
        p = partition_of_card(number, PARTITIONS)
        for want in wanted:
            issuer, server, which = want
            if ((server == "far") == (p in FAR)) and (p == which if which == 8
                                                       else p % 2 == which and p != 8):
                found[number] = issuer
                wanted.remove(want)
                break
    return found


@dataclass(eq=False)
class Op:
    """One request a terminal sends, and the replies it got."""

    worker: int
    kind: str  # "authorize", "capture" or "load"
    request: Any
    card: str
    capture: str = ""  # authorize: "" (left held), "whole" or "part" (captured next)
    hold: Op | None = None  # capture: its authorization
    acked: Any = None  # the reply received under load, if any
    retries: list[Any] = field(default_factory=list)

    @property
    def final(self) -> Any:
        """The reply the oracle uses: the first one, else the first retry's."""
        return self.acked if self.acked is not None else self.retries[0]

    def send(self, stubs: dict[str, Any], token: str) -> Any:
        method = {"authorize": stubs["pos"].Authorize, "capture": stubs["pos"].Capture,
                  "load": stubs["cards"].LoadValue}[self.kind]
        return method(self.request, metadata=md(token), timeout=RPC_TIMEOUT_S)


@dataclass
class World:
    near: str  # the global database, partitions 0-7
    far: str  # partitions 8-15
    server: ServerProcess  # B, the survivor
    killed_pid: int
    admin_token: str
    tokens: dict[str, str]
    cards: dict[str, str]  # number -> issuer
    sent: list[Op]  # every request sent, each terminal's in order
    acked_at_kill: int  # replies received when A was killed
    partitions_listed: str = ""


def _setup(server: ServerProcess, admin_token: str, cards: dict[str, str]) -> dict[str, str]:
    tokens, _ = register_alliance(server.channel, admin_token)
    admin = server.stub(pb_grpc.AdminServiceStub)
    card_service = server.stub(pb_grpc.CardServiceStub)
    for partner, store, terminal, name in TERMINALS:
        if name:
            continue
        assert admin.RegisterTerminal(pb.RegisterTerminalRequest(
            request_id=f"reg-{terminal}", store_id=store, terminal_id=terminal),
            metadata=md(admin_token)).result == pb.APPROVED
        reply = admin.CreateCredential(pb.CreateCredentialRequest(
            request_id=f"cred-{terminal}", label=terminal, principal=pb.Principal(
                role=pb.TERMINAL, partner_id=partner, store_id=store, terminal_id=terminal)),
            metadata=md(admin_token))
        assert reply.result == pb.APPROVED and reply.token
        tokens[terminal.lower()] = reply.token
    for i, (number, issuer) in enumerate(cards.items()):
        assert card_service.IssueCard(pb.IssueCardRequest(
            request_id=f"issue-{i}", card_number=number, card_class="STANDARD", currency=USD,
            issuing_store_id=STORES[issuer]), metadata=md(admin_token)).result == pb.APPROVED
        assert card_service.ActivateCard(pb.CardActionRequest(
            request_id=f"activate-{i}", card_number=number),
            metadata=md(admin_token)).result == pb.APPROVED
        loaded = card_service.LoadValue(pb.LoadValueRequest(
            request_id=f"initial-{i}", card_number=number, amount_minor=INITIAL_LOAD,
            currency=USD, payment_ref="initial"), metadata=md(admin_token))
        assert loaded.result == pb.APPROVED and loaded.balance_minor == INITIAL_LOAD
    return tokens


def _token(tokens: dict[str, str], w: int) -> str:
    name = TERMINALS[w][3] or TERMINALS[w][2].lower()
    return tokens[name]


def _plan(cards: dict[str, str]) -> list[list[Op]]:
    """Per terminal: authorizations of any card (three in four captured, whole or in part,
    right after their approval) and loads of its own partner's cards."""
    rng = random.Random(20261204)
    numbers = sorted(cards)
    plans: list[list[Op]] = []
    for w, (partner, _, _, _) in enumerate(TERMINALS):
        own = [n for n in numbers if cards[n] == partner]
        ops: list[Op] = []
        for i in range(INTENTS):
            request_id = f"w{w}-op{i}"
            if rng.random() < 0.65:
                number = rng.choice(numbers)
                ops.append(Op(w, "authorize", pb.AuthorizeRequest(
                    request_id=request_id, card_number=number,
                    amount_minor=rng.randint(100, 3_000), currency=USD,
                    allow_partial=rng.random() < 0.3, stan=f"{i:06d}"), number,
                    capture=rng.choice(("", "whole", "whole", "part"))))
            else:
                number = rng.choice(own)
                ops.append(Op(w, "load", pb.LoadValueRequest(
                    request_id=request_id, card_number=number,
                    amount_minor=rng.randint(500, 5_000), currency=USD,
                    payment_ref=f"pay-{w}-{i}"), number))
        plans.append(ops)
    return plans


def _approved(op: Op, reply: Any) -> int:
    """The amount a reply says was held, captured or loaded (0 when declined)."""
    if reply.result not in (pb.APPROVED, pb.PARTIALLY_APPROVED):
        return 0
    if op.kind == "load":
        return int(op.request.amount_minor)
    return int(reply.approved_amount_minor)  # Authorize and Capture reply an AuthorizeReply


def _capture_of(op: Op) -> Op | None:
    """The capture that follows an acknowledged, approved authorization the plan captures."""
    held = _approved(op, op.acked)
    if op.kind != "authorize" or not op.capture or held <= 0:
        return None
    amount = 0 if op.capture == "whole" else max(1, held * 3 // 4)  # 0: the whole hold
    return Op(op.worker, "capture", pb.CaptureRequest(
        request_id=op.request.request_id + "-capture",
        authorization_id=op.final.authorization_id, amount_minor=amount), op.card, hold=op)


def _drive_and_kill(plans: list[list[Op]], server: ServerProcess, tokens: dict[str, str],
                    kill: ServerProcess) -> tuple[list[list[Op]], int]:
    """Every terminal sends its plan through `server`; `kill` gets SIGKILL once
    KILL_AFTER_ACKS replies have come back. Returns what each terminal sent, in order, and
    how many replies had come back when the kill was done."""
    stubs = {"pos": server.stub(pb_grpc.PosServiceStub),
             "cards": server.stub(pb_grpc.CardServiceStub)}
    sent: list[list[Op]] = [[] for _ in plans]
    acks = threading.Condition()
    acked = [0]
    failures: list[BaseException] = []

    def send(op: Op) -> bool:
        sent[op.worker].append(op)
        try:
            op.acked = op.send(stubs, _token(tokens, op.worker))
        except grpc.RpcError:
            return False
        with acks:
            acked[0] += 1
            acks.notify_all()
        return True

    def drive(w: int) -> None:
        try:
            for op in plans[w]:
                if not send(op):
                    return  # this one and the rest are unacknowledged
                capture = _capture_of(op)
                if capture is not None and not send(capture):
                    return
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=drive, args=(w,)) for w in range(len(plans))]
    for thread in threads:
        thread.start()
    with acks:
        reached = acks.wait_for(lambda: acked[0] >= KILL_AFTER_ACKS, timeout=300)
        at_kill = acked[0]
    assert reached, f"only {at_kill} replies before the time limit"
    kill.kill(close_channel=False)
    for thread in threads:
        thread.join(180)
    assert not failures, failures
    return sent, at_kill


def _retry(sent: list[list[Op]], server: ServerProcess, tokens: dict[str, str]) -> None:
    """Every request again, twice, in each terminal's order; replies kept for the tests."""
    stubs = {"pos": server.stub(pb_grpc.PosServiceStub),
             "cards": server.stub(pb_grpc.CardServiceStub)}
    for _ in range(2):
        for ops in sent:
            for op in ops:
                op.retries.append(op.send(stubs, _token(tokens, op.worker)))


def _init_split(near: str, far: str) -> str:
    init = run("init", "--database", near, "--split", "--place", f"8-15={far}")
    assert init.returncode == 0, init.stdout + init.stderr
    admin_token = init.stdout.strip().splitlines()[-1]
    assert admin_token.startswith("llk_"), init.stdout
    return admin_token


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with fresh_postgres("tc_near") as near, fresh_second_postgres("tc_far") as far:
        admin_token = _init_split(near, far)
        a = ServerProcess(near, "--worker", "0/2", "--no-projector")
        b: ServerProcess | None = None
        try:
            b = survivor = ServerProcess(near, "--worker", "1/2", "--no-projector")
            half = PARTITIONS // 2
            _until(lambda: (owned_partitions(near, a.proc.pid),
                            owned_partitions(near, survivor.proc.pid)) == (half, half),
                   "A and B holding half of the partitions each")
            cards = _cards()
            tokens = _setup(survivor, admin_token, cards)
            sent, at_kill = _drive_and_kill(_plan(cards), survivor, tokens, kill=a)
            _until(lambda: owned_partitions(near, survivor.proc.pid) == PARTITIONS,
                   "B holding A's partitions too")
            _retry(sent, survivor, tokens)
            listed = run("partitions", "--database", near)
            assert listed.returncode == 0, listed.stderr
            yield World(near, far, survivor, a.proc.pid, admin_token, tokens, cards,
                        [op for ops in sent for op in ops], at_kill, listed.stdout)
        finally:
            a.kill()
            if b is not None:
                b.stop()


# ------------------------------------------------------------------------------ the oracle


@dataclass
class Oracle:
    balance: dict[str, int]
    held: dict[str, int]
    applied: dict[str, set[str]]  # card -> the request ids that moved its value
    # (issuer, acquirer, "near"/"far") -> captured: stored value of the issuer's cards on that
    # server spent at the acquirer's stores
    spent_across: dict[tuple[str, str, str], int]


def _oracle(w: World) -> Oracle:
    balance = dict.fromkeys(w.cards, INITIAL_LOAD)
    held = dict.fromkeys(w.cards, 0)
    applied: dict[str, set[str]] = defaultdict(set)
    spent: dict[tuple[str, str, str], int] = defaultdict(int)
    for op in w.sent:
        amount = _approved(op, op.final)
        if amount == 0:
            continue
        applied[op.card].add(op.request.request_id)
        if op.kind == "load":
            balance[op.card] += amount
        elif op.kind == "authorize":
            held[op.card] += amount
        else:
            assert op.hold is not None
            held[op.card] -= _approved(op.hold, op.hold.final)  # a part's rest is released
            balance[op.card] -= amount
            acquirer = TERMINALS[op.worker][0]
            issuer = w.cards[op.card]
            if acquirer != issuer:
                spent[issuer, acquirer, "far" if _far(op.card) else "near"] += amount
    return Oracle(balance, held, applied, spent)


# ------------------------------------------------------------------------------ the tests


def test_the_cards_cover_both_servers_and_both_owners(world: World) -> None:
    partitions = sorted(partition_of_card(n, PARTITIONS) for n in world.cards)
    assert 8 in partitions
    for server in (range(0, 8), FAR):
        mine = [p for p in partitions if p in server]
        assert {p % 2 for p in mine} == {0, 1}, partitions  # A's and B's, on each server
    # B alone owns everything after A's death, on both servers
    lines = world.partitions_listed.strip().splitlines()
    assert lines[-1] == (f"{PARTITIONS} partitions, {PARTITIONS} owned by 1 processes; the "
                         "log split over 2 databases"), lines
    assert sum(":5433/" in line and "(ledger_p" in line for line in lines) == PARTITIONS // 2
    assert sum(f"ledger-{world.server.proc.pid}.sock" in line for line in lines) == PARTITIONS


def test_every_call_was_answered_and_every_retry_replays(world: World) -> None:
    unanswered = [op.request for op in world.sent if op.acked is None]
    assert not unanswered, unanswered[:5]  # B kept answering while A died
    assert KILL_AFTER_ACKS <= world.acked_at_kill < len(world.sent) - 100  # mid-load
    kinds = {op.kind for op in world.sent}
    assert kinds == {"authorize", "capture", "load"}
    for op in world.sent:
        assert op.acked.result in (pb.APPROVED, pb.PARTIALLY_APPROVED,
                                   pb.DECLINED_INSUFFICIENT_FUNDS), (op.request, op.acked)
        assert op.kind != "capture" or op.acked.result == pb.APPROVED, (op.request, op.acked)
        for reply in op.retries:
            assert reply.replayed, (op.request, reply)
            assert _same_reply(reply, op.acked), (op.acked, reply)
    # the load reached A's cards through B on both servers before the kill
    of_a = [op for op in world.sent if partition_of_card(op.card, PARTITIONS) % 2 == 0]
    assert {_far(op.card) for op in of_a} == {False, True}


def _same_reply(a: Any, b: Any) -> bool:
    a2, b2 = type(a)(), type(b)()
    a2.CopyFrom(a)
    b2.CopyFrom(b)
    a2.replayed = b2.replayed = False
    return bool(a2 == b2)


def _movements(cards: Any, token: str, number: str) -> list[Any]:
    found: list[Any] = []
    after = 0
    while True:
        page = cards.ListMovements(pb.ListMovementsRequest(
            card_number=number, after_version=after, limit=1000),
            metadata=md(token), timeout=RPC_TIMEOUT_S).movements
        if not page:
            return found
        found += list(page)
        after = page[-1].version


def test_each_card_equals_the_oracle(world: World) -> None:
    oracle = _oracle(world)
    pos = world.server.stub(pb_grpc.PosServiceStub)
    cards = world.server.stub(pb_grpc.CardServiceStub)
    for number in sorted(world.cards):
        now = pos.GetBalance(pb.GetBalanceRequest(card_number=number),
                             metadata=md(world.admin_token), timeout=RPC_TIMEOUT_S)
        assert (now.balance_minor, now.held_minor) == (oracle.balance[number],
                                                       oracle.held[number]), number
        assert now.available_minor == now.balance_minor - now.held_minor >= 0
        history = _movements(cards, world.admin_token, number)
        assert [m.version for m in history] == list(range(1, len(history) + 1))
        assert (history[-1].balance_minor, history[-1].held_minor) == (
            now.balance_minor, now.held_minor), number
        ids = [m.request_id for m in history if m.kind in ("LOADED", "AUTHORIZED", "CAPTURED")]
        assert len(ids) == len(set(ids)), "a request was applied twice"
        initial = {m.request_id for m in history if m.kind == "LOADED"
                   and m.request_id.startswith("initial-")}
        assert len(initial) == 1 and set(ids) - initial == oracle.applied[number], number


def _events_of(url: str, numbers: list[str]) -> dict[str, dict[str, int]]:
    """schema -> card -> events of that card's stream, for every ledger_events table of the
    database at `url`."""
    found: dict[str, dict[str, int]] = {}
    streams = {card_stream_id(n): n for n in numbers}
    with psycopg.connect(url, autocommit=True) as conn:
        schemas = [row[0] for row in conn.execute(
            "SELECT table_schema FROM information_schema.tables "
            "WHERE table_name = 'ledger_events' ORDER BY 1")]
        for schema in schemas:
            rows = conn.execute(
                f'SELECT originator_id, count(*) FROM "{schema}".ledger_events '
                "WHERE originator_id = ANY(%s) GROUP BY 1", (list(streams),)).fetchall()
            found[schema] = {streams[uuid.UUID(str(stream))]: int(n) for stream, n in rows}
    return found


def test_each_partitions_events_are_on_its_server_only(world: World) -> None:
    numbers = sorted(world.cards)
    near, far = _events_of(world.near, numbers), _events_of(world.far, numbers)
    versions = {n: len(_movements(world.server.stub(pb_grpc.CardServiceStub),
                                  world.admin_token, n)) for n in numbers}
    for number in numbers:
        home = f"ledger_p{partition_of_card(number, PARTITIONS):02d}"
        there, elsewhere = (far, near) if _far(number) else (near, far)
        assert there.get(home, {}).get(number) == versions[number], (number, home, there)
        # nowhere else: not in another schema of its server, not on the other server
        assert [s for s, found in there.items() if number in found] == [home], there
        assert not [s for s, found in elsewhere.items() if number in found], elsewhere
    # partition 8 in particular: its events are on the second server, none on the first
    with psycopg.connect(world.far, autocommit=True) as conn:
        row = conn.execute("SELECT count(*), inet_server_port() FROM ledger_p08.ledger_events"
                           ).fetchone()
    assert row is not None and row[0] > 0 and row[1] != _port(world.near), row
    with psycopg.connect(world.near, autocommit=True) as conn:
        table = conn.execute("SELECT to_regclass('ledger_p08.ledger_events')").fetchone()
        if table is not None and table[0] is not None:
            assert conn.execute("SELECT count(*) FROM ledger_p08.ledger_events").fetchone() == (0,)


def _port(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT inet_server_port()").fetchone()
    assert row is not None
    return int(row[0])


def _liability_oracle(w: World) -> dict[str, tuple[str, int, int, int]]:
    oracle = _oracle(w)
    found: dict[str, tuple[str, int, int, int]] = {}
    for issuer in ("P1", "P2"):
        mine = [n for n in w.cards if w.cards[n] == issuer]
        balance = sum(oracle.balance[n] for n in mine)
        held = sum(oracle.held[n] for n in mine)
        found[issuer] = (USD, balance - held, held, balance)
    return found


def test_the_finance_read_model_agrees_with_the_oracle_across_both_servers(
        world: World) -> None:
    rebuilt = run("project", "--rebuild", "finance", "--database", world.near)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    expected = _liability_oracle(world)
    # each issuer has cards on both servers: the figures add up partitions of both
    assert all({_far(n) for n in world.cards if world.cards[n] == issuer} == {False, True}
               for issuer in expected)
    finance = world.server.stub(fpb_grpc.FinanceServiceStub)
    reply = finance.GetLiability(fpb.GetLiabilityRequest(), metadata=md(world.tokens["finance"]),
                                 timeout=RPC_TIMEOUT_S)
    assert {s.issuer_id: (s.currency, s.available_minor, s.held_minor, s.outstanding_minor)
            for s in reply.stored_value} == expected
    report = run("report", "liability", "--format", "json", "--database", world.near)
    assert report.returncode == 0, report.stderr
    rows = json.loads(report.stdout)["stored_value"]
    assert {r["issuer_id"]: (r["currency"], r["available_minor"], r["held_minor"],
                             r["outstanding_minor"]) for r in rows} == expected


def test_a_closed_periods_statement_covers_both_servers(world: World) -> None:
    spent = _oracle(world).spent_across
    # the plan spends each partner's cards at the other's stores on both servers
    for issuer, acquirer in (("P1", "P2"), ("P2", "P1")):
        for server in ("near", "far"):
            assert spent[issuer, acquirer, server] > 0, (issuer, acquirer, server)
    owed = {(issuer, acquirer): spent[issuer, acquirer, "near"] + spent[issuer, acquirer, "far"]
            for issuer, acquirer in (("P1", "P2"), ("P2", "P1"))}
    settlement = world.server.stub(pb_grpc.SettlementServiceStub)
    finance = md(world.tokens["finance"])
    closed = settlement.CloseSettlementPeriod(pb.CloseSettlementPeriodRequest(
        request_id="close-1", note="two servers"), metadata=finance, timeout=RPC_TIMEOUT_S)
    assert (closed.result, closed.period_id) == (pb.APPROVED, 1), closed
    reply = settlement.GetSettlementStatement(pb.GetSettlementStatementRequest(period_id=1),
                                              metadata=finance, timeout=RPC_TIMEOUT_S)
    assert (reply.period_id, reply.closed) == (1, True)
    lines = {(s.entity_id, line.counterparty_id, line.category):
             (line.receivable_minor, line.payable_minor)
             for s in reply.statements for line in s.lines}
    assert lines == {
        ("P1", "P2", "SV_SPENT_ACROSS"): (owed["P2", "P1"], owed["P1", "P2"]),
        ("P2", "P1", "SV_SPENT_ACROSS"): (owed["P1", "P2"], owed["P2", "P1"])}
    net = owed["P2", "P1"] - owed["P1", "P2"]  # P1's: receivable - payable
    assert {s.entity_id: s.multilateral_net_minor for s in reply.statements} == {
        "P1": net, "P2": -net}
    payer, payee = ("P2", "P1") if net > 0 else ("P1", "P2")
    assert [(i.payer_id, i.payee_id, i.amount_minor) for i in reply.instructions] == [
        (payer, payee, abs(net))]
    # the CLI reads the same closed period from the settlement read model
    report = run("report", "statement", "--period", "1", "--format", "json",
                 "--database", world.near)
    assert report.returncode == 0, report.stderr
    found = json.loads(report.stdout)
    assert (found["period"], found["state"], found["digest"]) == (1, "closed", reply.digest)
