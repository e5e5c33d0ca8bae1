"""Model-based test of purchases, returns and points expiry on one card (pure domain code).

One active, loaded card under a points program drawn by hypothesis (point value, vesting,
expiry policy, timezone; the default WRITE_OFF clawback policy) goes through a random sequence
of purchases (earning points, redeeming points, charging stored value, partially or not),
returns (partial, repeated, sometimes too many), loads, the passing of time and the recording
of expired points. Only approved decisions' events are applied, with `evolve`.

The model below is plain ints and dicts written for this test: per lot its amount and
remainder, per purchase what it charged, redeemed (lot by lot) and earned and what its returns
gave back so far. It predicts every decision's outcome and each return's shares (cumulative,
so they sum exactly to what the purchase took), and after every step:

1. every lot's remainder equals the model's and stays within 0..amount; the card's spendable,
   pending and expired-but-unrecorded points together are the sum of the remainders, which is
   earned - redeemed + restored - clawed - expired;
2. points never go below zero: a return claws back from the purchase's own lot, then from the
   other live lots, and writes off only what no live lot still had; clawed + written off never
   exceeds what the purchase earned, restored never exceeds what it took from each lot; once a
   purchase is fully returned every tender and every point is given back or taken back exactly;
3. stored value is never negative and every event's legs sum to zero (the ledger agrees with
   the card).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hypothesis import HealthCheck, Phase, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
)

from domain import postings
from domain.cards import events as ev
from domain.cards.decide import CardState, evolve
from domain.cards.retention import RETURN_WINDOW_US
from domain.common import APPROVALS, Meta, Result, Role
from domain.points import purse
from domain.points.program import DAY_US, Program
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.purchases.decide import (
    Evaluation,
    PurchaseContext,
    decide_purchase,
    decide_return,
    expired_points,
)
from domain.rules.model import Line

CARD = "6277000000000011"  # Luhn-valid
ISSUER = "P1"
ACQUIRER = "P2"
STORE = "S1"
CURRENCY = "EUR"
T0 = 1_700_000_000_000_000
HOUR_US = 3_600 * 1_000_000
RULE_SETS = ("rs@1",)
UNKNOWN_PURCHASE = f"{CARD}.999999"

AVAILABLE_ACCOUNT = postings.available(CARD)
CLEARING_ACCOUNT = postings.clearing(ISSUER, ACQUIRER)
FUNDING_ACCOUNT = postings.funding(ISSUER)


# ------------------------------------------------------------------------------ the model


@dataclass
class ModelLot:
    amount: int
    remaining: int
    earned_at: int
    vests_at: int
    expires_at: int

    def live(self, now: int) -> bool:
        """Can a return claw from it: something left and not expired."""
        return self.remaining > 0 and now < self.expires_at

    def spendable(self, now: int) -> bool:
        return self.remaining > 0 and self.vests_at <= now < self.expires_at


@dataclass
class ModelPurchase:
    lines: list[tuple[int, int]]  # (quantity, unit price)
    sv_charged: int
    taken: dict[str, int]  # points redeemed, by lot
    earned: int
    lot_id: str  # "" when nothing was earned
    qualifying: int  # eligible spend
    returned: list[int] = field(default_factory=list)
    sv_refunded: int = 0
    restored: Counter[str] = field(default_factory=Counter)
    clawed: int = 0  # from lots
    written_off: int = 0
    qualifying_returned: int = 0
    points_legs: Counter[str] = field(default_factory=Counter)  # the purchase's and returns'
    made_at: int = 0  # when: a return is refused a year after (retention.RETURN_WINDOW_US)

    @property
    def redeemed(self) -> int:
        return sum(self.taken.values())

    def weight(self, index: int, quantity: int) -> int:
        """By value; by quantity when the whole basket was free."""
        by_value = any(price for _, price in self.lines)
        return quantity * self.lines[index][1] if by_value else quantity

    def progress(self, returning: dict[int, int]) -> tuple[int, int, int]:
        total = sum(self.weight(i, q) for i, (q, _) in enumerate(self.lines))
        before = sum(self.weight(i, q) for i, q in enumerate(self.returned))
        after = before + sum(self.weight(i, q) for i, q in returning.items())
        return before, after, total

    @property
    def fully_returned(self) -> bool:
        return all(r == q for r, (q, _) in zip(self.returned, self.lines, strict=True))


def share(amount: int, before: int, after: int, total: int) -> int:
    """The cumulative share: what the purchase returned so far owes, less what was given."""
    return amount * after // total - amount * before // total


@dataclass
class Model:
    balance: int = 0
    loads: int = 0
    version: int = 0
    lots: dict[str, ModelLot] = field(default_factory=dict)
    purchases: dict[str, ModelPurchase] = field(default_factory=dict)
    earned: int = 0
    redeemed: int = 0
    restored: int = 0
    clawed: int = 0
    expired: int = 0
    written_off: int = 0

    def spendable(self, now: int) -> int:
        return sum(lot.remaining for lot in self.lots.values() if lot.spendable(now))

    @property
    def points(self) -> int:
        return self.earned - self.redeemed + self.restored - self.clawed - self.expired

    def move(self, lot_id: str, delta: int, what: str) -> None:
        lot = self.lots[lot_id]
        lot.remaining += delta
        assert 0 <= lot.remaining <= lot.amount, (
            f"{what} leaves lot {lot_id} with {lot.remaining} of {lot.amount} points")


# ------------------------------------------------------------------------------ the driver


class Run:
    def __init__(self, program: Program, first_load: int) -> None:
        self.program = program
        self.now = T0
        self.request_no = 0
        self.model = Model()
        self.ledger: Counter[str] = Counter()
        self.state: CardState | None = None
        self._apply((ev.CardIssued(self._meta(), CARD, "STANDARD", CURRENCY, ISSUER, STORE, "c"),
                     ev.CardActivated(self._meta(), "sold")))
        if first_load:
            self.load(first_load)

    @property
    def card(self) -> CardState:
        assert self.state is not None
        return self.state

    def _meta(self) -> Meta:
        self.request_no += 1
        return Meta(f"req-{self.request_no}", "cred-t1", int(Role.TERMINAL), ACQUIRER, STORE,
                    "T1", self.now)

    def _apply(self, events: tuple[ev.CardEvent, ...]) -> None:
        for event in events:
            legs = getattr(event, "legs", ())
            assert postings.is_balanced(legs), f"unbalanced legs in {type(event).__name__}"
            assert sum(leg.amount_minor for leg in legs) == 0
            for leg in legs:
                self.ledger[leg.account] += leg.amount_minor
            self.state = evolve(self.state, event)
            self.model.version += 1
            assert self.state.version == self.model.version

    # --- steps ----------------------------------------------------------------------------

    def load(self, amount: int) -> None:
        self._apply((ev.ValueLoaded(self._meta(), amount, "psp", postings.move(
            FUNDING_ACCOUNT, AVAILABLE_ACCOUNT, amount)),))
        self.model.balance += amount
        self.model.loads += amount

    def advance(self, days: int, hours: int) -> None:
        self.now += days * DAY_US + hours * HOUR_US

    def expire(self) -> None:
        events = expired_points(self.card, self.now, self._meta())
        due = {lot_id: lot.remaining for lot_id, lot in self.model.lots.items()
               if lot.remaining > 0 and lot.expires_at <= self.now}
        assert {e.lot_id: e.amount for e in events} == due
        assert len(events) == len(due)  # a lot expires once
        if events:
            note("points expired")
        for lot_id, amount in due.items():
            self.model.move(lot_id, -amount, "expiry")
            self.model.expired += amount
        self._apply(events)
        assert expired_points(self.card, self.now, self._meta()) == ()

    def purchase(self, lines_spec: list[tuple[int, int]], earn: int, discount_eighths: int,
                 redeem: tuple[str, int], tender: tuple[str, int], allow_partial: bool) -> None:
        model, program = self.model, self.program
        lines = tuple(Line(f"sku{i}", "food", q, p) for i, (q, p) in enumerate(lines_spec))
        total = sum(q * p for q, p in lines_spec)
        discount = total * discount_eighths // 8  # a member discount the rules gave
        due = total - discount  # what is paid, and eligible spend
        spendable = model.spendable(self.now)
        points = redeem[1] if redeem[0] == "points" else spendable * redeem[1] // 8
        value = points * program.point_value_micros // 1_000_000
        rest = due - value
        sv = tender[1] if tender[0] == "minor" else max(rest, 0) * tender[1] // 8
        cmd = Purchase(CARD, CURRENCY, lines, sv, allow_partial, points, "", "rcpt")
        cmd.validate()

        # What the model says should happen.
        expected, charged = Result.APPROVED, sv
        if points and value > due:
            expected = Result.DECLINED_TENDER_EXCEEDS_DUE
        elif points > spendable:
            expected = Result.DECLINED_INSUFFICIENT_POINTS
        elif sv > rest:
            expected = Result.DECLINED_TENDER_EXCEEDS_DUE
        elif sv > model.balance:
            if allow_partial and model.balance > 0:
                expected, charged = Result.PARTIALLY_APPROVED, model.balance
            else:
                expected = Result.DECLINED_INSUFFICIENT_FUNDS

        ctx = PurchaseContext(self._meta(), self.now, ACQUIRER, program,
                              Evaluation(earn, due, RULE_SETS, (), discount), 0, 600)
        decision = decide_purchase(self.card, cmd, ctx)
        assert decision.result == expected, (decision.result, expected, decision.reason)
        note(f"purchase {expected.name}")
        if expected not in APPROVALS:
            assert decision.event is None
            return
        e = decision.event
        assert e is not None
        purchase_id = f"{CARD}.{model.version + 1}"
        assert e.purchase_id == purchase_id
        assert (e.total_minor, e.discount_minor, e.sv_charged_minor, e.points_redeemed,
                e.points_redeemed_value_minor, e.other_tender_minor, e.qualifying_minor) == (
            total, discount, charged, points, value, rest - charged, due)
        owner = program.owner
        earned_value = earn * program.point_value_micros // 1_000_000
        assert e.legs == ((postings.move(AVAILABLE_ACCOUNT, CLEARING_ACCOUNT, charged)
                           if charged else ())
                          + (postings.move(postings.points_outstanding(owner),
                                           postings.points_redeemed(owner, ACQUIRER), value)
                             if value else ())
                          + (postings.move(postings.points_sold(ACQUIRER, owner),
                                           postings.points_outstanding(owner), earned_value)
                             if earned_value else ()))

        # Redemption: exactly the points asked, from spendable lots, earliest expiry first.
        assert sum(p for _, p in e.redeemed) == points
        assert len({lot_id for lot_id, _ in e.redeemed}) == len(e.redeemed)
        if len(e.redeemed) > 1:
            note("redeemed from several lots")
        order = sorted((lot_id for lot_id, lot in model.lots.items()
                        if lot.spendable(self.now)),
                       key=lambda i: (model.lots[i].expires_at, model.lots[i].earned_at, i))
        assert [lot_id for lot_id, _ in e.redeemed] == order[:len(e.redeemed)]
        for lot_id, taken in e.redeemed:
            assert taken > 0
            model.move(lot_id, -taken, "a redemption")
        assert all(model.lots[i].remaining == 0 for i, _ in e.redeemed[:-1])
        model.redeemed += points

        # Earning: one lot of exactly the evaluation's points, vesting before it expires.
        if earn > 0:
            lot = e.lot
            assert lot is not None
            expires = purse.expires_at_us(self.now, program.expiry)
            assert (lot.lot_id, lot.amount, lot.remaining, lot.earned_at_us,
                    lot.expires_at_us) == (purchase_id, earn, earn, self.now, expires)
            assert lot.vests_at_us == min(self.now + program.vesting_days * DAY_US, expires - 1)
            assert self.now <= lot.vests_at_us < lot.expires_at_us
            model.lots[purchase_id] = ModelLot(earn, earn, self.now, lot.vests_at_us, expires)
            model.earned += earn
        else:
            assert e.lot is None and e.awards == ()
        assert e.debt_settled == 0
        model.balance -= charged
        model.purchases[purchase_id] = ModelPurchase(
            list(lines_spec), charged, dict(e.redeemed), earn, purchase_id if earn else "", due,
            [0] * len(lines_spec), made_at=self.now)
        for leg in e.legs:
            if leg.account.startswith("points"):
                model.purchases[purchase_id].points_legs[leg.account] += leg.amount_minor
        self._apply((e,))

    def _pick(self, pick: int, prefer: str) -> str:
        """A purchase id: preferably one not fully returned that redeemed points from several
        lots (or redeemed, or earned points), else any; now and then (or when there is none)
        one the card never saw."""
        if pick == 0 or not self.model.purchases:
            return UNKNOWN_PURCHASE
        wanted = {"several": lambda m: len(m.taken) > 1, "redeemed": lambda m: m.redeemed,
                  "earned": lambda m: m.earned, "any": lambda m: True}[prefer]
        preferred = [i for i, m in self.model.purchases.items()
                     if not m.fully_returned and wanted(m)]
        choices = preferred or list(self.model.purchases)
        return choices[pick % len(choices)]

    def return_(self, pick: int, prefer: str, specs: list[tuple[int, int]]) -> None:
        model = self.model
        purchase_id = self._pick(pick, prefer)
        if purchase_id == UNKNOWN_PURCHASE:
            decision = decide_return(self.card, Return(purchase_id, (ReturnLine(0, 1),), "r"),
                                     self._meta(), self.now, self.program)
            assert decision.result == Result.DECLINED_PURCHASE_NOT_FOUND
            assert decision.events == ()
            return
        record = model.purchases[purchase_id]
        returning: dict[int, int] = {}
        for line_pick, how_many in specs:  # how_many 0 = the rest of the line (or 1 if none)
            index = line_pick % len(record.lines)
            left = record.lines[index][0] - record.returned[index]
            returning.setdefault(index, how_many or left or 1)
        cmd = Return(purchase_id, tuple(ReturnLine(i, q) for i, q in returning.items()),
                     "changed mind")
        cmd.validate()
        decision = decide_return(self.card, cmd, self._meta(), self.now, self.program)
        if self.now >= record.made_at + RETURN_WINDOW_US:  # the card may have let it go
            assert decision.result == Result.DECLINED_RETURN_WINDOW_CLOSED, decision.result
            assert decision.events == ()
            note("return DECLINED_RETURN_WINDOW_CLOSED")
            return
        if any(record.returned[i] + q > record.lines[i][0] for i, q in returning.items()):
            assert decision.result == Result.DECLINED_RETURN_EXCEEDS_PURCHASE
            assert decision.events == ()
            note("return DECLINED_RETURN_EXCEEDS_PURCHASE")
            return
        assert decision.result == Result.APPROVED, decision.result
        assert len(decision.events) == 1
        e = decision.events[0]
        assert isinstance(e, ev.PurchaseReturned)
        assert e.purchase_id == purchase_id
        assert e.lines == tuple(returning.items())

        before, after, total = record.progress(returning)
        sv = share(record.sv_charged, before, after, total)
        restore = share(record.redeemed, before, after, total)
        claw = share(record.earned, before, after, total)
        restored = sum(p for _, p in e.points_restored)
        clawed = sum(p for _, p in e.points_clawed)
        assert e.sv_refunded_minor == sv
        assert e.qualifying_minor_returned == share(record.qualifying, before, after, total)
        assert decision.approved_amount_minor == sv
        sv_legs = tuple(leg for leg in e.legs if not leg.account.startswith("points"))
        assert sv_legs == (postings.move(CLEARING_ACCOUNT, AVAILABLE_ACCOUNT, sv) if sv else ())
        assert postings.is_balanced(e.legs)
        for leg in e.legs:
            if leg.account.startswith("points"):
                record.points_legs[leg.account] += leg.amount_minor
        if after == total:  # returned in full: what the points legs said is undone exactly
            owner = self.program.owner
            lost = record.points_legs[postings.points_written_off(owner)]
            assert record.points_legs[postings.points_sold(ACQUIRER, owner)] == 0
            assert record.points_legs[postings.points_redeemed(owner, ACQUIRER)] == 0
            assert record.points_legs[postings.points_outstanding(owner)] == -lost
            note("points legs undone by a full return")
        assert restored == restore, (restored, restore)
        assert e.points_written_off >= 0
        assert e.points_debt_added == 0  # WRITE_OFF: the card never owes points
        assert clawed + e.points_written_off == claw, (clawed, e.points_written_off, claw)

        # Restored points go back to the lots the purchase took them from, never more than
        # each lot gave.
        for lot_id, points in e.points_restored:
            assert points > 0
            assert record.restored[lot_id] + points <= record.taken.get(lot_id, 0), (
                f"return restores {record.restored[lot_id] + points} points in total to lot "
                f"{lot_id}, which gave the purchase {record.taken.get(lot_id, 0)} "
                f"(took {record.taken})")
            record.restored[lot_id] += points
        if len(e.points_restored) > 1:
            note("restored to several lots")

        # Clawed points: own lot first, then other live lots earliest expiry first, counting
        # the points this return restores (they are put back first); written off only what
        # no live lot had.
        giving_back = dict(e.points_restored)
        live_before = {i: lot.remaining + giving_back.get(i, 0) for i, lot in model.lots.items()
                       if self.now < lot.expires_at and lot.remaining + giving_back.get(i, 0)}
        takes = dict(e.points_clawed)
        assert len(takes) == len(e.points_clawed)
        for lot_id, points in takes.items():
            assert 0 < points <= live_before.get(lot_id, 0), (
                f"clawed {points} from lot {lot_id} with {live_before.get(lot_id, 0)} live")
        own = min(claw, live_before.get(record.lot_id, 0))
        assert takes.get(record.lot_id, 0) == own, (takes, record.lot_id, own)
        others = sorted((i for i in live_before if i != record.lot_id),
                        key=lambda i: (model.lots[i].expires_at, model.lots[i].earned_at, i))
        touched = [i for i in others if i in takes]
        assert touched == others[:len(touched)]
        assert all(takes[i] == live_before[i] for i in touched[:-1])
        assert restored == 0 or e.points_written_off == 0 or clawed == sum(
            live_before.values())  # never written off while restored points could pay
        if e.points_written_off:
            assert clawed == sum(live_before.values()), (
                f"wrote off {e.points_written_off} while live lots held "
                f"{sum(live_before.values())} and only {clawed} were clawed")
            note("return wrote points off")
            if restored:
                note("return restored and wrote off at once")
        for lot_id, points in e.points_restored:
            model.move(lot_id, points, "a restore")
        for lot_id, points in e.points_clawed:
            model.move(lot_id, -points, "a claw-back")

        for i, q in returning.items():
            record.returned[i] += q
        record.sv_refunded += sv
        record.clawed += clawed
        record.written_off += e.points_written_off
        record.qualifying_returned += e.qualifying_minor_returned
        model.balance += sv
        model.restored += restored
        model.clawed += clawed
        model.written_off += e.points_written_off
        note("return fully" if record.fully_returned else "return partly")
        self._apply((e,))

    # --- invariants -----------------------------------------------------------------------

    def check(self) -> None:
        card, model, now = self.card, self.model, self.now
        # 1. points: the lots' remainders
        # Lots with points left are all there; a spent one only while a kept purchase redeemed
        # from it (a return may put points back): domain.cards.retention.
        named = {lot_id for r in card.purchases.values() for lot_id, _ in r.redeemed}
        assert {k for k, lot in model.lots.items() if lot.remaining} <= set(card.lots)
        assert named <= set(card.lots)
        assert set(card.lots) <= {k for k, lot in model.lots.items() if lot.remaining} | named
        for lot_id, lot in card.lots.items():
            assert 0 <= lot.remaining <= lot.amount, lot
            assert lot.remaining == model.lots[lot_id].remaining, (lot_id, lot)
        remainders = sum(lot.remaining for lot in card.lots.values())
        assert remainders == model.points
        unrecorded = sum(lot.remaining for lot in card.lots.values() if lot.expires_at_us <= now)
        assert (purse.spendable(card.purse, now) + purse.pending(card.purse, now) + unrecorded
                == remainders)
        assert purse.spendable(card.purse, now) == model.spendable(now)
        # 2. purchases: nothing given back or taken back beyond the purchase
        assert card.points_written_off == model.written_off
        assert card.points_debt == 0
        # Purchases a return may still name are kept; older ones leave at the card's next
        # purchase or return (domain.cards.retention), never before their year is out.
        returnable = {p for p, m in model.purchases.items()
                      if now < m.made_at + RETURN_WINDOW_US}
        assert returnable <= set(card.purchases) <= set(model.purchases)
        for purchase_id, record in card.purchases.items():
            m = model.purchases[purchase_id]
            assert record.returned == m.returned
            assert (record.sv_charged_minor, record.points_redeemed, record.points_earned) == (
                m.sv_charged, m.redeemed, m.earned)
            assert (record.sv_refunded_minor, record.points_restored, record.points_clawed) == (
                m.sv_refunded, sum(m.restored.values()), m.clawed + m.written_off)
            assert (record.qualifying_minor, record.qualifying_returned) == (
                m.qualifying, m.qualifying_returned)
            assert 0 <= record.sv_refunded_minor <= record.sv_charged_minor
            assert 0 <= record.points_restored <= record.points_redeemed
            assert 0 <= record.points_clawed <= record.points_earned
            if m.fully_returned:
                assert record.sv_refunded_minor == record.sv_charged_minor
                assert record.points_restored == record.points_redeemed
                assert dict(m.restored) == {i: p for i, p in m.taken.items() if p}
                assert record.points_clawed == record.points_earned
                assert record.qualifying_returned == record.qualifying_minor
        # 3. stored value and the ledger
        assert card.balance_minor == model.balance >= 0
        assert card.held_minor == 0 and card.available_minor >= 0
        assert sum(self.ledger.values()) == 0
        assert self.ledger[AVAILABLE_ACCOUNT] == card.balance_minor
        assert self.ledger[FUNDING_ACCOUNT] == -model.loads
        assert self.ledger[CLEARING_ACCOUNT] == sum(
            m.sv_charged - m.sv_refunded for m in model.purchases.values())


# ------------------------------------------------------------------------------ the machine

EXPIRIES = st.one_of(
    st.tuples(st.just(ExpiryKind.MONTHS_AFTER), st.integers(1, 3)),
    st.tuples(st.just(ExpiryKind.END_OF_MONTH), st.integers(0, 1)),
    st.tuples(st.just(ExpiryKind.NEVER), st.just(0)),
)


@st.composite
def programs(draw: st.DrawFn) -> Program:
    kind, n = draw(EXPIRIES)
    return Program(ISSUER, CURRENCY, draw(st.sampled_from([10_000, 250_000, 1_000_000,
                                                           3_333_333])),
                   int(kind), n, draw(st.sampled_from(["UTC", "Europe/Paris"])),
                   draw(st.sampled_from([0, 0, 2, 14])))


PRICES = st.one_of(st.integers(1, 3_000), st.integers(1, 3_000), st.just(0))  # some free
LINES = st.lists(st.tuples(st.integers(1, 4), PRICES), min_size=1, max_size=4)
# A member discount of k/8 of the basket, mostly none.
DISCOUNT = st.one_of(st.just(0), st.just(0), st.integers(1, 8))
# Points to redeem: none, a number, or k/8 of what is spendable (9/8: more than there is).
REDEEM = st.one_of(st.just(("points", 0)), st.tuples(st.just("points"), st.integers(1, 600)),
                   st.tuples(st.just("share"), st.integers(1, 9)),
                   st.tuples(st.just("share"), st.integers(1, 8)))
# Stored value: k/8 of what is left to pay after points (9/8: more than due), or a number.
TENDER = st.one_of(st.tuples(st.just("share"), st.integers(0, 9)),
                   st.tuples(st.just("share"), st.integers(0, 8)),
                   st.tuples(st.just("minor"), st.integers(0, 5_000)))


PREFER = st.sampled_from(["several", "redeemed", "earned", "any"])
# (line, quantity) pairs; quantity 0 = the rest of the line
RETURN_LINES = st.lists(st.tuples(st.integers(0, 3), st.sampled_from([0, 1, 1, 2, 3])),
                        min_size=1, max_size=3)


class PurchaseMachine(RuleBasedStateMachine):
    run: Run

    @initialize(program=programs(), first_load=st.integers(0, 30_000))
    def start(self, program: Program, first_load: int) -> None:
        self.run = Run(program, first_load)

    @rule(lines=LINES, earn=st.integers(0, 500), discount=DISCOUNT, redeem=REDEEM,
          tender=TENDER, allow_partial=st.booleans())
    def purchase(self, lines: list[tuple[int, int]], earn: int, discount: int,
                 redeem: tuple[str, int], tender: tuple[str, int], allow_partial: bool) -> None:
        self.run.purchase(lines, earn, discount, redeem, tender, allow_partial)

    @rule(lines=LINES, earn=st.integers(1, 500), redeem_eighths=st.integers(1, 8),
          tender_eighths=st.integers(0, 8))
    def purchase_with_points(self, lines: list[tuple[int, int]], earn: int,
                             redeem_eighths: int, tender_eighths: int) -> None:
        """The common case, drawn more often: pay part with points and stored value, earn."""
        self.run.purchase(lines, earn, 0, ("share", redeem_eighths), ("share", tender_eighths),
                          True)

    @rule(pick=st.integers(0, 50), prefer=PREFER, specs=RETURN_LINES)
    def give_back(self, pick: int, prefer: str, specs: list[tuple[int, int]]) -> None:
        self.run.return_(pick, prefer, specs)

    @rule(prefer=PREFER, specs=RETURN_LINES)
    def give_back_the_latest(self, prefer: str, specs: list[tuple[int, int]]) -> None:
        """Another return of the latest purchase still open: returns of one basket in steps."""
        self.run.return_(-1, prefer, specs)

    @rule(days=st.sampled_from([0, 1, 3, 7, 15, 31, 61]), hours=st.integers(0, 23),
          then_expire=st.booleans())
    def advance_time(self, days: int, hours: int, then_expire: bool) -> None:
        """Time passes; like the writer before a decision, maybe record what expired."""
        self.run.advance(days, hours)
        if then_expire:
            self.run.expire()

    @rule()
    def expire(self) -> None:
        self.run.expire()

    @rule(amount=st.integers(1, 20_000))
    def load(self, amount: int) -> None:
        self.run.load(amount)

    @invariant()
    def consistent(self) -> None:
        if hasattr(self, "run"):
            self.run.check()


PurchaseMachine.TestCase.settings = settings(
    max_examples=150,
    stateful_step_count=40,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # no slow "explain"
)
TestPurchaseModel = PurchaseMachine.TestCase
