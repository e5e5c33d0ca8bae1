"""Model-based test of the whole engine: a real Ledger (decider + committer threads, SQLite)
driven by random POS traffic, compared with a plain-dict oracle after every step.

Three active cards issued by P1 at store S1 and three terminals: T1 and T2 at S1 (partner P1)
and TA1 at the airline's lounge A1 (partner P2). The traffic: loads, authorizations (partial or
not, often for more than is available), captures (full, partial, too much), voids, refunds,
reversals of earlier requests of the same terminal or of unknown ids, retries of earlier
requests with the same or a different payload, block/unblock by the store manager, time
passing (past the 7-day hold lifetime), and balance reads.

The oracle below is written for this test and shares no code with the domain: per card a
balance, a status, a version (events in the stream) and holds by authorization id; per key
space the request ids seen with their payload and first reply; the reversal markers. Holds
whose time is up count as released for reads at once, and are recorded (one event each, so
one version each) the next time a command touches their card, as the writer does.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from typing import Any

import msgspec
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from domain.cards import commands as cc
from ledger.codec import Outcome
from ledger.engine import Failure, Ledger, Refusal
from ledger.store import SQLiteStore
from tests.support.alliance import FakeClock, build_alliance, card_number, ok, rid

HOLD_TTL_S = 7 * 24 * 3600  # the default card class's hold lifetime
CARDS = [card_number(9_001), card_number(9_002), card_number(9_003)]
UNKNOWN_CARD = card_number(9_999)  # never issued
TERMINALS = ["t1", "t2", "t_air"]
STORE_OF = {"t1": "S1", "t2": "S1", "t_air": "A1"}
PARTNER_OF = {"t1": "P1", "t2": "P1", "t_air": "P2"}
TERMINAL_ID = {"t1": "T1", "t2": "T2", "t_air": "TA1"}

# Results (the contract's numbers) and card statuses, spelled out for the oracle.
APPROVED, PARTIAL, INSUFFICIENT, CARD_NOT_FOUND, NOT_ACTIVE = 1, 2, 3, 4, 5
AUTH_NOT_FOUND, NOT_PENDING, EXCEEDS_AUTH, EXCEEDS_CAPTURED = 8, 9, 10, 11
MISMATCH, INVALID_STATE, REQUEST_REVERSED = 12, 14, 15
ACTIVE, BLOCKED = 2, 3
PENDING, CAPTURED, VOIDED, EXPIRED, REVERSED = "pending", "captured", "voided", "expired", \
    "reversed"


@dataclass
class OHold:
    amount: int
    expires_at_us: int
    store: str
    status: str = PENDING
    captured: int = 0
    refunded: int = 0


@dataclass
class OCard:
    number: str
    balance: int = 0
    status: int = ACTIVE
    version: int = 2  # issued + activated
    holds: dict[str, OHold] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    code: str


@dataclass(frozen=True)
class Tombstone:
    """The key a Reverse of an unknown request id leaves for that id."""


TOMBSTONE = Tombstone()


@dataclass
class KeyEntry:
    command: Any
    reply: Outcome  # the engine's first reply, after it matched the oracle's


class Oracle:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.cards = {number: OCard(number) for number in CARDS}
        self.keys: dict[tuple[str, str], KeyEntry | Tombstone] = {}
        self.markers: set[tuple[str, str]] = set()

    # ------------------------------------------------------------------ views

    def held(self, card: OCard) -> int:
        now = self.clock.now_us
        return sum(h.amount for h in card.holds.values()
                   if h.status == PENDING and h.expires_at_us > now)

    def view(self, card: OCard) -> tuple[int, int, int, int, int]:
        held = self.held(card)
        return (card.status, card.balance, held, card.balance - held, card.version)

    def hold(self, authorization_id: str) -> tuple[OCard, OHold] | None:
        card = self.cards.get(authorization_id.split(".", 1)[0])
        if card is None or authorization_id not in card.holds:
            return None
        return card, card.holds[authorization_id]

    def record_expiries(self, card: OCard) -> None:
        for hold in card.holds.values():
            if hold.status == PENDING and hold.expires_at_us <= self.clock.now_us:
                hold.status = EXPIRED
                card.version += 1

    def reply(self, result: int, kind: str, card: OCard | None = None,
              authorization_id: str = "", approved: int = 0) -> tuple[Any, ...]:
        if card is None:
            return (result, kind, "", authorization_id, approved, None, False)
        return (result, kind, card.number, authorization_id, approved, self.view(card), False)

    # ------------------------------------------------------------------ requests

    def expect(self, actor: str, key_space: str, command: Any,
               request_id: str) -> tuple[str, Any]:
        """("replay", the exact Outcome) for a known request id, else ("new", a summary)."""
        if request_id:
            known = self.keys.get((key_space, request_id))
            if known is TOMBSTONE:
                return "replay", Outcome(REQUEST_REVERSED, "Reverse")
            if isinstance(known, KeyEntry):
                if known.command != command:
                    return "replay", Outcome(MISMATCH)
                return "replay", msgspec.structs.replace(known.reply, replayed=True)
        return "new", self.decide(actor, key_space, command)

    def decide(self, actor: str, key_space: str, command: Any) -> Any:
        match command:
            case cc.GetBalance(number):
                card = self.cards.get(number)
                return (self.reply(CARD_NOT_FOUND, "GetBalance") if card is None
                        else self.reply(APPROVED, "GetBalance", card))
            case cc.LoadValue():
                return self.load(actor, command)
            case cc.Authorize():
                return self.authorize(actor, command)
            case cc.Capture() | cc.Void() | cc.Refund():
                return self.follow_up(actor, command)
            case cc.Reverse(original):
                return self.reverse(key_space, original)
            case cc.BlockCard() | cc.UnblockCard():
                return self.block(command)
        raise AssertionError(f"the oracle does not know {command!r}")

    def load(self, actor: str, command: cc.LoadValue) -> Any:
        card = self.cards.get(command.card_number)
        if card is None:
            return self.reply(CARD_NOT_FOUND, "LoadValue")
        if PARTNER_OF[actor] != "P1":  # only the issuer's terminals load value
            return Fail(Refusal.DENIED)
        self.record_expiries(card)
        if card.status != ACTIVE:
            return self.reply(NOT_ACTIVE, "LoadValue", card)
        card.balance += command.amount_minor
        card.version += 1
        return self.reply(APPROVED, "LoadValue", card, "", command.amount_minor)

    def authorize(self, actor: str, command: cc.Authorize) -> Any:
        card = self.cards.get(command.card_number)
        if card is None:
            return self.reply(CARD_NOT_FOUND, "Authorize")
        self.record_expiries(card)
        if card.status != ACTIVE:
            return self.reply(NOT_ACTIVE, "Authorize", card)
        available = card.balance - self.held(card)
        amount, result = command.amount_minor, APPROVED
        if amount > available:
            if not command.allow_partial or available <= 0:
                return self.reply(INSUFFICIENT, "Authorize", card)
            amount, result = available, PARTIAL
        card.version += 1
        authorization_id = f"{card.number}.{card.version}"
        card.holds[authorization_id] = OHold(amount, self.clock.now_us + HOLD_TTL_S * 10**6,
                                             STORE_OF[actor])
        return self.reply(result, "Authorize", card, authorization_id, amount)

    def follow_up(self, actor: str, command: cc.Capture | cc.Void | cc.Refund) -> Any:
        kind = type(command).__name__
        found = self.hold(command.authorization_id)
        if found is None:
            return self.reply(AUTH_NOT_FOUND, kind)
        card, hold = found
        if STORE_OF[actor] != hold.store:  # follow-ups only where the hold was made
            return Fail(Refusal.DENIED)
        self.record_expiries(card)
        if isinstance(command, cc.Capture):
            if hold.status != PENDING:
                return self.reply(NOT_PENDING, kind, card)
            amount = command.amount_minor or hold.amount
            if amount > hold.amount:
                return self.reply(EXCEEDS_AUTH, kind, card)
            hold.status, hold.captured = CAPTURED, amount
            card.balance -= amount
        elif isinstance(command, cc.Void):
            if hold.status != PENDING:
                return self.reply(NOT_PENDING, kind, card)
            hold.status, amount = VOIDED, hold.amount
        else:
            if hold.status != CAPTURED:
                return self.reply(NOT_PENDING, kind, card)
            if hold.refunded + command.amount_minor > hold.captured:
                return self.reply(EXCEEDS_CAPTURED, kind, card)
            amount = command.amount_minor
            hold.refunded += amount
            card.balance += amount
        card.version += 1
        return self.reply(APPROVED, kind, card, command.authorization_id, amount)

    def reverse(self, key_space: str, original_id: str) -> Any:
        marker = (key_space + "#reversed", original_id)
        if marker in self.markers:
            return self.reply(APPROVED, "Reverse")
        original = self.keys.get((key_space, original_id))
        if original is None:  # reversed before it arrived: the original will be declined
            self.keys[(key_space, original_id)] = TOMBSTONE
            self.markers.add(marker)
            return self.reply(APPROVED, "Reverse")
        if isinstance(original, Tombstone) or original.reply.result not in (APPROVED, PARTIAL):
            self.markers.add(marker)
            return self.reply(APPROVED, "Reverse")
        done = original.reply
        if done.kind in ("Authorize", "Capture"):
            found = self.hold(done.authorization_id)
            assert found is not None
            card, hold = found
            self.record_expiries(card)
            if done.kind == "Authorize":
                if hold.status != PENDING:
                    return self.reply(NOT_PENDING, "Reverse", card)
                hold.status, amount = REVERSED, hold.amount
            else:
                if hold.status != CAPTURED or hold.refunded:
                    return self.reply(NOT_PENDING, "Reverse", card)
                amount = hold.captured
                # Back to held, for the captured amount, with the hold's original expiry.
                hold.status, hold.amount, hold.captured = PENDING, amount, 0
                card.balance += amount
            card.version += 1
            self.markers.add(marker)
            return self.reply(APPROVED, "Reverse", card, done.authorization_id, amount)
        if done.kind == "LoadValue":
            card = self.cards[done.card_number]
            self.record_expiries(card)
            amount = done.approved_amount_minor
            if card.balance - self.held(card) < amount:
                return self.reply(INSUFFICIENT, "Reverse", card)
            card.balance -= amount
            card.version += 1
            self.markers.add(marker)
            return self.reply(APPROVED, "Reverse", card, "", amount)
        return self.reply(INVALID_STATE, "Reverse")  # a void, refund or reversal: no undo

    def block(self, command: cc.BlockCard | cc.UnblockCard) -> Any:
        kind = type(command).__name__
        card = self.cards[command.card_number]
        self.record_expiries(card)
        if isinstance(command, cc.BlockCard) == (card.status == BLOCKED):
            return self.reply(INVALID_STATE, kind, card)
        card.status = ACTIVE if card.status == BLOCKED else BLOCKED
        card.version += 1
        return self.reply(APPROVED, kind, card)


def summary(reply: Outcome | Failure) -> Any:
    if isinstance(reply, Failure):
        return Fail(reply.code)
    view = None
    if reply.card is not None:
        c = reply.card
        view = (c.status, c.balance_minor, c.held_minor, c.available_minor, c.version)
    return (reply.result, reply.kind, reply.card_number, reply.authorization_id,
            reply.approved_amount_minor, view, reply.replayed)


@dataclass(frozen=True)
class Sent:
    actor: str
    command: Any
    request_id: str


class EngineMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.directory = tempfile.mkdtemp(prefix="engine-model-")
        self.store = SQLiteStore(f"sqlite:///{self.directory}/ledger.db")
        self.store.create_schema()
        self.clock = FakeClock()
        self.ledger = Ledger(self.store, clock_us=self.clock)
        admin_token = self.ledger.bootstrap_admin()
        self.ledger.start()
        self.alliance = build_alliance(self.ledger, admin_token)
        for number in CARDS:
            ok(self.ledger.call(self.alliance.s1_manager,
                                cc.IssueCard(number, "STANDARD", "USD", "", ""),
                                request_id=rid("issue")))
            ok(self.ledger.call(self.alliance.s1_manager, cc.ActivateCard(number, ""),
                                request_id=rid("activate")))
            ok(self.ledger.call(self.alliance.t1, cc.LoadValue(number, 10_000, "USD", "init"),
                                request_id=rid("init")))
        self.oracle = Oracle(self.clock)
        for card in self.oracle.cards.values():
            card.balance, card.version = 10_000, 3
        self.sent: list[Sent] = []
        self.unknown_ids: list[str] = []  # reversed before they were ever sent
        self.next_id = 0

    def teardown(self) -> None:
        self.ledger.stop()
        self.store.close()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------------ plumbing

    def key_space(self, actor: str) -> str:
        if actor in TERMINAL_ID:
            return "t:" + TERMINAL_ID[actor]
        return "c:" + self.alliance.credentials[actor]

    def fresh_id(self) -> str:
        self.next_id += 1
        return f"q{self.next_id}"

    def new_id(self, data: st.DataObject) -> str:
        """Mostly a fresh id; sometimes one a Reverse named before it was sent."""
        if self.unknown_ids and data.draw(st.integers(0, 4), label="reuse reversed id") == 0:
            return data.draw(st.sampled_from(self.unknown_ids), label="request_id")
        return self.fresh_id()

    def send(self, actor: str, command: Any, request_id: str) -> Outcome | Failure:
        key_space = self.key_space(actor)
        mode, expected = self.oracle.expect(actor, key_space, command, request_id)
        reply = self.ledger.call(self.alliance.credentials[actor], command,
                                 request_id=request_id, timeout_s=60)
        if mode == "replay":
            assert reply == expected, f"{actor} {command!r} {request_id}: {reply!r}"
        else:
            assert summary(reply) == expected, f"{actor} {command!r} {request_id}"
            if request_id and isinstance(reply, Outcome):
                self.oracle.keys[(key_space, request_id)] = KeyEntry(command, reply)
        if request_id:
            self.sent.append(Sent(actor, command, request_id))
        return reply

    def authorization_id(self, data: st.DataObject, prefer: str) -> str:
        """Mostly a hold in the state the operation wants (`prefer`), sometimes any hold,
        rarely an id no authorization ever had."""
        holds = [(a, h) for card in self.oracle.cards.values() for a, h in card.holds.items()]
        preferred = [a for a, h in holds if h.status == prefer]
        pick = data.draw(st.integers(0, 9), label="which authorization")
        if preferred and pick < 6:
            return data.draw(st.sampled_from(preferred), label="authorization_id")
        if holds and pick < 9:
            return data.draw(st.sampled_from([a for a, _ in holds]), label="authorization_id")
        return f"{data.draw(st.sampled_from(CARDS), label='card')}.99999"

    def follow_up_actor(self, data: st.DataObject, authorization_id: str) -> str:
        """Mostly a terminal of the store that made the hold, sometimes any terminal."""
        found = self.oracle.hold(authorization_id)
        actors = [t for t in TERMINALS if found is None or STORE_OF[t] == found[1].store]
        if data.draw(st.integers(0, 4), label="any terminal") == 0:
            actors = TERMINALS
        return data.draw(st.sampled_from(actors), label="actor")

    # ------------------------------------------------------------------ steps

    @rule(data=st.data(), action=st.sampled_from([
        "authorize", "capture", "load", "authorize", "capture", "refund", "reverse", "retry",
        "authorize", "capture", "void", "refund", "reverse", "retry", "block_or_unblock",
        "time_passes", "get_balance"]))
    def step(self, data: st.DataObject, action: str) -> None:
        """One request of a mixed POS workload (one rule with weights, rather than a rule per
        operation: with only ~25 examples, Hypothesis's per-rule swarm selection mostly ran
        single-operation sequences that never reached a capture or a refund)."""
        getattr(self, action)(data)

    def load(self, data: st.DataObject) -> None:
        actor = data.draw(st.sampled_from(TERMINALS), label="actor")
        card = data.draw(st.sampled_from(CARDS), label="card")
        amount = data.draw(st.integers(1, 5_000), label="amount")
        self.send(actor, cc.LoadValue(card, amount, "USD", "pay"), self.new_id(data))

    def authorize(self, data: st.DataObject) -> None:
        actor = data.draw(st.sampled_from(TERMINALS), label="actor")
        card = data.draw(st.sampled_from([*CARDS, *CARDS, UNKNOWN_CARD]), label="card")
        allow_partial = data.draw(st.booleans(), label="allow_partial")
        how = data.draw(st.sampled_from(["some", "some", "all", "more"]), label="how much")
        amount = data.draw(st.integers(1, 3_000), label="amount")
        if card in self.oracle.cards and how != "some":
            state = self.oracle.cards[card]
            available = state.balance - self.oracle.held(state)
            amount = max(1, available + (amount if how == "more" else 0))
        self.send(actor, cc.Authorize(card, amount, "USD", allow_partial, "stan"),
                  self.new_id(data))

    def capture(self, data: st.DataObject) -> None:
        authorization_id = self.authorization_id(data, PENDING)
        found = self.oracle.hold(authorization_id)
        held = found[1].amount if found else 100
        how = data.draw(st.sampled_from(["full", "part", "more"]), label="how much")
        amount = {"full": 0, "part": max(1, held // 2), "more": held + 1}[how]
        actor = self.follow_up_actor(data, authorization_id)
        self.send(actor, cc.Capture(authorization_id, amount), self.new_id(data))

    def void(self, data: st.DataObject) -> None:
        authorization_id = self.authorization_id(data, PENDING)
        actor = self.follow_up_actor(data, authorization_id)
        self.send(actor, cc.Void(authorization_id), self.new_id(data))

    def refund(self, data: st.DataObject) -> None:
        authorization_id = self.authorization_id(data, CAPTURED)
        found = self.oracle.hold(authorization_id)
        left = found[1].captured - found[1].refunded if found else 0
        how = data.draw(st.sampled_from(["some", "all", "more"]), label="how much")
        amount = {"some": max(1, left // 3), "all": max(1, left), "more": left + 1}[how]
        actor = self.follow_up_actor(data, authorization_id)
        self.send(actor, cc.Refund(authorization_id, amount), self.new_id(data))

    def reverse(self, data: st.DataObject) -> None:
        actor = data.draw(st.sampled_from(TERMINALS), label="actor")
        which = data.draw(st.sampled_from(["undoable", "undoable", "own", "any", "unknown"]),
                          label="original")
        key_space = self.key_space(actor)
        own = [s.request_id for s in self.sent if s.actor == actor]
        pool = {
            # Approved loads, authorizations and captures of this terminal: there is
            # something to undo, so these are the reversals that move value.
            "undoable": [r for r in own if self.approved(key_space, r)],
            "own": own,
            "any": [s.request_id for s in self.sent],  # other key spaces' ids are unknown here
            "unknown": [],
        }[which]
        if which == "undoable" and not pool:
            pool = own
        request_id = self.new_id(data)
        pool = [p for p in pool if p != request_id]  # see test_reverse_naming_itself
        if pool:
            original = data.draw(st.sampled_from(pool), label="original_request_id")
        else:
            original = self.fresh_id()
            self.unknown_ids.append(original)
        self.send(actor, cc.Reverse(original), request_id)

    def approved(self, key_space: str, request_id: str) -> bool:
        entry = self.oracle.keys.get((key_space, request_id))
        return (isinstance(entry, KeyEntry) and entry.reply.result in (APPROVED, PARTIAL)
                and entry.reply.kind in ("LoadValue", "Authorize", "Capture"))

    def retry(self, data: st.DataObject) -> None:
        if not self.sent:
            return
        earlier = data.draw(st.sampled_from(self.sent), label="earlier request")
        same = data.draw(st.booleans(), label="same payload")
        command = earlier.command if same else changed(earlier.command)
        self.send(earlier.actor, command, earlier.request_id)

    def block_or_unblock(self, data: st.DataObject) -> None:
        # Blocked cards decline nearly everything: unblock them about as often as block them.
        blocked_cards = [n for n, c in self.oracle.cards.items() if c.status == BLOCKED]
        if blocked_cards and data.draw(st.booleans(), label="a blocked card"):
            card = data.draw(st.sampled_from(blocked_cards), label="card")
        else:
            card = data.draw(st.sampled_from(CARDS), label="card")
        how = data.draw(st.sampled_from(["toggle", "toggle", "block", "unblock"]), label="how")
        blocked = self.oracle.cards[card].status == BLOCKED
        block = how == "block" or (how == "toggle" and not blocked)
        command = cc.BlockCard(card, "lost") if block else cc.UnblockCard(card, "found")
        self.send("s1_manager", command, self.new_id(data))

    def time_passes(self, data: st.DataObject) -> None:
        self.clock.advance(data.draw(st.sampled_from([3_600, HOLD_TTL_S + 1]), label="seconds"))

    def get_balance(self, data: st.DataObject) -> None:
        actor = data.draw(st.sampled_from(TERMINALS), label="actor")
        card = data.draw(st.sampled_from([*CARDS, UNKNOWN_CARD]), label="card")
        self.send(actor, cc.GetBalance(card), "")

    # ------------------------------------------------------------------ invariants

    @invariant()
    def balances_agree(self) -> None:
        for number, card in self.oracle.cards.items():
            reply = ok(self.ledger.call(self.alliance.t1, cc.GetBalance(number), timeout_s=60))
            assert reply.card is not None
            view = reply.card
            assert (view.balance_minor, view.held_minor, view.available_minor) == \
                self.oracle.view(card)[1:4]
            assert view.available_minor >= 0
            assert view.held_minor >= 0


def changed(command: Any) -> Any:
    """The same kind of request with a different payload."""
    match command:
        case cc.LoadValue() | cc.Authorize() | cc.Capture() | cc.Refund():
            return msgspec.structs.replace(command, amount_minor=command.amount_minor + 1)
        case cc.Void(authorization_id):
            return cc.Void(authorization_id.split(".")[0] + ".88888")
        case cc.Reverse(original):
            return cc.Reverse(original + "x")
        case cc.BlockCard(number, reason):
            return cc.UnblockCard(number, reason)
        case cc.UnblockCard(number, reason):
            return cc.BlockCard(number, reason)
    raise AssertionError(f"no changed payload for {command!r}")


EngineMachine.TestCase.settings = settings(
    max_examples=25,
    stateful_step_count=30,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestEngineModel = EngineMachine.TestCase
