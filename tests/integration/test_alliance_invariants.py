"""The alliance's invariants under random traffic from two server processes (issue 9, section
7): hypothesis draws a program of rounds; each round sends one operation through each of two
`loyalty-ledger serve` processes on one PostgreSQL database at the same moment (two threads):
loads, authorizations captured in whole or part or voided, refunds, purchases earning and
redeeming points, returns, exchanges (quote + execute, both ways), settlement period closes,
and races of an exchange on one server against a redemption of the same card's points on the
other. After each program the test walks the whole log itself and checks:

- every movement (a committed card event with legs) is in exactly one period, the one the
  close markers' log positions give it; the read model's periods are those markers; a
  movement answered before a close was sent is in that period or an earlier one, and one sent
  after a close was answered is in a later one;
- per period and currency the multilateral nets sum to exactly zero, bilateral nets are
  antisymmetric, and the instructions settle every net with fewer transfers than entities;
- every entity's statement equals a recomputation written here from the raw legs and the
  agreements read from the log (commission and per-point rates rounded half up once per
  period, pair and agreement version; exchange fees paid over to the agreed earner), and the
  servers' GetSettlementStatement digest equals the read model's;
- the finance roll-forward of each issuer and program ties to the minor unit (point), its
  opening, closing and main lines equal sums over the log's events;
- each exchange conserves value to the minor unit: its legs sum to zero, the source program's
  outstanding loses what the taken lots were worth, the destination gains the given points at
  its point value, the fee and the difference take exactly the rest; points are conserved
  (taken = lots taken = fee + the rate's input);
- no card's stored value (available, held) and no lot of any program is ever below zero after
  any event, by folding every card's events one by one and, independently, by summing its
  card-account legs; the servers' GetCard equals the fold at the end.

Real processes rather than two engines in this process: the writers then share nothing but
the database (their own caches, registry, connection pools, interpreters), as in production,
and the quotes cross processes (signed under the shared coupon key). Starting the two servers
costs ~8 s (numba warm-up, once per module); the database and the servers are shared by every
example, each example issuing its own cards, so the invariants are checked over the whole log
so far. Shrinking is off (each step is a round trip to two processes): a failing program is
reported as drawn."""

from __future__ import annotations

import datetime as dt
import itertools
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from domain.cards import events as ev
from domain.cards.decide import CardState, evolve, fold
from domain.registry.events import AgreementPublished, ProgramDefined, SettlementPeriodClosed
from domain.settlement.agreements import Agreement, Payer
from domain.settlement.model import Category
from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from ledger.codec import REGISTRY_ID, card_stream_id, decode_event
from ledger.store import EventStore, open_store
from projections.finance import finance_runner, roll_forward
from projections.runner import ProjectionRunner
from projections.settlement import period_statements, periods, settlement_runner
from tests.support.alliance import started_ledger
from tests.support.databases import fresh_postgres
from tests.support.four_partners import (
    CURRENCY,
    MANAGERS,
    POINT_VALUE_MICROS,
    RATES,
    TERMINALS,
    build_four_partners,
)
from tests.support.processes import ServerProcess
from tests.support.rpc import metadata

pytestmark = pytest.mark.slow

R = pb.Result
BPS = 10_000
MICROS = 1_000_000
TERMINAL_NAMES = tuple(TERMINALS)
# the cards each example issues: (issuing partner) x count
CARD_ISSUERS = ("P1", "P1", "P2", "P2", "P3", "P4")
PROGRAM_OF = {"P1": "P1", "P2": "P2"}  # a card's own program: its issuer's, if it has one
OTHER_PROGRAM = {"P1": "P2", "P2": "P1"}


# ------------------------------------------------------------------------------ the world


@dataclass
class Client:
    """Stubs over one channel to one server process."""

    cards: pb_grpc.CardServiceStub
    pos: pb_grpc.PosServiceStub
    exchange: xpb_grpc.ExchangeServiceStub
    settlement: pb_grpc.SettlementServiceStub

    @staticmethod
    def of(server: ServerProcess) -> Client:
        channel = server.channel
        return Client(pb_grpc.CardServiceStub(channel), pb_grpc.PosServiceStub(channel),
                      xpb_grpc.ExchangeServiceStub(channel),
                      pb_grpc.SettlementServiceStub(channel))


@dataclass
class World:
    store: EventStore  # this process's reader of the database
    clients: tuple[Client, Client]
    tokens: dict[str, str]
    settlement: ProjectionRunner
    finance: ProjectionRunner
    seeds: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    cards: dict[str, tuple[str, str]] = field(default_factory=dict)  # number -> issuer, currency


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with fresh_postgres("alliance_inv") as url:
        store = open_store(url)
        store.create_schema()
        with started_ledger(store) as engine:
            alliance = build_four_partners(engine, engine.admin_token)  # type: ignore[attr-defined]
            admin_token = engine.admin_token  # type: ignore[attr-defined]
        started: list[ServerProcess | BaseException] = []

        def start() -> None:
            try:
                started.append(ServerProcess(url, "--no-projector", "--expire-every-s", "0"))
            except BaseException as error:  # surfaced below
                started.append(error)

        threads = [threading.Thread(target=start) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        servers = [s for s in started if isinstance(s, ServerProcess)]
        try:
            assert len(servers) == 2, started
            yield World(store, (Client.of(servers[0]), Client.of(servers[1])),
                        {**alliance.tokens, "admin": admin_token}, settlement_runner(store),
                        finance_runner(store))
        finally:
            for server in servers:
                server.stop()
            store.close()


# ------------------------------------------------------------------------------ the program

card_index = st.integers(0, len(CARD_ISSUERS) - 1)
terminal = st.sampled_from(TERMINAL_NAMES)
OPERATION = st.one_of(
    st.tuples(st.just("load"), card_index, st.integers(1, 5_000)),
    st.tuples(st.just("spend"), terminal, card_index, st.integers(1, 4_000),
              st.sampled_from(["full", "part", "void"])),
    st.tuples(st.just("refund"), st.integers(0, 99), st.integers(1, 1_500)),
    st.tuples(st.just("buy"), terminal, card_index, st.integers(0, 3_000), st.booleans(),
              st.sampled_from([0, 0, 50, 300, 900])),
    st.tuples(st.just("return"), st.integers(0, 99), st.integers(1, 2)),
    st.tuples(st.just("exchange"), terminal, card_index, st.booleans(),
              st.integers(100, 700)),
    st.tuples(st.just("close")),
)
ROUND = st.one_of(
    st.tuples(OPERATION, OPERATION),
    st.tuples(st.just("race"), st.sampled_from([0, 1, 2, 3]), terminal, terminal,
              st.integers(60, 100)),
    st.tuples(st.just("drain"), card_index, terminal, terminal, st.integers(51, 100)),
)
PROGRAM = st.lists(ROUND, min_size=8, max_size=20)


class Traffic:
    """One example's calls: what each request's send and reply were ordered after (a clock
    of this process shared by both threads), and what later operations may refer to."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.lock = threading.Lock()
        self.clock = itertools.count(1)
        self.times: dict[str, tuple[int, int]] = {}  # request id -> (sent, answered)
        self.closes: list[tuple[int, int, int]] = []  # (sent, answered, period id)
        self.captures: list[tuple[str, str]] = []  # (terminal, authorization id)
        self.purchases: list[tuple[str, str]] = []  # (terminal, purchase id)
        self.cards: list[tuple[str, str, str]] = []  # (number, issuer, currency)
        self.ids = itertools.count(1)
        self.example = next(world.seeds)
        self.results: Counter[tuple[str, str]] = Counter()  # (method, Result name)

    def rid(self, kind: str) -> str:
        return f"x{self.example}-{kind}-{next(self.ids)}"

    def now(self) -> int:
        with self.lock:
            return next(self.clock)

    def call(self, method: Callable[..., Any], request: Any, token: str) -> Any:
        request_id = getattr(request, "request_id", "")
        sent = self.now()
        reply = method(request, metadata=metadata(self.world.tokens[token]), timeout=60)
        answered = self.now()
        name = getattr(method, "_method", b"/?").decode().rsplit("/", 1)[-1]
        with self.lock:
            if request_id:
                self.times[request_id] = (sent, answered)
            self.results[name, R.Name(reply.result)] += 1
        return reply

    # -------------------------------------------------------------------------- setup

    def issue_cards(self) -> None:
        """Each card issued at its partner's store, loaded, and (with a program) given points
        by a purchase at home, alternately through each server."""
        for index, issuer in enumerate(CARD_ISSUERS):
            c = self.world.clients[index % 2]
            manager = next(name for name, (p, _) in MANAGERS.items() if p == issuer)
            store = MANAGERS[manager][1]
            currency = CURRENCY[issuer]
            issued = self.call(c.cards.IssueCard, pb.IssueCardRequest(
                request_id=self.rid("issue"), card_class="STANDARD", currency=currency,
                issuing_store_id=store), manager)
            assert issued.result == R.APPROVED, issued
            number = issued.card.card_number
            done = self.call(c.cards.ActivateCard, pb.CardActionRequest(
                request_id=self.rid("act"), card_number=number), manager)
            assert done.result == R.APPROVED, done
            loaded = self.call(c.cards.LoadValue, pb.LoadValueRequest(
                request_id=self.rid("load"), card_number=number, amount_minor=20_000,
                currency=currency, payment_ref="psp"), "admin")
            assert loaded.result == R.APPROVED, loaded
            home = next(t for t, (p, s, _) in TERMINALS.items() if s == store)
            bought = self.buy(c, home, number, currency, 5_000, False, 0)
            assert bought.result == R.APPROVED, bought
            self.cards.append((number, issuer, currency))
            self.world.cards[number] = (issuer, currency)

    # -------------------------------------------------------------------------- operations

    def card(self, index: int) -> tuple[str, str, str]:
        return self.cards[index % len(self.cards)]

    def run(self, c: Client, op: tuple[Any, ...]) -> None:
        kind = op[0]
        if kind == "load":
            number, _, currency = self.card(op[1])
            self.call(c.cards.LoadValue, pb.LoadValueRequest(
                request_id=self.rid("load"), card_number=number, amount_minor=op[2],
                currency=currency, payment_ref="psp"), "admin")
        elif kind == "spend":
            _, till, index, amount, mode = op
            number, _, currency = self.card(index)
            held = self.call(c.pos.Authorize, pb.AuthorizeRequest(
                request_id=self.rid("auth"), card_number=number, amount_minor=amount,
                currency=currency), till)
            if held.result != R.APPROVED:
                return
            if mode == "void":
                self.call(c.pos.Void, pb.VoidRequest(
                    request_id=self.rid("void"), authorization_id=held.authorization_id), till)
                return
            captured = self.call(c.pos.Capture, pb.CaptureRequest(
                request_id=self.rid("cap"), authorization_id=held.authorization_id,
                amount_minor=max(1, amount // 2) if mode == "part" else 0), till)
            if captured.result == R.APPROVED:
                with self.lock:
                    self.captures.append((till, held.authorization_id))
        elif kind == "refund":
            if self.captures:
                till, authorization = self.captures[op[1] % len(self.captures)]
                self.call(c.pos.Refund, pb.RefundRequest(
                    request_id=self.rid("refund"), authorization_id=authorization,
                    amount_minor=op[2]), till)
        elif kind == "buy":
            _, till, index, price, pays_rest, points = op
            number, _, currency = self.card(index)
            self.buy(c, till, number, currency, price, pays_rest, points)
        elif kind == "return":
            if self.purchases:
                till, purchase = self.purchases[op[1] % len(self.purchases)]
                self.call(c.pos.Return, pb.ReturnRequest(
                    request_id=self.rid("return"), purchase_id=purchase,
                    lines=[pb.ReturnLine(line_index=0, quantity=op[2])], reason="returned"),
                    till)
        elif kind == "exchange":
            _, till, index, back, points = op
            number, issuer, _ = self.card(index)
            if issuer not in PROGRAM_OF:
                return
            source, target = PROGRAM_OF[issuer], OTHER_PROGRAM[issuer]
            if back:
                source, target = target, source
            self.exchange(c, till, number, source, target, points)
        else:
            assert kind == "close", op
            request_id = self.rid("close")
            sent = self.now()
            reply = self.call(c.settlement.CloseSettlementPeriod,
                              pb.CloseSettlementPeriodRequest(request_id=request_id,
                                                              note="random close"),
                              "finance")
            assert reply.result == R.APPROVED, reply
            with self.lock:
                self.closes.append((sent, self.times[request_id][1], int(reply.period_id)))

    def buy(self, c: Client, till: str, number: str, currency: str, price: int,
            pays_rest: bool, points: int) -> Any:
        reply = self.call(c.pos.Purchase, pb.PurchaseRequest(
            request_id=self.rid("buy"), card_number=number, currency=currency,
            lines=[pb.PurchaseLine(sku="item", category="goods", quantity=2,
                                   unit_price_minor=price)],
            stored_value_pays_rest=pays_rest, allow_partial=pays_rest,
            points_to_redeem=points, receipt_ref="rcpt"), till)
        if reply.result == R.APPROVED:
            with self.lock:
                self.purchases.append((till, reply.purchase_id))
        return reply

    def exchange(self, c: Client, till: str, number: str, source: str, target: str,
                 points: int) -> None:
        offer = self.call(c.exchange.QuoteExchange, xpb.QuoteExchangeRequest(
            card_number=number, from_program=source, to_program=target,
            points_taken=points), till)
        if offer.result == R.APPROVED:
            self.call(c.exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
                request_id=self.rid("exec"), card_number=number, quote_id=offer.quote_id), till)

    def committed(self, number: str) -> CardState:
        """The card as committed (its events folded): both servers have answered every
        earlier request, so this is what either decides on (a server's GetCard may not have
        heard of the other's last write yet)."""
        state = fold([decode_event(e.state)
                      for e in self.world.store.stream(card_stream_id(number))])
        assert state is not None
        return state

    def race(self, pool: ThreadPoolExecutor, op: tuple[Any, ...]) -> None:
        """A quote of more than half the card's own points executed on one server while a
        purchase redeems as many on the other (paid by them, so what it earns cannot make
        room for the exchange), both sent at once: exactly one of them is approved."""
        _, index, quoting, redeeming, share = op
        number, issuer, currency = self.card(index)
        a, b = self.world.clients
        source, target = PROGRAM_OF[issuer], OTHER_PROGRAM[issuer]
        held = sum(lot.remaining for lot in self.committed(number).lots.values()
                   if not lot.program)
        points = held * share // 100
        price = (points * POINT_VALUE_MICROS[source] // MICROS + 1) // 2  # 2 units
        earned = 2 * price // 10 + 1  # at most, by the rule set (a point per 10 cents)
        if points < RATES[source, target].min_points or 2 * points - earned <= held:
            return  # both could fit: not a race with one winner
        offer = self.call(a.exchange.QuoteExchange, xpb.QuoteExchangeRequest(
            card_number=number, from_program=source, to_program=target,
            points_taken=points), quoting)
        assert offer.result == R.APPROVED, offer
        exchanged, bought = (future.result(timeout=120) for future in [
            pool.submit(self.call, a.exchange.ExecuteExchange, xpb.ExecuteExchangeRequest(
                request_id=self.rid("race-exec"), card_number=number,
                quote_id=offer.quote_id), quoting),
            pool.submit(self.buy, b, redeeming, number, currency, price, False, points)])
        assert sorted([exchanged.result, bought.result]) == [
            R.APPROVED, R.DECLINED_INSUFFICIENT_POINTS]

    def drain(self, pool: ThreadPoolExecutor, op: tuple[Any, ...]) -> None:
        """Authorizations of more than half the card's available value sent at once through
        both servers: exactly one is approved (then captured)."""
        _, index, one, other, share = op
        number, _, currency = self.card(index)
        amount = self.committed(number).available_minor * share // 100
        if amount < 1:
            return
        held = [future.result(timeout=120) for future in [
            pool.submit(self.call, client.pos.Authorize, pb.AuthorizeRequest(
                request_id=self.rid("drain"), card_number=number, amount_minor=amount,
                currency=currency), till)
            for client, till in zip(self.world.clients, (one, other), strict=True)]]
        assert sorted(h.result for h in held) == [
            R.APPROVED, R.DECLINED_INSUFFICIENT_FUNDS], held
        till, winner = next((t, h) for t, h in zip((one, other), held, strict=True)
                            if h.result == R.APPROVED)
        captured = self.call(self.world.clients[1].pos.Capture, pb.CaptureRequest(
            request_id=self.rid("cap"), authorization_id=winner.authorization_id), till)
        assert captured.result == R.APPROVED, captured
        with self.lock:
            self.captures.append((till, winner.authorization_id))

    def play(self, program: list[tuple[Any, ...]]) -> None:
        with ThreadPoolExecutor(2) as pool:
            for step in program:
                if step[0] == "race":
                    self.race(pool, step)
                    continue
                if step[0] == "drain":
                    self.drain(pool, step)
                    continue
                futures = [pool.submit(self.run, client, op)
                           for client, op in zip(self.world.clients, step, strict=True)]
                for future in futures:
                    future.result(timeout=120)  # a gRPC error or a failed check fails here


# ------------------------------------------------------------------------------ the walk


def half_up(value: Fraction) -> int:
    """Rounded half up (towards +infinity at exactly one half), as agreed amounts are."""
    return int((value + Fraction(1, 2)).__floor__())


def terms_at(agreements: list[Agreement], scope: tuple[str, str], at_us: int
             ) -> Agreement | None:
    """The version in force at `at_us` among the agreements of `scope` (the latest to
    start; published later among equals)."""
    found = None
    for agreement in agreements:
        if agreement.scope == scope and agreement.valid_from_us <= at_us and (
                found is None or agreement.valid_from_us >= found.valid_from_us):
            found = agreement
    return found


def pair_terms(agreements: list[Agreement], one: str, other: str, at_us: int
               ) -> Agreement | None:
    """Bilateral terms: the pair's own agreement, else the alliance's."""
    scope = (min(one, other), max(one, other))
    return terms_at(agreements, scope, at_us) or terms_at(agreements, ("", ""), at_us)


@dataclass
class Card:
    number: str
    issuer: str
    currency: str
    state: CardState | None = None
    available: int = 0  # the sums of its card-account legs
    held: int = 0


@dataclass
class Walk:
    """What this test computes from the raw log, sharing nothing with the read models."""

    period_of: dict[int, int] = field(default_factory=dict)  # movement log id -> period
    period_of_request: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    close_positions: list[int] = field(default_factory=list)
    # (period, currency, payer, payee, category) -> signed flow
    flows: dict[tuple[int, str, str, str, int], int] = field(
        default_factory=lambda: defaultdict(int))
    # (period, currency, issuer, acquirer, agreement id, version, bps, paid by) -> base
    bases: dict[tuple[Any, ...], int] = field(default_factory=lambda: defaultdict(int))
    # (period, currency, payer, payee, category, agreement id, version, micros, bps)
    #   -> [points, value of their legs]
    priced: dict[tuple[Any, ...], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0]))
    cards: dict[Any, Card] = field(default_factory=dict)
    sv_lines: dict[tuple[str, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    points_lines: dict[str, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    days: set[str] = field(default_factory=set)
    exchanges: int = 0
    periods: int = 1  # the open period's id


SV_LINE = {ev.ValueLoaded: "loaded", ev.AuthorizationCaptured: "spent",
           ev.PurchaseMade: "spent", ev.ValueRefunded: "refunded",
           ev.PurchaseReturned: "refunded", ev.CaptureReversed: "refunded",
           ev.LoadReversed: "adjustments"}


def walk(store: EventStore) -> Walk:
    w = Walk()
    agreements: list[Agreement] = []
    start = 1
    while page := store.read_log(start, 1_000):
        for row in page:
            event = decode_event(row.state)
            if row.originator_id == REGISTRY_ID:
                if isinstance(event, SettlementPeriodClosed):
                    assert event.period_id == w.periods, (event, w.periods)
                    w.close_positions.append(row.id)
                    w.periods += 1
                elif isinstance(event, AgreementPublished):
                    agreements.append(event.agreement)
                elif isinstance(event, ProgramDefined):
                    assert POINT_VALUE_MICROS[event.program.owner] == \
                        event.program.point_value_micros
                continue
            step(w, row.id, row.originator_id, event, agreements)
        start = page[-1].id + 1
    return w


def step(w: Walk, position: int, stream: Any, event: Any,
         agreements: list[Agreement]) -> None:
    if isinstance(event, ev.CardIssued):
        w.cards[stream] = Card(event.card_number, event.issuing_partner_id, event.currency)
    card = w.cards[stream]
    before = card.state.copy() if card.state is not None else None
    card.state = evolve(card.state, event)
    state = card.state
    # no stored value and no lot of any program ever below zero
    assert state.held_minor >= 0 and state.balance_minor - state.held_minor >= 0, (
        card.number, state.balance_minor, state.held_minor)
    assert all(lot.remaining >= 0 for lot in state.lots.values()), card.number
    assert state.points_debt == 0, card.number  # the programs write off, never owe
    legs = getattr(event, "legs", ())
    if not any(leg.amount_minor for leg in legs):
        return
    assert sum(leg.amount_minor for leg in legs) == 0, event
    for leg in legs:
        if leg.account == f"card:{card.number}:available":
            card.available += leg.amount_minor
        elif leg.account == f"card:{card.number}:held":
            card.held += leg.amount_minor
    assert card.available >= 0 and card.held >= 0, card.number
    assert (card.available, card.held) == (state.balance_minor - state.held_minor,
                                           state.held_minor), card.number
    period = w.periods
    w.period_of[position] = period
    w.period_of_request[event.meta.request_id].add(period)
    at_us = event.meta.recorded_at_us
    w.days.add(dt.datetime.fromtimestamp(at_us / 1e6, dt.UTC).date().isoformat())
    line = SV_LINE.get(type(event))
    if line:
        moved = sum(leg.amount_minor for leg in legs
                    if leg.account.startswith(f"card:{card.number}:"))
        w.sv_lines[card.issuer, card.currency][line] += -moved if line == "spent" else moved
    own = PROGRAM_OF.get(card.issuer, "")
    points = w.points_lines
    if isinstance(event, ev.PurchaseMade):
        if event.lot is not None:
            assert event.points_owner == own
            points[own]["earned"] += event.lot.amount
        if event.points_redeemed:
            points[own]["redeemed"] += event.points_redeemed
    elif isinstance(event, ev.PurchaseReturned):
        points[own]["restored"] += sum(p for _, p in event.points_restored)
        points[own]["clawed_back"] += sum(p for _, p in event.points_clawed)
    elif isinstance(event, ev.PointsExchanged):
        points[event.from_program]["exchanged_out"] += event.points_taken
        points[event.to_program]["exchanged_in"] += event.points_given
        assert before is not None
        check_exchange(event, before, own)
        w.exchanges += 1
    currency = "USD" if isinstance(event, ev.PointsExchanged) else card.currency
    for payer, payee, category, amount in flows_of(legs):
        w.flows[period, currency, payer, payee, category] += amount
        terms = pair_terms(agreements, payer, payee, at_us)
        if terms is None:
            continue
        if category == Category.SV_SPENT_ACROSS and terms.sv_commission_bps:
            w.bases[period, currency, payer, payee, terms.agreement_id, terms.version,
                    terms.sv_commission_bps, terms.commission_paid_by] += amount
        rate = None
        if category == Category.POINTS_REDEEMED_ACROSS and terms.points_reimbursement_micros:
            rate = (terms.points_reimbursement_micros, BPS)
        elif category == Category.POINTS_ISSUED_ACROSS and terms.points_price_micros:
            rate = (terms.points_price_micros, terms.points_billing_bps)
        if rate is not None:
            figures = w.priced[period, currency, payer, payee, category, terms.agreement_id,
                               terms.version, *rate]
            figures[0] += points_behind(event, category)
            figures[1] += amount
    if isinstance(event, ev.PointsExchanged):
        terms = pair_terms(agreements, event.from_program, event.to_program, at_us)
        earner = terms.exchange_fee_earner if terms is not None else ""
        if earner and earner != event.from_program:
            fee = sum(leg.amount_minor for leg in legs
                      if leg.account == f"exchange_fee:{event.from_program}")
            w.flows[period, currency, event.from_program, earner, Category.FEE] += fee


def flows_of(legs: Any) -> list[tuple[str, str, int, int]]:
    """(payer, payee, category, signed amount) of the legs that cross entities, read from the
    chart of accounts (README): clearing:{issuer}:{acquirer} +x = the issuer owes x;
    points_redeemed:{program}:{acquirer} +x = the program's owner owes x;
    points_sold:{acquirer}:{program} -x = the acquirer owes x; exchange:{s}:{d} +x = s owes
    x; coupons are not in this traffic (none is given) and must not appear."""
    found = []
    for leg in legs:
        parts = leg.account.split(":")
        kind, amount = parts[0], leg.amount_minor
        assert kind != "coupons", leg
        if kind == "clearing" and parts[1] != parts[2]:
            found.append((parts[1], parts[2], Category.SV_SPENT_ACROSS, amount))
        elif kind == "points_redeemed" and parts[1] != parts[2]:
            found.append((parts[1], parts[2], Category.POINTS_REDEEMED_ACROSS, amount))
        elif kind == "points_sold" and parts[1] != parts[2]:
            found.append((parts[1], parts[2], Category.POINTS_ISSUED_ACROSS, -amount))
        elif kind == "exchange" and parts[1] != parts[2]:
            found.append((parts[1], parts[2], Category.EXCHANGE, amount))
    return found


def points_behind(event: Any, category: int) -> int:
    """The points a priced flow stands for, signed like the flow, from the event's own
    fields: a purchase's redeemed or earned points, a return's restored or taken back."""
    if isinstance(event, ev.PurchaseMade):
        if category == Category.POINTS_REDEEMED_ACROSS:
            return int(event.points_redeemed)
        return event.lot.amount if event.lot is not None else 0
    assert isinstance(event, ev.PurchaseReturned), event
    if category == Category.POINTS_REDEEMED_ACROSS:
        return -sum(p for _, p in event.points_restored)
    return -(sum(p for _, p in event.points_clawed) + event.points_written_off)


def check_exchange(event: ev.PointsExchanged, before: CardState, own: str) -> None:
    """Points and value conserved to the unit by one exchange."""
    rate = RATES[event.from_program, event.to_program]
    taken = event.points_taken
    assert sum(p for _, p in event.taken) == taken
    assert event.fee_points == rate.fee_fixed_points + taken * rate.fee_bp // BPS
    exact = Fraction((taken - event.fee_points) * rate.numerator, rate.denominator)
    assert event.points_given == (half_up(exact) if rate.rounding == 2 else int(exact))
    source = "" if event.from_program == own else event.from_program
    lots = before.lots
    assert all(lots[lot_id].program == source and lots[lot_id].remaining >= p
               for lot_id, p in event.taken), event
    assert event.lot.amount == event.points_given
    assert event.lot.program == ("" if event.to_program == own else event.to_program)
    destination_value = POINT_VALUE_MICROS[event.to_program]
    assert event.lot.value_micros_per_point == destination_value
    taken_micros = sum(p * lots[lot_id].value_micros_per_point for lot_id, p in event.taken)
    value_taken = taken_micros // MICROS
    fee = taken_micros * event.fee_points // (taken * MICROS)
    given = event.points_given * destination_value // MICROS
    s, d = event.from_program, event.to_program
    expected = {f"points:{s}:outstanding": -value_taken, f"exchange_fee:{s}": fee,
                f"exchange_difference:{s}:{d}": value_taken - fee - given,
                f"exchange:{s}:{d}": given, f"points:{d}:funding": -given,
                f"points:{d}:outstanding": given}
    legs: dict[str, int] = defaultdict(int)
    for leg in event.legs:
        legs[leg.account] += leg.amount_minor
    assert dict(legs) == {k: v for k, v in expected.items() if v}, (dict(legs), expected)


# ------------------------------------------------------------------------------ the checks

OUTFLOWS = frozenset({"spent", "redeemed", "clawed_back", "exchanged_out", "expired",
                      "written_off"})


def expected_totals(w: Walk, period: int) -> dict[str, dict[tuple[str, str, int], int]]:
    """Per currency, the signed sums per (payer, payee, category) of one period: the flows
    of the legs, agreed prices in place of the value of priced points, and commission."""
    found: dict[str, dict[tuple[str, str, int], int]] = defaultdict(lambda: defaultdict(int))
    for (p, currency, payer, payee, category), amount in w.flows.items():
        if p == period:
            found[currency][payer, payee, category] += amount
    for key, (points, value) in w.priced.items():
        p, currency, payer, payee, category, _, _, micros, bps = key
        if p == period:
            agreed = half_up(Fraction(points * micros * bps, MICROS * BPS))
            found[currency][payer, payee, category] += agreed - value
    for key, base in w.bases.items():
        p, currency, issuer, acquirer, _, _, bps, paid_by = key
        if p == period:
            pair = (issuer, acquirer) if paid_by == Payer.ISSUER else (acquirer, issuer)
            found[currency][(*pair, Category.COMMISSION)] += half_up(Fraction(base * bps, BPS))
    return found


Plain = dict[tuple[str, str], dict[str, Any]]


def expected_statements(totals: dict[str, dict[tuple[str, str, int], int]]) -> Plain:
    owed: dict[tuple[str, str, str, int], int] = defaultdict(int)
    for currency, sums in totals.items():
        for (payer, payee, category), amount in sums.items():
            if amount > 0:
                owed[currency, payer, payee, category] += amount
            elif amount < 0:  # more came back than went: owed the other way round
                owed[currency, payee, payer, category] -= amount
    books: dict[tuple[str, str], dict[tuple[str, int], list[int]]] = defaultdict(
        lambda: defaultdict(lambda: [0, 0]))
    for (currency, debtor, creditor, category), amount in owed.items():
        books[currency, debtor][creditor, category][1] += amount
        books[currency, creditor][debtor, category][0] += amount
    found: Plain = {}
    for key, lines in books.items():
        bilateral: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for (counterparty, _), (receivable, payable) in lines.items():
            bilateral[counterparty][0] += receivable
            bilateral[counterparty][1] += payable
        receivable = sum(r for r, _ in bilateral.values())
        payable = sum(p for _, p in bilateral.values())
        found[key] = {
            "lines": {k: tuple(v) for k, v in lines.items()},
            "bilateral": {c: (r, p, r - p) for c, (r, p) in bilateral.items()},
            "gross": (receivable, payable, receivable - payable)}
    return found


def as_plain(found: Any) -> Plain:
    return {(s.currency, s.entity_id): {
        "lines": {(line.counterparty_id, int(line.category)):
                  (line.receivable_minor, line.payable_minor) for line in s.lines},
        "bilateral": {b.counterparty_id: (b.receivable_minor, b.payable_minor, b.net_minor)
                      for b in s.bilateral},
        "gross": (s.gross_receivable_minor, s.gross_payable_minor, s.multilateral_net_minor)}
        for s in found.statements}


def check_periods(world: World, traffic: Traffic, w: Walk) -> None:
    known = periods(world.settlement)
    assert [p.period_id for p in known] == list(range(1, w.periods + 1))
    assert [p.position for p in known[:-1]] == w.close_positions
    closed = [period for _, _, period in traffic.closes]
    assert len(set(closed)) == len(closed) and all(1 <= p < w.periods for p in closed)
    for request_id, (sent, answered) in traffic.times.items():
        found = w.period_of_request.get(request_id)
        if not found:
            continue  # declined, or a movement without legs
        assert len(found) == 1, (request_id, found)  # one commit: never split by a close
        (period,) = found
        for close_sent, close_answered, closed_period in traffic.closes:
            if answered < close_sent:  # committed before the close was asked for
                assert period <= closed_period, (request_id, period, closed_period)
            if sent > close_answered:  # asked for after the close was done
                assert period > closed_period, (request_id, period, closed_period)


def check_statements(world: World, w: Walk) -> None:
    for period in range(1, w.periods + 1):
        found, instructions = period_statements(world.settlement, period)
        assert as_plain(found) == expected_statements(expected_totals(w, period)), period
        nets: dict[str, dict[str, int]] = defaultdict(dict)
        for s in found.statements:
            nets[s.currency][s.entity_id] = s.multilateral_net_minor
            assert s.multilateral_net_minor == sum(b.net_minor for b in s.bilateral)
            for b in s.bilateral:
                other = found.statement(s.currency, b.counterparty_id)
                assert other is not None
                mirror = {x.counterparty_id: x.net_minor for x in other.bilateral}
                assert mirror[s.entity_id] == -b.net_minor, (period, s.entity_id, b)
        for currency, by_entity in nets.items():
            assert sum(by_entity.values()) == 0, (period, currency, by_entity)
            settled: dict[str, int] = defaultdict(int)
            pairs = set()
            for i in instructions:
                if i.currency == currency:
                    settled[i.payer_id] -= i.amount_minor
                    settled[i.payee_id] += i.amount_minor
                    pairs.add((i.payer_id, i.payee_id))
            movers = {e: n for e, n in by_entity.items() if n}
            assert {e: n for e, n in settled.items() if n} == movers, (period, currency)
            assert len(pairs) <= max(0, len(movers) - 1)
        if period < w.periods:  # a closed period read through a server: the same digest
            client = world.clients[period % 2]
            reply = client.settlement.GetSettlementStatement(
                pb.GetSettlementStatementRequest(period_id=period),
                metadata=metadata(world.tokens["finance"]), timeout=60)
            assert reply.closed and reply.digest == found.digest(), period


def check_roll_forward(world: World, w: Walk) -> None:
    report = roll_forward(world.finance, min(w.days), max(w.days))
    sv_closing: dict[tuple[str, str], int] = defaultdict(int)
    points_closing: dict[str, int] = defaultdict(int)
    for card in w.cards.values():
        sv_closing[card.issuer, card.currency] += card.available + card.held
        own = PROGRAM_OF.get(card.issuer, "")
        for lot in card.state.lots.values() if card.state is not None else ():
            points_closing[lot.program or own] += lot.remaining
    found_sv = {(r.entity_id, r.currency): r for r in report if r.kind == "STORED_VALUE"}
    found_points = {r.entity_id: r for r in report if r.kind == "POINTS"}
    assert set(found_sv) == {k for k, v in w.sv_lines.items() if any(v.values())}
    assert set(found_points) == {k for k, v in w.points_lines.items() if any(v.values())}
    for expected_lines, closing, found in (
            *((w.sv_lines[k], sv_closing[k], r) for k, r in found_sv.items()),
            *((w.points_lines[k], points_closing[k], r) for k, r in found_points.items())):
        lines = dict(found.lines)
        assert found.opening == 0 and found.closing == closing, (found, closing)
        assert found.opening + sum(-a if line in OUTFLOWS else a
                                   for line, a in lines.items()) == found.closing, found
        for line, amount in expected_lines.items():
            assert lines[line] == amount, (found.entity_id, line, lines, dict(expected_lines))


def check_cards(world: World, traffic: Traffic, w: Walk) -> None:
    by_number = {card.number: card for card in w.cards.values()}
    for number, issuer, _ in traffic.cards:
        state = by_number[number].state
        assert state is not None
        purses: dict[str, int] = defaultdict(int)
        for lot in state.lots.values():
            purses[lot.program] += lot.remaining
        reply = world.clients[1].cards.GetCard(pb.GetCardRequest(card_number=number),
                                              metadata=metadata(world.tokens["admin"]),
                                              timeout=60)
        assert reply.result == R.APPROVED
        assert (reply.card.balance_minor, reply.card.held_minor) == (state.balance_minor,
                                                                     state.held_minor)
        assert {k: v for k, v in reply.card.purse_points.items() if v} == {
            k: v for k, v in purses.items() if v}, (number, issuer)


def check_everything(world: World, traffic: Traffic) -> Walk:
    w = walk(world.store)
    check_periods(world, traffic, w)
    check_statements(world, w)
    check_roll_forward(world, w)
    check_cards(world, traffic, w)
    return w


# ------------------------------------------------------------------------------ the tests


@settings(max_examples=12, deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(program=PROGRAM)
def test_random_traffic_through_two_servers_keeps_every_invariant(world: World,
                                                                  program: Any) -> None:
    traffic = Traffic(world)
    traffic.issue_cards()
    traffic.play(program)
    check_everything(world, traffic)


# Every kind of operation at least once, both servers closing, a race on each program: so
# that every category the checks recompute is known to occur (the random programs may miss
# some), whatever order the tests run in.
FIXED = [
    (("spend", "t_a1", 0, 1_000, "full"), ("spend", "t_s1", 2, 800, "part")),  # P1<->P2 SV
    (("spend", "t_s9", 0, 500, "full"), ("spend", "t_s1", 5, 700, "full")),  # store entity, EUR
    (("buy", "t_f1", 0, 2_000, True, 300), ("buy", "t_a1", 1, 1_500, False, 200)),  # priced
    (("refund", 0, 300), ("close",)),
    (("exchange", "t_a1", 0, False, 600), ("exchange", "t_s1", 2, False, 400)),
    (("exchange", "t_s1", 0, True, 100), ("return", 1, 1)),
    ("race", 0, "t_s1", "t_a1", 80),
    ("race", 2, "t_a1", "t_s1", 100),
    ("drain", 5, "t_h1", "t_s9", 60),
    (("close",), ("close",)),
    (("spend", "t_h1", 3, 900, "void"), ("load", 4, 1_000)),
]


def test_a_program_with_every_kind_keeps_every_invariant(world: World) -> None:
    traffic = Traffic(world)
    traffic.issue_cards()
    traffic.play(FIXED)
    w = check_everything(world, traffic)
    categories = {key[4] for key in w.flows}
    assert categories >= {Category.SV_SPENT_ACROSS, Category.POINTS_REDEEMED_ACROSS,
                          Category.POINTS_ISSUED_ACROSS, Category.EXCHANGE, Category.FEE}
    assert w.bases and w.priced and w.exchanges >= 2 and w.periods >= 4
    assert {key[1] for key in w.flows} == {"USD", "EUR"}
    assert any("S9" in key[2:4] for key in w.flows)
