"""Model-based test of one card: the domain's decide/evolve against a deliberately simple oracle.

The machine drives ONE active card through loads, authorizations, captures, voids, refunds,
reversals and the passing of time. The oracle below is plain ints and dicts written for this
test (it does not reuse any domain code): after every step the card's balance, held and
available value must equal the oracle's, and the double-entry legs of every event ever
emitted must add up to the same numbers and to zero overall.

Like the writer, every step first records the release of holds whose time is up.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import event as note
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from domain.cards import events as ev
from domain.cards import retention
from domain.cards.commands import Authorize, Capture, LoadValue, Refund, Void
from domain.cards.decide import (
    CardState,
    Context,
    Decision,
    Hold,
    HoldStatus,
    decide_authorize,
    decide_capture,
    decide_load,
    decide_refund,
    decide_reverse_authorize,
    decide_reverse_capture,
    decide_reverse_load,
    decide_void,
    evolve,
    expired_holds,
    held_at,
)
from domain.common import Meta, Result, Role

CARD = "6277000000000011"  # Luhn-valid
ISSUER = "P1"
ACQUIRER = "P2"
STORE = "S1"
T0 = 1_700_000_000_000_000
TTL = 600 * 1_000_000  # 10 minutes in microseconds
MAX_BALANCE = 10_000
UNKNOWN_AUTH = f"{CARD}.999999"

AVAILABLE_ACCOUNT = f"card:{CARD}:available"
HELD_ACCOUNT = f"card:{CARD}:held"

# The oracle's hold states.
PENDING, CAPTURED, VOIDED = "pending", "captured", "voided"
EXPIRED, REVERSED = "expired", "reversed"
# What the domain's HoldStatus numbers mean (the oracle keeps its own names).
DOMAIN_HOLD_STATUS = {1: PENDING, 2: CAPTURED, 3: VOIDED, 4: EXPIRED, 5: REVERSED}


def make_meta(request_no: int, at_us: int) -> Meta:
    return Meta(request_id=f"req-{request_no}", credential_id="cred-t1", role=int(Role.TERMINAL),
                partner_id=ACQUIRER, store_id=STORE, terminal_id="T1", recorded_at_us=at_us)


@dataclass
class OracleHold:
    amount: int
    expires_at: int
    status: str = PENDING
    captured: int = 0
    refunded: int = 0


class Oracle:
    """What a card should look like, the simple way."""

    def __init__(self) -> None:
        self.balance = 0
        self.holds: dict[str, OracleHold] = {}
        self.version = 2  # issued + activated

    @property
    def held(self) -> int:
        return sum(h.amount for h in self.holds.values() if h.status == PENDING)

    @property
    def available(self) -> int:
        return self.balance - self.held

    def expire(self, now: int) -> dict[str, int]:
        gone = {}
        for authorization_id, hold in self.holds.items():
            if hold.status == PENDING and hold.expires_at <= now:
                hold.status = EXPIRED
                gone[authorization_id] = hold.amount
        self.version += len(gone)
        return gone

    def load(self, amount: int) -> Result:
        if self.balance + amount > MAX_BALANCE:
            return Result.DECLINED_LIMIT_EXCEEDED
        self.balance += amount
        self.version += 1
        return Result.APPROVED

    def authorize(self, amount: int, allow_partial: bool, now: int) -> tuple[Result, str, int]:
        free = self.available
        if amount <= free:
            result, approved = Result.APPROVED, amount
        elif allow_partial and free > 0:
            result, approved = Result.PARTIALLY_APPROVED, free
        else:
            return Result.DECLINED_INSUFFICIENT_FUNDS, "", 0
        self.version += 1
        authorization_id = f"{CARD}.{self.version}"
        self.holds[authorization_id] = OracleHold(approved, now + TTL)
        return result, authorization_id, approved

    def capture(self, authorization_id: str, amount: int) -> tuple[Result, int]:
        hold = self.holds.get(authorization_id)
        if hold is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND, 0
        if hold.status != PENDING:
            return Result.DECLINED_AUTHORIZATION_NOT_PENDING, 0
        if amount > hold.amount:
            return Result.DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION, 0
        taken = amount if amount else hold.amount
        hold.status, hold.captured = CAPTURED, taken
        self.balance -= taken
        self.version += 1
        return Result.APPROVED, taken

    def let_go(self, authorization_id: str, status: str) -> tuple[Result, int]:
        """Void or reverse an authorization."""
        hold = self.holds.get(authorization_id)
        if hold is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND, 0
        if hold.status != PENDING:
            return Result.DECLINED_AUTHORIZATION_NOT_PENDING, 0
        hold.status = status
        self.version += 1
        return Result.APPROVED, hold.amount

    def refund(self, authorization_id: str, amount: int) -> Result:
        hold = self.holds.get(authorization_id)
        if hold is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND
        if hold.status != CAPTURED:
            return Result.DECLINED_AUTHORIZATION_NOT_PENDING
        if hold.refunded + amount > hold.captured:
            return Result.DECLINED_REFUND_EXCEEDS_CAPTURED
        hold.refunded += amount
        self.balance += amount
        self.version += 1
        return Result.APPROVED

    def reverse_capture(self, authorization_id: str) -> tuple[Result, int]:
        hold = self.holds.get(authorization_id)
        if hold is None:
            return Result.DECLINED_AUTHORIZATION_NOT_FOUND, 0
        if hold.status != CAPTURED or hold.refunded:
            return Result.DECLINED_AUTHORIZATION_NOT_PENDING, 0
        amount = hold.captured
        hold.status, hold.amount, hold.captured = PENDING, amount, 0
        self.balance += amount
        self.version += 1
        return Result.APPROVED, amount

    def reverse_load(self, amount: int) -> Result:
        if self.available < amount:
            return Result.DECLINED_INSUFFICIENT_FUNDS
        self.balance -= amount
        self.version += 1
        return Result.APPROVED


def _has_holds(machine: CardMachine) -> bool:
    return bool(machine.oracle.holds)


class CardMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.request_no = 0
        self.oracle = Oracle()
        self.ledger: Counter[str] = Counter()
        self.loads: list[int] = []
        self.state: CardState | None = None
        self._apply((ev.CardIssued(self._meta(), CARD, "STANDARD", "EUR", ISSUER, "S0", "c"),
                     ev.CardActivated(self._meta(), "sold")))

    # --- plumbing -----------------------------------------------------------------------

    def _meta(self) -> Meta:
        self.request_no += 1
        return make_meta(self.request_no, self.now)

    def _settled_long_ago(self, decision: Decision, authorization_id: str) -> Decision:
        """The ledger answers a Capture or Void of an authorization the card let go (settled)
        NOT_PENDING from the card's mark (ledger/handlers/cards.py), where the domain, which
        no longer holds it, says NOT_FOUND."""
        if (decision.result == Result.DECLINED_AUTHORIZATION_NOT_FOUND
                and retention.let_go(self.card.history.authorizations_dropped,
                                     authorization_id)):
            return Decision(Result.DECLINED_AUTHORIZATION_NOT_PENDING)
        return decision

    def _late(self, authorization_id: str) -> Hold | None:
        """What the ledger reads back from the card's stream (ledger/handlers/late.py) for an
        authorization the card let go from memory: here, the oracle's record of it."""
        h = self.oracle.holds.get(authorization_id)
        if authorization_id in self.card.holds or h is None:
            return None
        status = {v: k for k, v in DOMAIN_HOLD_STATUS.items()}[h.status]
        return Hold(authorization_id, h.amount, status, h.expires_at, STORE, ACQUIRER,
                    h.captured, h.refunded, h.expires_at - TTL)

    def _ctx(self) -> Context:
        return Context(self._meta(), self.now, MAX_BALANCE, TTL, ACQUIRER)

    def _apply(self, events: tuple[ev.CardEvent, ...]) -> None:
        for event in events:
            legs = getattr(event, "legs", ())
            assert sum(leg.amount_minor for leg in legs) == 0, type(event).__name__
            version = self.state.version if self.state is not None else 0
            self.state = evolve(self.state, event)
            assert self.state.version == version + 1
            assert self.state.balance_minor - self.state.held_minor >= 0
            for leg in legs:
                self.ledger[leg.account] += leg.amount_minor

    @property
    def card(self) -> CardState:
        assert self.state is not None
        return self.state

    def _expire(self) -> None:
        """What the writer does before every decision: release holds whose time is up."""
        assert held_at(self.card, self.now) == self.card.held_minor - sum(
            h.amount for h in self.oracle.holds.values()
            if h.status == PENDING and h.expires_at <= self.now)
        events = expired_holds(self.card, self.now, self._meta())
        expected = self.oracle.expire(self.now)
        if events:
            note("released EXPIRED")
        got = {e.authorization_id: e.amount_minor for e in events}  # type: ignore[attr-defined]
        assert got == expected
        assert all(e.reason == ev.RELEASE_EXPIRED for e in events)  # type: ignore[attr-defined]
        self._apply(events)
        assert held_at(self.card, self.now) == self.card.held_minor

    def _run(self, decision: Decision, expected: Result, amount: int | None = None) -> None:
        assert decision.result == expected, (decision, expected)
        note(expected.name)  # shown by --hypothesis-show-statistics
        if decision.events:
            note(type(decision.events[0]).__name__)
            for e in decision.events:
                if isinstance(e, ev.AuthorizationReleased):
                    note(f"released {e.reason}")
        if expected in (Result.APPROVED, Result.PARTIALLY_APPROVED):
            assert len(decision.events) == 1
            if amount is not None:
                assert decision.approved_amount_minor == amount
            self._apply(decision.events)
        else:
            assert decision.events == ()

    def _pick(self, pick: int, want: str | None) -> str:
        """An authorization id: preferably one in state `want`, else any; now and then (or
        when there is none) one the card never saw."""
        if pick == 0 or not self.oracle.holds:
            return UNKNOWN_AUTH
        preferred = [a for a, h in self.oracle.holds.items() if want and h.status == want]
        choices = preferred or list(self.oracle.holds)
        return choices[pick % len(choices)]

    # --- rules --------------------------------------------------------------------------

    @initialize(amount=st.integers(1, MAX_BALANCE))
    def first_load(self, amount: int) -> None:
        self.load(amount)

    @rule(amount=st.integers(1, 4_000))
    def load(self, amount: int) -> None:
        self._expire()
        decision = decide_load(self.card, LoadValue(CARD, amount, "EUR", "pay"), self._ctx())
        expected = self.oracle.load(amount)
        self._run(decision, expected, amount)
        if expected == Result.APPROVED:
            self.loads.append(amount)

    @rule(k=st.integers(0, 10**6), allow_partial=st.booleans())
    def authorize(self, k: int, allow_partial: bool) -> None:
        self._expire()
        # Mostly within what is available, sometimes beyond it.
        free = max(self.oracle.available, 0)
        amount = 1 + k % (free + free // 3 + 10)
        decision = decide_authorize(self.card, Authorize(CARD, amount, "EUR", allow_partial, ""),
                                    self._ctx())
        expected, authorization_id, approved = self.oracle.authorize(amount, allow_partial,
                                                                     self.now)
        self._run(decision, expected, approved if authorization_id else None)
        assert decision.authorization_id == authorization_id

    @precondition(_has_holds)
    @rule(pick=st.integers(0, 50), prefer_pending=st.booleans(),
          how=st.sampled_from(["whole", "exact", "partial", "over"]), k=st.integers(0, 10**6))
    def capture(self, pick: int, prefer_pending: bool, how: str, k: int) -> None:
        self._expire()
        authorization_id = self._pick(pick, PENDING if prefer_pending else None)
        hold = self.oracle.holds.get(authorization_id)
        held_amount = hold.amount if hold else 100
        amount = {"whole": 0, "exact": held_amount, "partial": 1 + k % held_amount,
                  "over": held_amount + 1 + k % 100}[how]
        decision = decide_capture(self.card, Capture(authorization_id, amount), self._ctx())
        decision = self._settled_long_ago(decision, authorization_id)
        expected, taken = self.oracle.capture(authorization_id, amount)
        self._run(decision, expected, taken if expected == Result.APPROVED else None)

    @precondition(_has_holds)
    @rule(pick=st.integers(0, 50), prefer_pending=st.booleans())
    def void(self, pick: int, prefer_pending: bool) -> None:
        self._expire()
        authorization_id = self._pick(pick, PENDING if prefer_pending else None)
        decision = decide_void(self.card, Void(authorization_id), self._ctx())
        decision = self._settled_long_ago(decision, authorization_id)
        expected, amount = self.oracle.let_go(authorization_id, VOIDED)
        self._run(decision, expected, amount if expected == Result.APPROVED else None)

    @precondition(_has_holds)
    @rule(pick=st.integers(0, 50), prefer_pending=st.booleans())
    def reverse_authorize(self, pick: int, prefer_pending: bool) -> None:
        self._expire()
        authorization_id = self._pick(pick, PENDING if prefer_pending else None)
        decision = decide_reverse_authorize(self.card, authorization_id, self._ctx())
        decision = self._settled_long_ago(decision, authorization_id)
        expected, amount = self.oracle.let_go(authorization_id, REVERSED)
        self._run(decision, expected, amount if expected == Result.APPROVED else None)

    @precondition(_has_holds)
    @rule(pick=st.integers(0, 50), prefer_captured=st.booleans(), k=st.integers(0, 10**6))
    def refund(self, pick: int, prefer_captured: bool, k: int) -> None:
        self._expire()
        authorization_id = self._pick(pick, CAPTURED if prefer_captured else None)
        hold = self.oracle.holds.get(authorization_id)
        room = (hold.captured - hold.refunded) if hold else 0
        amount = 1 + k % (room + 20)  # sometimes within what is left, sometimes beyond
        decision = decide_refund(self.card, Refund(authorization_id, amount), self._ctx(),
                                 self._late(authorization_id))
        expected = self.oracle.refund(authorization_id, amount)
        self._run(decision, expected, amount if expected == Result.APPROVED else None)

    @precondition(_has_holds)
    @rule(pick=st.integers(0, 50), prefer_captured=st.booleans())
    def reverse_capture(self, pick: int, prefer_captured: bool) -> None:
        self._expire()
        authorization_id = self._pick(pick, CAPTURED if prefer_captured else None)
        decision = decide_reverse_capture(self.card, authorization_id, self._ctx(),
                                          self._late(authorization_id))
        expected, amount = self.oracle.reverse_capture(authorization_id)
        self._run(decision, expected, amount if expected == Result.APPROVED else None)

    @rule(pick=st.integers(0, 50), k=st.integers(0, 10**6))
    def reverse_load(self, pick: int, k: int) -> None:
        """Reverse an earlier load (or, when there is none, some amount)."""
        self._expire()
        amount = self.loads[pick % len(self.loads)] if self.loads else 1 + k % 3_000
        decision = decide_reverse_load(self.card, f"load-{pick}", amount, self._ctx())
        expected = self.oracle.reverse_load(amount)
        self._run(decision, expected, amount if expected == Result.APPROVED else None)
        if expected == Result.APPROVED and amount in self.loads:
            self.loads.remove(amount)

    @rule(seconds=st.sampled_from([1, 60, 599, 600, 601, 1_200, 3_600]))
    def advance_time(self, seconds: int) -> None:
        self.now += seconds * 1_000_000
        self._expire()

    # --- invariants ---------------------------------------------------------------------

    @invariant()
    def matches_the_oracle(self) -> None:
        card = self.card
        assert card.balance_minor == self.oracle.balance
        assert card.held_minor == self.oracle.held
        assert card.available_minor == self.oracle.available
        assert card.available_minor >= 0
        assert card.version == self.oracle.version
        # Every hold the card keeps is the oracle's; it keeps every pending one and only its
        # latest few settled ones (domain.cards.retention; older ones stay in the stream).
        kept = {a: DOMAIN_HOLD_STATUS[h.status] for a, h in card.holds.items()}
        oracle = {a: h.status for a, h in self.oracle.holds.items()}
        assert kept.items() <= oracle.items()
        pending = DOMAIN_HOLD_STATUS[HoldStatus.PENDING]
        assert {a for a, s in oracle.items() if s == pending} <= set(kept)
        assert len(card.settled) <= retention.AUTHORIZATIONS_IN_MEMORY
        assert set(card.settled) == {a for a, s in kept.items() if s != pending}

    @invariant()
    def ledger_agrees(self) -> None:
        assert self.ledger[AVAILABLE_ACCOUNT] == self.oracle.available
        assert self.ledger[HELD_ACCOUNT] == self.oracle.held
        assert self.ledger[AVAILABLE_ACCOUNT] + self.ledger[HELD_ACCOUNT] == self.oracle.balance
        assert sum(self.ledger.values()) == 0
        # Captures less refunds (and capture reversals) are what the acquirer is owed.
        owed = sum(h.captured - h.refunded for h in self.oracle.holds.values())
        assert self.ledger[f"clearing:{ISSUER}:{ACQUIRER}"] == owed


CardMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCardModel = CardMachine.TestCase

