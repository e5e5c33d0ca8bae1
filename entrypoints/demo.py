"""`loyalty-ledger demo`: the whole system in one command, on an embedded SQLite file.

It starts a real server in this process, registers a small alliance over gRPC (a retail
group and a hotel chain, their stores and terminals, a card class, credentials), issues and
loads cards, gives each partner a points program and the retailer a spring promotion, then
runs simulated POS traffic from several threads for some seconds: payments (authorize, then
capture in full or in part, or void), refunds, reversals, deliberate retries, cards of one
partner spent at the other's stores, baskets evaluated by the promotion (points earned and
redeemed, member discounts) and returns of some of them, balance reads and a store gateway's
Batch stream. It ends with a table of what happened and a ledger check: every card's balance
and points, as the ledger reports them, equal the sum of its movements and what the clients
saw approved.
"""

from __future__ import annotations

import collections
import itertools
import queue
import random
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc

from benchmarks.stats import percentile
from grpc_api.generated import agreements_pb2, agreements_pb2_grpc
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import ServerThread
from ledger.engine import Ledger
from ledger.rule_kernel import warm_up
from ledger.store import SQLiteStore

CURRENCY = "EUR"
CARD_CLASS = "GIFT"
MAX_BALANCE_MAJOR = 500  # EUR 500.00 per card
RESULT_NAMES = {value: name for name, value in pb.Result.items()}
# Balance effect of each movement kind, for the ledger check (the demo never replaces cards).
BALANCE_SIGN = {"LOADED": 1, "LOAD_REVERSED": -1, "CAPTURED": -1, "CAPTURE_REVERSED": 1,
                "REFUNDED": 1, "PURCHASE": -1, "RETURN": 1}
# The retailer's spring promotion: what a store manager would publish.
SPRING = pb.RuleSet(rule_set_id="spring", version=1, scope="partner:RETAIL", rules=[
    pb.Rule(rule_id="base", effect=pb.EARN, rate_num=1, rate_den=100),  # 1 point per EUR
    pb.Rule(rule_id="wine-x3", effect=pb.MULTIPLY, categories=["wine"], multiplier_bp=30_000,
            stacking=pb.EXCLUSIVE),
    pb.Rule(rule_id="no-tobacco", effect=pb.EXCLUDE, categories=["tobacco"]),
    pb.Rule(rule_id="spend-50", effect=pb.THRESHOLD_BONUS, threshold_minor=50_00, points=25),
    pb.Rule(rule_id="gold-5pct", effect=pb.DISCOUNT, tiers=["GOLD"], discount_bp=500),
    pb.Rule(rule_id="coffee-card", effect=pb.STAMP, categories=["coffee"], stamps_needed=5)])
CATALOGUE = (("bread", "bakery", 2_40), ("bordeaux", "wine", 14_90), ("cigarettes", "tobacco",
             11_00), ("espresso", "coffee", 1_80), ("scarf", "apparel", 39_00))


@dataclass(frozen=True)
class Site:
    partner: str
    store: str
    terminals: tuple[str, ...]
    timezone: str


SITES = (Site("RETAIL", "PARIS-01", ("PARIS-01-T1", "PARIS-01-T2"), "Europe/Paris"),
         Site("RETAIL", "LYON-02", ("LYON-02-T1",), "Europe/Paris"),
         Site("HOTEL", "NICE-H1", ("NICE-H1-T1",), "Europe/Paris"))
GATEWAY_SITE = SITES[1]  # LYON-02's store gateway sends Batch streams


@dataclass
class Alliance:
    admin: str
    auditor: str = ""
    managers: dict[str, str] = field(default_factory=dict)  # partner -> STORE_MANAGER token
    terminals: dict[str, str] = field(default_factory=dict)  # terminal -> TERMINAL token
    gateway: str = ""
    cards: list[str] = field(default_factory=list)
    issuer: dict[str, str] = field(default_factory=dict)  # card -> partner


class Stats:
    """What the traffic threads saw: counts by (operation, result), latencies per RPC, the
    balance each card should have from the approved amounts, replays and their mismatches."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.counts: collections.Counter[tuple[str, str]] = collections.Counter()
        self.latency_ms: dict[str, list[float]] = collections.defaultdict(list)
        self.expected: collections.Counter[str] = collections.Counter()
        self.replays = 0
        self.cross_partner = 0  # purchases with one partner's card at the other's store
        self.replay_mismatches: list[str] = []
        self.operations = 0
        self.points: collections.Counter[str] = collections.Counter()  # expected, per card
        self.sales: list[tuple[str, str, str, int]] = []  # purchase id, card, terminal, lines

    def record(self, operation: str, result: str, rpc: str | None, elapsed_s: float) -> None:
        """Count an operation; `rpc` None for one inside a Batch (timed per message)."""
        with self.lock:
            self.counts[(operation, result)] += 1
            if rpc is not None:
                self.latency_ms[rpc].append(elapsed_s * 1000)
            self.operations += 1

    def move(self, card: str, amount: int) -> None:
        with self.lock:
            self.expected[card] += amount


def _md(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


_ids = itertools.count(1)


def _rid(prefix: str) -> str:
    return f"demo-{prefix}-{next(_ids)}"


class Client:
    """Stubs over one channel, and timed calls that record their result."""

    def __init__(self, target: str, stats: Stats) -> None:
        self.channel = grpc.insecure_channel(target)
        self.admin = pb_grpc.AdminServiceStub(self.channel)
        self.cards = pb_grpc.CardServiceStub(self.channel)
        self.pos = pb_grpc.PosServiceStub(self.channel)
        self.settlement = pb_grpc.SettlementServiceStub(self.channel)
        self.agreements = agreements_pb2_grpc.AgreementServiceStub(self.channel)
        self.finance = fpb_grpc.FinanceServiceStub(self.channel)
        self.stats = stats

    def call(self, operation: str, method: Callable[..., Any], request: Any,
             token: str) -> Any | None:
        """The reply, or None after a gRPC error (counted under its status code)."""
        rpc = operation.split(" ")[0]
        started = time.perf_counter()
        try:
            reply = method(request, metadata=_md(token), timeout=30)
        except grpc.RpcError as error:
            self.stats.record(operation, error.code().name, rpc, time.perf_counter() - started)
            return None
        result = RESULT_NAMES.get(getattr(reply, "result", 1), "?")
        self.stats.record(operation, result, rpc, time.perf_counter() - started)
        return reply


# ------------------------------------------------------------------------------ setup


def _setup(client: Client, admin_token: str, cards: int, rng: random.Random) -> Alliance:
    a = Alliance(admin_token)
    admin = client.admin

    def must(method: Callable[..., Any], request: Any, token: str = admin_token) -> Any:
        reply = method(request, metadata=_md(token), timeout=30)
        if reply.result != pb.APPROVED:
            raise RuntimeError(f"setup step refused: {RESULT_NAMES[reply.result]}: {request}")
        return reply

    for partner, name in (("RETAIL", "Retail Group"), ("HOTEL", "Riviera Hotels")):
        must(admin.RegisterPartner, pb.RegisterPartnerRequest(
            request_id=_rid("setup"), partner_id=partner, name=name, currency=CURRENCY))
    must(admin.DefineCardClass, pb.DefineCardClassRequest(
        request_id=_rid("setup"), card_class=CARD_CLASS, max_balance_major=MAX_BALANCE_MAJOR,
        hold_ttl_seconds=7 * 24 * 3600))
    # The partners' agreement: the store that takes another partner's card pays 1.5 %
    # commission on the value spent (from now on: no valid_from is from publication).
    must(client.agreements.PublishAgreement, agreements_pb2.PublishAgreementRequest(
        request_id=_rid("setup"), agreement=agreements_pb2.Agreement(
            agreement_id="hotel-retail", version=1, entity_a="HOTEL", entity_b="RETAIL",
            sv_commission_bps=150, commission_paid_by=agreements_pb2.ACQUIRER)))

    def credential(role: int, partner: str = "", store: str = "", terminal: str = "") -> str:
        reply = must(admin.CreateCredential, pb.CreateCredentialRequest(
            request_id=_rid("cred"), label=f"demo {terminal or store or partner or role}",
            principal=pb.Principal(role=role, partner_id=partner, store_id=store,
                                   terminal_id=terminal)))
        return str(reply.token)

    for site in SITES:
        must(admin.RegisterStore, pb.RegisterStoreRequest(
            request_id=_rid("setup"), partner_id=site.partner, store_id=site.store,
            name=site.store.title(), timezone=site.timezone))
        for terminal in site.terminals:
            must(admin.RegisterTerminal, pb.RegisterTerminalRequest(
                request_id=_rid("setup"), store_id=site.store, terminal_id=terminal))
            a.terminals[terminal] = credential(pb.TERMINAL, site.partner, site.store, terminal)
        if site.partner not in a.managers:
            a.managers[site.partner] = credential(pb.STORE_MANAGER, site.partner, site.store)
    a.gateway = credential(pb.GATEWAY, GATEWAY_SITE.partner, GATEWAY_SITE.store)
    a.auditor = credential(pb.AUDITOR)

    programs = pb_grpc.ProgramServiceStub(client.channel)
    for partner in ("RETAIL", "HOTEL"):
        must(programs.DefineProgram, pb.DefineProgramRequest(
            request_id=_rid("setup"), owner=partner, currency=CURRENCY,
            point_value_micros=1_000_000, timezone="Europe/Paris",
            tiers=[pb.TierLevel(name="GOLD", threshold_minor=150_00)]))
    must(programs.PublishRuleSet, pb.PublishRuleSetRequest(request_id=_rid("setup"),
                                                           rule_set=SPRING))
    for index in range(cards):
        site = SITES[0] if index % 2 == 0 else SITES[2]  # half RETAIL cards, half HOTEL
        manager = a.managers[site.partner]
        issued = must(client.cards.IssueCard, pb.IssueCardRequest(
            request_id=_rid("issue"), card_class=CARD_CLASS, currency=CURRENCY,
            customer_ref=f"cust-{index:05d}", issuing_store_id=site.store), manager)
        number = issued.card.card_number
        must(client.cards.ActivateCard, pb.CardActionRequest(
            request_id=_rid("activate"), card_number=number), manager)
        a.cards.append(number)
        a.issuer[number] = site.partner
        _load(client, a, number, rng.randrange(20, 200) * 100)
    return a


def _load(client: Client, a: Alliance, card: str, amount: int) -> None:
    reply = client.call("LoadValue", client.cards.LoadValue, pb.LoadValueRequest(
        request_id=_rid("load"), card_number=card, amount_minor=amount, currency=CURRENCY,
        payment_ref=f"psp-{next(_ids)}"), a.managers[a.issuer[card]])
    if reply is not None and reply.result == pb.APPROVED:
        client.stats.move(card, amount)


# ------------------------------------------------------------------------------ traffic


def _terminal(rng: random.Random) -> tuple[Site, str]:
    site = rng.choice(SITES)
    return site, rng.choice(site.terminals)


def _purchase(client: Client, a: Alliance, rng: random.Random) -> None:
    """Authorize at any store of the alliance (often another partner's), then capture all,
    capture part, void or leave it pending; sometimes refund part of a capture."""
    card = rng.choice(a.cards)
    site, terminal = _terminal(rng)
    token = a.terminals[terminal]
    partial = rng.random() < 0.3
    amount = rng.randrange(5, 80) * 100
    if site.partner != a.issuer[card]:
        with client.stats.lock:
            client.stats.cross_partner += 1
    auth = client.call("Authorize" + (" partial" if partial else ""), client.pos.Authorize,
                       pb.AuthorizeRequest(request_id=_rid("auth"), card_number=card,
                                           amount_minor=amount, currency=CURRENCY,
                                           allow_partial=partial), token)
    if auth is None or auth.result not in (pb.APPROVED, pb.PARTIALLY_APPROVED):
        return
    authorization = auth.authorization_id
    choice = rng.random()
    if choice < 0.15:
        client.call("Void", client.pos.Void, pb.VoidRequest(
            request_id=_rid("void"), authorization_id=authorization), token)
        return
    if choice < 0.2:
        return  # left pending: the hold stays until it is captured, voided or expires
    whole = choice < 0.8
    capture = client.call("Capture" + ("" if whole else " partial"), client.pos.Capture,
                          pb.CaptureRequest(request_id=_rid("capture"),
                                            authorization_id=authorization,
                                            amount_minor=0 if whole else
                                            max(1, auth.approved_amount_minor // 2)), token)
    if capture is None or capture.result != pb.APPROVED:
        return
    client.stats.move(card, -capture.approved_amount_minor)
    if rng.random() < 0.2:
        refund = client.call("Refund", client.pos.Refund, pb.RefundRequest(
            request_id=_rid("refund"), authorization_id=authorization,
            amount_minor=max(1, capture.approved_amount_minor // 3)), token)
        if refund is not None and refund.result == pb.APPROVED:
            client.stats.move(card, refund.approved_amount_minor)


def _basket(client: Client, a: Alliance, rng: random.Random) -> None:
    """A basket at a till: the promotion in force at that store earns points (to the card's
    own program), stored value pays, sometimes points pay part first."""
    card = rng.choice(a.cards)
    _, terminal = _terminal(rng)
    lines = [pb.PurchaseLine(sku=sku, category=category, quantity=rng.randint(1, 3),
                             unit_price_minor=price)
             for sku, category, price in rng.sample(CATALOGUE, rng.randint(1, 3))]
    redeem = rng.choice((0, 0, 0, 20, 50))
    reply = client.call("Purchase" + (" with points" if redeem else ""), client.pos.Purchase,
                        pb.PurchaseRequest(request_id=_rid("buy"), card_number=card,
                                           currency=CURRENCY, lines=lines,
                                           stored_value_pays_rest=True, allow_partial=True,
                                           points_to_redeem=redeem), a.terminals[terminal])
    if reply is None or reply.result not in (pb.APPROVED, pb.PARTIALLY_APPROVED):
        return
    client.stats.move(card, -reply.stored_value_charged_minor)
    with client.stats.lock:
        client.stats.points[card] += reply.points_earned - reply.points_redeemed
        client.stats.sales.append((reply.purchase_id, card, terminal, len(lines)))


def _give_back(client: Client, a: Alliance, rng: random.Random) -> None:
    """A customer brings one item of an earlier basket back to the same till."""
    with client.stats.lock:
        if not client.stats.sales:
            return
        purchase_id, card, terminal, lines = rng.choice(client.stats.sales)
    reply = client.call("Return", client.pos.Return, pb.ReturnRequest(
        request_id=_rid("return"), purchase_id=purchase_id,
        lines=[pb.ReturnLine(line_index=rng.randrange(lines), quantity=1)]),
        a.terminals[terminal])
    if reply is None or reply.result != pb.APPROVED:
        return
    client.stats.move(card, reply.stored_value_refunded_minor)
    with client.stats.lock:
        client.stats.points[card] += reply.points_restored - reply.points_clawed_back


def _retry(client: Client, a: Alliance, rng: random.Random) -> None:
    """A terminal that lost the reply sends the same request again: the ledger answers with
    the first reply, marked replayed, and applies nothing twice."""
    card = rng.choice(a.cards)
    _, terminal = _terminal(rng)
    request = pb.AuthorizeRequest(request_id=_rid("retry"), card_number=card,
                                  amount_minor=rng.randrange(1, 30) * 100, currency=CURRENCY)
    first = client.call("Authorize", client.pos.Authorize, request, a.terminals[terminal])
    again = client.call("Authorize retry", client.pos.Authorize, request, a.terminals[terminal])
    if first is None or again is None:
        return
    with client.stats.lock:
        client.stats.replays += 1
        if not again.replayed or (again.result, again.authorization_id,
                                  again.approved_amount_minor) != (
                first.result, first.authorization_id, first.approved_amount_minor):
            client.stats.replay_mismatches.append(request.request_id)
    if first.result == pb.APPROVED:  # release the hold again so cards keep spending power
        client.call("Void", client.pos.Void, pb.VoidRequest(
            request_id=_rid("void"), authorization_id=first.authorization_id),
            a.terminals[terminal])


def _reverse(client: Client, a: Alliance, rng: random.Random) -> None:
    """A terminal timed out and reverses by its original request id: once after the
    authorization landed, and sometimes for a request the ledger never saw."""
    _, terminal = _terminal(rng)
    token = a.terminals[terminal]
    original = _rid("auth")
    if rng.random() < 0.8:
        client.call("Authorize", client.pos.Authorize, pb.AuthorizeRequest(
            request_id=original, card_number=rng.choice(a.cards),
            amount_minor=rng.randrange(1, 50) * 100, currency=CURRENCY), token)
    client.call("Reverse", client.pos.Reverse, pb.ReverseRequest(
        request_id=_rid("reverse"), original_request_id=original), token)


def _balance(client: Client, a: Alliance, rng: random.Random) -> None:
    _, terminal = _terminal(rng)
    client.call("GetBalance", client.pos.GetBalance,
                pb.GetBalanceRequest(card_number=rng.choice(a.cards)), a.terminals[terminal])


def _top_up(client: Client, a: Alliance, rng: random.Random) -> None:
    _load(client, a, rng.choice(a.cards), rng.randrange(10, 100) * 100)


def _batch(client: Client, a: Alliance, rng: random.Random) -> None:
    """The LYON-02 gateway sends 20 authorizations in one message, then captures the
    approved ones in a second message of the same stream."""
    terminal = GATEWAY_SITE.terminals[0]
    auths = [pb.PosOperation(terminal_id=terminal, authorize=pb.AuthorizeRequest(
        request_id=_rid("gw-auth"), card_number=rng.choice(a.cards),
        amount_minor=rng.randrange(1, 40) * 100, currency=CURRENCY)) for _ in range(20)]
    captures: list[pb.PosOperation] = []
    captured_cards: dict[str, str] = {}  # authorization id -> card
    outbox: queue.Queue[pb.BatchRequest | None] = queue.Queue()
    outbox.put(pb.BatchRequest(operations=auths))

    def messages() -> Iterator[pb.BatchRequest]:
        while (message := outbox.get()) is not None:
            yield message

    def result_of(reply: pb.PosOperationReply) -> str:
        return reply.error.split(":")[0] if reply.error else RESULT_NAMES[reply.reply.result]

    started = time.perf_counter()
    try:
        stream = client.pos.Batch(messages(), metadata=_md(a.gateway), timeout=60)
        first = next(stream)
        for op, reply in zip(auths, first.replies, strict=True):
            client.stats.record("Batch authorize", result_of(reply), None, 0.0)
            if not reply.error and reply.reply.result == pb.APPROVED:
                authorization = reply.reply.authorization_id
                captured_cards[authorization] = op.authorize.card_number
                captures.append(pb.PosOperation(terminal_id=terminal, capture=pb.CaptureRequest(
                    request_id=_rid("gw-capture"), authorization_id=authorization)))
        if captures:
            outbox.put(pb.BatchRequest(operations=captures))
            second = next(stream)
            for op, reply in zip(captures, second.replies, strict=True):
                client.stats.record("Batch capture", result_of(reply), None, 0.0)
                if not reply.error and reply.reply.result == pb.APPROVED:
                    client.stats.move(captured_cards[op.capture.authorization_id],
                                      -reply.reply.approved_amount_minor)
        outbox.put(None)  # half-close: the server ends the stream
        for _ in stream:
            pass
    except grpc.RpcError as error:
        outbox.put(None)
        client.stats.record("Batch", error.code().name, None, 0.0)
    with client.stats.lock:
        client.stats.latency_ms["Batch"].append((time.perf_counter() - started) * 1000)


SCENARIOS: tuple[tuple[Callable[[Client, Alliance, random.Random], None], int], ...] = (
    (_purchase, 40), (_basket, 16), (_give_back, 4), (_retry, 8), (_reverse, 8),
    (_balance, 20), (_top_up, 14), (_batch, 2))


def _traffic(client: Client, a: Alliance, seed: int, until: float) -> None:
    rng = random.Random(seed)
    scenarios, weights = zip(*SCENARIOS, strict=True)
    while time.monotonic() < until:
        rng.choices(scenarios, weights)[0](client, a, rng)


def _progress(stats: Stats, started: float, until: float, stop: threading.Event) -> None:
    tty = sys.stderr.isatty()
    while not stop.wait(1.0):
        elapsed = time.monotonic() - started
        line = (f"demo: {elapsed:4.1f}/{until - started:.0f} s, {stats.operations:,} "
                f"operations, {stats.operations / max(elapsed, 1e-9):,.0f}/s")
        print(f"\r{line}" if tty else line, end="" if tty else "\n", file=sys.stderr,
              flush=True)
    if tty:
        print(file=sys.stderr)


# ------------------------------------------------------------------------------ report


def _movements(client: Client, token: str, card: str) -> list[Any]:
    found: list[Any] = []
    after = 0
    while True:
        page = client.cards.ListMovements(pb.ListMovementsRequest(
            card_number=card, after_version=after, limit=1000), metadata=_md(token), timeout=30)
        found.extend(page.movements)
        if not page.movements:
            return found
        after = page.movements[-1].version


def check_ledger(client: Client, a: Alliance, stats: Stats) -> tuple[dict[str, list[int]],
                                                                      list[str]]:
    """Per issuing partner [balance, held, available]; and every discrepancy found."""
    totals: dict[str, list[int]] = {partner: [0, 0, 0] for partner in a.managers}
    problems: list[str] = []
    for card in a.cards:
        balance = client.pos.GetBalance(pb.GetBalanceRequest(card_number=card),
                                        metadata=_md(a.auditor), timeout=30)
        movements = _movements(client, a.auditor, card)
        from_movements = sum(BALANCE_SIGN.get(m.kind, 0) * m.amount_minor for m in movements)
        last = movements[-1] if movements else None
        if from_movements != balance.balance_minor:
            problems.append(f"{card}: balance {balance.balance_minor} but its movements sum "
                            f"to {from_movements}")
        if last is None or (last.balance_minor, last.held_minor) != (balance.balance_minor,
                                                                     balance.held_minor):
            problems.append(f"{card}: the last movement disagrees with GetBalance")
        if stats.expected[card] != balance.balance_minor:
            problems.append(f"{card}: balance {balance.balance_minor} but the clients saw "
                            f"{stats.expected[card]} approved")
        if stats.points[card] != balance.points or balance.points < 0:
            problems.append(f"{card}: {balance.points} points but the clients saw "
                            f"{stats.points[card]} earned, redeemed and returned")
        if min(balance.balance_minor, balance.held_minor, balance.available_minor) < 0:
            problems.append(f"{card}: a negative amount in {balance}")
        total = totals[a.issuer[card]]
        total[0] += balance.balance_minor
        total[1] += balance.held_minor
        total[2] += balance.available_minor
    problems.extend(f"retry {rid} was not replayed identically" for rid in
                    stats.replay_mismatches)
    return totals, problems


def _money(minor: int) -> str:
    return f"{minor / 100:,.2f}"


def report(stats: Stats, seconds: float, totals: dict[str, list[int]],
           problems: list[str], a: Alliance) -> str:
    lines = ["", f"{'operation':<22}{'result':<40}{'count':>8}"]
    previous = ""
    for (operation, result), count in sorted(stats.counts.items()):
        lines.append(f"{operation if operation != previous else '':<22}{result:<40}{count:>8}")
        previous = operation
    lines += ["", f"{stats.operations:,} operations in {seconds:.1f} s = "
              f"{stats.operations / seconds:,.0f}/s over gRPC (server and clients share this "
              "machine's cores)",
              f"cross-partner purchases: {stats.cross_partner} (a card of one partner at the "
              "other's store; the postings name both for settlement)",
              f"retries: {stats.replays} sent again with the same request_id, "
              f"{stats.replays - len(stats.replay_mismatches)} replayed identically", "",
              f"{'latency per RPC (ms)':<24}{'calls':>8}{'p50':>9}{'p99':>9}"]
    for rpc in sorted(stats.latency_ms):
        values = stats.latency_ms[rpc]
        p50, p99 = percentile(values, 0.5) or 0.0, percentile(values, 0.99) or 0.0
        lines.append(f"{rpc:<24}{len(values):>8}{p50:>9.2f}{p99:>9.2f}")
    lines += ["", f"{'cards by issuer':<16}{'cards':>7}{'balance':>14}{'held':>12}"
              f"{'available':>14}   ({CURRENCY})"]
    for partner, (balance, held, available) in totals.items():
        count = sum(1 for card in a.cards if a.issuer[card] == partner)
        lines.append(f"{partner:<16}{count:>7}{_money(balance):>14}{_money(held):>12}"
                     f"{_money(available):>14}")
    lines.append("")
    if problems:
        lines.append(f"ledger check: {len(problems)} PROBLEMS")
        lines.extend(f"  {p}" for p in problems[:20])
    else:
        points = sum(stats.points.values())
        lines.append(f"ledger check: OK ({len(a.cards)} cards: balances equal the sum of "
                     "their movements and of what the clients saw approved; points "
                     f"({points:,} held in all) equal what the clients saw earned, redeemed "
                     "and returned; nothing negative; every retry replayed)")
    return "\n".join(lines)


@contextmanager
def _running_server(directory: str) -> Iterator[tuple[str, str]]:
    store = SQLiteStore(f"sqlite:///{directory}/demo.db")
    store.create_schema()
    warm_up()  # the rule kernel compiled (or loaded from numba's cache) before any traffic
    ledger = Ledger(store, coupon_key=secrets.token_bytes(32))  # a throwaway demo database
    admin_token = ledger.bootstrap_admin(label="demo")
    ledger.start()
    server = ServerThread(ledger).start()
    try:
        yield f"127.0.0.1:{server.port}", admin_token
    finally:
        server.stop(grace_s=2.0)
        ledger.stop()
        store.close()


def settlement(client: Client, admin_token: str) -> tuple[list[str], list[str]]:
    """Close the settlement period the traffic fell in and show what the partners owe each
    other (the cross-partner spending above), with the instructions that settle it."""
    md = _md(admin_token)
    closed = client.settlement.CloseSettlementPeriod(pb.CloseSettlementPeriodRequest(
        request_id="demo-close-1", note="demo"), metadata=md, timeout=30)
    reply = client.settlement.GetSettlementStatement(pb.GetSettlementStatementRequest(
        period_id=closed.period_id), metadata=md, timeout=30)
    lines = ["", f"settlement period {reply.period_id} closed (digest {reply.digest[:16]}):",
             f"  {'entity':<8} {'currency':<8} {'receivable':>12} {'payable':>12} "
             f"{'net':>12}"]
    for s in reply.statements:
        lines.append(f"  {s.entity_id:<8} {s.currency:<8} {s.gross_receivable_minor:>12,} "
                     f"{s.gross_payable_minor:>12,} {s.multilateral_net_minor:>+12,}")
        for line in s.lines:
            lines.append(f"    {line.category:<16} with {line.counterparty_id:<8} "
                         f"{line.receivable_minor:>12,} {line.payable_minor:>12,}")
    for i in reply.instructions:
        lines.append(f"  instruction {i.instruction_id}: {i.payer_id} pays {i.payee_id} "
                     f"{i.amount_minor:,} {i.currency} ({i.instrument})")
    nets = sum(s.multilateral_net_minor for s in reply.statements)
    problems = [] if nets == 0 else [f"settlement nets sum to {nets}, not 0"]
    return lines, problems


def liability(client: Client, admin_token: str,
              totals: dict[str, list[int]]) -> tuple[list[str], list[str]]:
    """The finance read model's liability as of today, and its stored value checked against
    the cards' own balances read above."""
    reply = client.finance.GetLiability(fpb.GetLiabilityRequest(), metadata=_md(admin_token),
                                        timeout=30)
    lines = ["", f"liability as of the end of {reply.as_of} (UTC):",
             f"  {'stored value':<12} {'available':>12} {'held':>10} {'outstanding':>12}"]
    problems = []
    for s in reply.stored_value:
        lines.append(f"  {s.issuer_id:<12} {_money(s.available_minor):>12} "
                     f"{_money(s.held_minor):>10} {_money(s.outstanding_minor):>12}")
        if s.outstanding_minor != totals.get(s.issuer_id, [0])[0]:
            problems.append(f"liability of {s.issuer_id}: {s.outstanding_minor}, the cards "
                            f"hold {totals.get(s.issuer_id, [0])[0]}")
    lines.append(f"  {'points':<12} {'vested':>12} {'pending':>10} {'value':>12}")
    for p in reply.points:
        lines.append(f"  {p.program_id:<12} {p.vested_points:>12,} {p.pending_points:>10,} "
                     f"{_money(p.value_minor):>12}")
    return lines, problems


def _end_pages(url: str, out: str) -> None:
    """The customer pyramid of the demo's traffic (`report pyramid`) and, when `out` is
    given, the report page (`report html`), from the demo's database beside its server."""
    import time as clock

    from domain.customers import activity
    from entrypoints.customer_reports import report_sections
    from entrypoints.report_page import write_page
    from entrypoints.reports import render
    from ledger.store import open_store
    from projections import customers

    store = open_store(url)
    try:
        runner = customers.customers_runner(store)
        data = customers.view(runner, "pyramid", activity.today(clock.time_ns() // 1000))
        title, rows = report_sections("pyramid", data)[0]
        print(f"\n{title}\n{render(rows, 'table')}", end="")
        if out:
            print(f"\nreport page: {write_page(store, out)}; open it in a browser")
    finally:
        store.close()


def run_demo(seconds: float = 5.0, concurrency: int = 16, cards: int = 200,
             seed: int = 1, page: str = "") -> int:
    """Run the demo; 0 when the ledger check holds, 1 otherwise."""
    if seconds <= 0 or concurrency < 1 or cards < 2:
        print("demo: --seconds must be > 0, --concurrency >= 1, --cards >= 2", file=sys.stderr)
        return 2
    directory = tempfile.mkdtemp(prefix="loyalty-demo-")
    try:
        with _running_server(directory) as (target, admin_token):
            stats = Stats()
            setup_client = Client(target, stats)
            print(f"demo: server on {target}, database sqlite:///{directory}/demo.db",
                  file=sys.stderr)
            began = time.monotonic()
            alliance = _setup(setup_client, admin_token, cards, random.Random(seed))
            print(f"demo: 2 partners, {len(SITES)} stores, {len(alliance.terminals)} terminals,"
                  f" {cards} cards issued, activated and loaded in "
                  f"{time.monotonic() - began:.1f} s", file=sys.stderr)
            stats.counts.clear()
            stats.latency_ms.clear()
            stats.operations = 0
            clients = [Client(target, stats) for _ in range(min(concurrency, 4))]
            started = time.monotonic()
            until = started + seconds
            stop = threading.Event()
            progress = threading.Thread(target=_progress, args=(stats, started, until, stop),
                                        daemon=True)
            progress.start()
            workers = [threading.Thread(target=_traffic, args=(
                clients[i % len(clients)], alliance, seed * 1000 + i, until))
                for i in range(concurrency)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            elapsed = time.monotonic() - started
            stop.set()
            progress.join()
            totals, problems = check_ledger(setup_client, alliance, stats)
            print(report(stats, elapsed, totals, problems, alliance))
            lines, settled = settlement(setup_client, admin_token)
            print("\n".join(lines))
            problems += settled
            lines, owed = liability(setup_client, admin_token, totals)
            print("\n".join(lines))
            problems += owed
            _end_pages(f"sqlite:///{directory}/demo.db", page)
            for client in [setup_client, *clients]:
                client.channel.close()
            return 1 if problems else 0
    finally:
        shutil.rmtree(directory, ignore_errors=True)
