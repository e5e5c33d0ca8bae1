"""What a movement's legs say one entity owes another: the flows settlement sums per period.

Read from the accounts of `domain.postings`:
- `clearing:{issuer}:{acquirer}`: a leg of +x means the issuer's cards were spent for x at the
  acquirer's stores (a capture, a purchase), -x that it came back (a refund, a capture reversed,
  a return). The issuer owes the acquirer the sum: SV_SPENT_ACROSS.
- `coupons:{funder}:funding` -x followed by `coupons:{acquirer}:given` +x: a coupon the funder
  pays for gave x off at the acquirer's stores (reversed on a return): COUPON_FUNDING.
- `points_redeemed:{o}:{a}` +x: points of o's program paid x at a store of entity a:
  POINTS_REDEEMED_ACROSS; `points_sold:{a}:{o}` -x: a's sale handed out points of o's program
  worth x: POINTS_ISSUED_ACROSS (both at the program's point value; reversed by returns).
- `exchange:{s}:{d}` +x: a points exchange from program s to program d: the source program's
  owner pays the destination's owner for the liability it takes over: EXCHANGE (in the
  programs' currency, which may not be the card's: `flow_currency`).

A flow within one entity (the issuer's own store) owes nothing and is left out. Flows are
signed: the period's sum per (payer, payee, category) may come out negative (more came back
than was spent), and `obligations` then turns it round.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from domain.cards import events as ev
from domain.postings import Leg
from domain.settlement.model import Category, Obligation

Flow = tuple[str, str, int, int]  # (payer, payee, category, signed amount in minor units)

# The card events whose legs may cross entities (clearing, coupon funding); a test walks every
# card event kind with legs to keep the list whole.
FLOW_EVENTS: tuple[type[ev.CardEvent], ...] = (
    ev.AuthorizationCaptured, ev.CaptureReversed, ev.ValueRefunded, ev.PurchaseMade,
    ev.PurchaseReturned, ev.PointsExchanged)
FLOW_TOPICS = frozenset(t.__struct_config__.tag for t in FLOW_EVENTS)


def flows(legs: Iterable[Leg]) -> list[Flow]:
    found: list[Flow] = []
    funder = ""
    funded = 0
    for leg in legs:
        kind, _, rest = leg.account.partition(":")
        if kind == "clearing":
            issuer, _, acquirer = rest.partition(":")
            if issuer != acquirer:
                found.append((issuer, acquirer, Category.SV_SPENT_ACROSS, leg.amount_minor))
        elif kind == "points_redeemed":  # +x: the program's owner owes the store's entity
            owner, _, acquirer = rest.partition(":")
            if owner != acquirer:
                found.append((owner, acquirer, Category.POINTS_REDEEMED_ACROSS,
                              leg.amount_minor))
        elif kind == "points_sold":  # -x: the store's entity owes the program's owner
            acquirer, _, owner = rest.partition(":")
            if owner != acquirer:
                found.append((acquirer, owner, Category.POINTS_ISSUED_ACROSS, -leg.amount_minor))
        elif kind == "exchange":
            source, _, target = rest.partition(":")
            if source != target:
                found.append((source, target, Category.EXCHANGE, leg.amount_minor))
        elif kind == "coupons":
            entity, _, side = rest.rpartition(":")
            if side == "funding":
                funder, funded = entity, -leg.amount_minor
            elif side == "given" and funder:
                assert leg.amount_minor == funded, "a coupon's legs come in pairs"
                if funder != entity:
                    found.append((funder, entity, Category.COUPON_FUNDING, funded))
                funder = ""
    return found


def points_of(event: ev.CardEvent, category: int) -> int:
    """The points behind a points flow of `event` (signed as the flow: a return's are
    negative), for agreements that price points rather than value them."""
    if type(event) is ev.PurchaseMade:
        if category == Category.POINTS_REDEEMED_ACROSS:
            return event.points_redeemed
        return (event.lot.amount if event.lot else 0) + event.debt_settled
    if type(event) is ev.PurchaseReturned:
        if category == Category.POINTS_REDEEMED_ACROSS:
            return -sum(points for _, points in event.points_restored)
        return -(sum(points for _, points in event.points_clawed) + event.points_written_off
                 + event.points_debt_added)
    return 0


def flow_currency(event: ev.CardEvent, card_currency: str,
                  program_currency: Mapping[str, str]) -> str:
    """The currency of an event's flows: the card's, or for an exchange its programs' (an
    exchange rate joins two programs of one currency)."""
    if type(event) is ev.PointsExchanged:
        return program_currency.get(event.from_program, card_currency)
    return card_currency


def obligations(currency: str,
                totals: Mapping[tuple[str, str, int], int]) -> list[Obligation]:
    """The period's obligations from its signed totals per (payer, payee, category): a
    negative total is owed the other way round; a zero total owes nothing."""
    found = []
    for (payer, payee, category), amount in sorted(totals.items()):
        if amount > 0:
            found.append(Obligation(currency, payer, payee, Category(category), amount))
        elif amount < 0:
            found.append(Obligation(currency, payee, payer, Category(category), -amount))
    return found
