"""What every handler works with: the request, who sends it, the unit of work, the time, and
the writer's state and services; plus the steps card handlers share (emit events on a card,
record lapsed holds first, build the decision context and the reply)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from domain.cards import commands as cc
from domain.cards import decide as cards
from domain.cards import retention
from domain.cards.events import CardEvent
from domain.common import APPROVALS, Meta, Principal
from domain.currency import major_to_minor
from domain.points import purse
from domain.purchases import decide as purchases
from domain.settlement.agreements import entity_of
from ledger import limits
from ledger.codec import Outcome, PurseView, card_stream_id, card_view
from ledger.pricing import RuleBook
from ledger.state import State
from ledger.work import Request, Work


@dataclass
class Services:
    """The writer's tools that are not state: the rule kernel, the coupon key, card numbers."""

    rule_book: RuleBook
    coupon_key: bytes | None
    card_numbers: Callable[[], str]


def system_meta(now_us: int) -> Meta:
    return Meta("", "system", 0, "", "", "", now_us)


@dataclass
class Ctx:
    request: Request
    principal: Principal
    work: Work
    now_us: int
    state: State
    services: Services

    @property
    def command(self) -> Any:
        return self.request.command

    @property
    def registry(self) -> Any:
        return self.state.registry

    def meta(self) -> Meta:
        request, principal = self.request, self.principal
        return Meta(request.request_id, request.credential_id, int(principal.role),
                    principal.partner_id, principal.store_id,
                    request.terminal_id or principal.terminal_id, self.now_us)

    # ------------------------------------------------------------------------ cards

    def card(self, card_number: str) -> cards.CardState | None:
        return self.state.card(card_number)

    def let_go(self, card_number: str, record_id: str, purchases: bool = False) -> bool:
        """Did the card (or the replacements that took it over) let the authorization or
        purchase `record_id` go because it was too old (domain.cards.retention)?"""
        state = self.card(card_number)
        for _ in range(limits.REPLACEMENT_HOPS_MAX):
            if state is None:
                return False
            history = state.history
            if retention.let_go(history.purchases_dropped if purchases
                                else history.authorizations_dropped, record_id):
                return True
            if not state.replaced_by:
                return False
            state = self.card(state.replaced_by)
        return False

    def emit(self, state: cards.CardState | None,
             events: tuple[CardEvent, ...]) -> cards.CardState:
        """Evolve the card by `events` (a new card when `state` is None) and record them."""
        assert events
        for event in events:
            state = cards.evolve(state, event)
            self.work.append(card_stream_id(state.card_number), state.version, event)
        assert state is not None
        if self.state.positions is not None:  # an agreement sets a net debit cap
            self.state.track(self.work, state.currency, events)
        stream_id = card_stream_id(state.card_number)
        self.state.cards[stream_id] = state
        self.work.touch(stream_id, state)
        return state

    def expire_holds(self, state: cards.CardState) -> cards.CardState:
        """Record the release of holds whose time is up, before anything else on the card."""
        if self.now_us < state.next_expiry_us:  # the hot path: nothing due, nothing to build
            return state
        released = cards.expired_holds(state, self.now_us, system_meta(self.now_us))
        return self.emit(state, released) if released else state

    def expiries(self, state: cards.CardState, now_us: int) -> tuple[CardEvent, ...]:
        meta = system_meta(now_us)
        return (cards.expired_holds(state, now_us, meta)
                + purchases.expired_points(state, now_us, meta, self.own_program(state)))

    def expire_all(self, state: cards.CardState) -> cards.CardState:
        """Record expired holds and points before a decision that reads them."""
        due = self.expiries(state, self.now_us)
        return self.emit(state, due) if due else state

    def own_program(self, state: cards.CardState) -> str:
        """The owner of the program the card earns in ("" when there is none)."""
        program = self.registry.program_of(state.issuing_partner_id)
        return program.owner if program is not None else ""

    def issuer_entity(self, state: cards.CardState) -> str:
        """The accounting entity that owes the card's value: its issuing store if that is an
        entity of its own, else its issuing partner."""
        return entity_of(self.registry.store_entities, state.issuing_store_id,
                         state.issuing_partner_id)

    def acquirer_entity(self, store_id: str, partner_id: str) -> str:
        return entity_of(self.registry.store_entities, store_id, partner_id)

    def over_cap(self, state: cards.CardState, acquirer: str, amount_minor: int,
                 payer: str = "") -> bool:
        """Would `amount_minor` more owed by `payer` (default: the card's issuing entity, for
        its value spent; a program's owner for its points redeemed) to `acquirer` take the
        payer past its net debit cap in the open period? An entity's own stores never are.
        O(1): a few dict reads (domain.settlement.positions)."""
        positions = self.state.positions
        if positions is None or amount_minor <= 0:
            return False  # no cap is set (keep_positions keeps them whenever one is)
        payer = payer or self.issuer_entity(state)
        if payer == acquirer:
            return False
        cap = self.registry.agreements.cap(payer, state.currency, self.now_us)
        return bool(cap) and positions.would_exceed(payer, state.currency, amount_minor, cap)

    def card_context(self, state: cards.CardState) -> cards.Context:
        card_class = self.registry.card_class(state.card_class)
        principal = self.principal
        issuer = self.issuer_entity(state)
        return cards.Context(
            self.meta(), self.now_us,
            major_to_minor(card_class.max_balance_major, state.currency),
            card_class.hold_ttl_seconds * 1_000_000,
            self.acquirer_entity(principal.store_id, principal.partner_id) if principal.partner_id
            else issuer, issuer)

    def new_card_number(self) -> str:
        for _ in range(8):
            number = self.services.card_numbers()
            if self.card(number) is None:
                return number
        raise AssertionError("eight generated card numbers in a row were taken")

    def card_outcome(self, decision: cards.Decision, state: cards.CardState) -> Outcome:
        # Payment and load replies show amounts, never points: the authorization hot path
        # does not count a loyal card's lots.
        command = self.command
        points = not isinstance(command, AMOUNT_REPLIES)
        return Outcome(int(decision.result), type(command).__struct_config__.tag,
                       state.card_number, decision.authorization_id,
                       decision.approved_amount_minor, view(state, self.now_us, points))

    def apply(self, state: cards.CardState,
              decide: Callable[[cards.CardState, cards.Context], cards.Decision]) -> Outcome:
        """Record lapsed holds, decide, record the events of an approval, reply."""
        state = self.expire_holds(state)
        decision = decide(state, self.card_context(state))
        if decision.result in APPROVALS:
            state = self.emit(state, decision.events)
        return self.card_outcome(decision, state)


AMOUNT_REPLIES = (cc.Authorize, cc.Capture, cc.Void, cc.Refund, cc.Reverse, cc.LoadValue)


def view(state: cards.CardState, now_us: int, points: bool = True) -> Any:
    """Card.points: spendable points less any points debt (negative only under the
    POINTS_DEBT policy); 0 when the reply shows no points (`points` False)."""
    if not points:
        return card_view(state, cards.held_at(state, now_us), 0)
    if not state.lots:
        return card_view(state, cards.held_at(state, now_us), -state.points_debt)
    spendable = purse.spendable(state.purse, now_us)
    return card_view(state, cards.held_at(state, now_us), spendable - state.points_debt,
                     purses(state, now_us))


def purses(state: cards.CardState, now_us: int) -> tuple[PurseView, ...]:
    """Each program's spendable and pending points; the card's own program ("") first."""
    programs = sorted({lot.program for lot in state.lots.values()})
    return tuple(PurseView(program, purse.spendable(state.purse_of(program), now_us),
                           purse.pending(state.purse_of(program), now_us))
                 for program in programs)
