"""Purchase and return decisions against a card's state. Pure: the rule evaluation, the
program, the clock and the purchase id come in; events or a decline come out.

Order of a purchase: the card may spend (ACTIVE, same currency); member discounts (the
kernel's), then free units of stamp cards and the card's other history rules
(domain/purchases/stateful.py), then a manager's special discount, give the amount due;
coupons come off next, in the order tendered; points to redeem pay first of what is left, at
the program's point value, earliest-expiring lots first; then stored value; what is still left
is paid by tenders outside the ledger. The points redeemed are the card's own program's, or
another program's the card holds (`Purchase.redeem_program`, e.g. received by exchange) where
that program's owner accepts them (`accepted_at`): its purse pays, at its point value, and the
legs say its owner owes the store's entity. Points are earned on the basket as the rules see it
(after member discounts), whatever the tender mix and whichever program's points paid, into
one lot of the card's own program that records the rule-set
versions and the program's point value at that moment; a points debt is paid first.

A return gives back its share of each tender and claws back its share of the earned points,
counted cumulatively (share = x * returned_so_far // total - what earlier returns took), so a
purchase returned in several steps gives back exactly what it took, to the point and the cent.
Redeemed points go back to their lots first; clawed-back points then come from the purchase's
own lot, then from the card's other live lots, earliest expiry first. What was already spent
follows the program's clawback policy: written off as the program's loss (WRITE_OFF, a card's
points never go below zero) or owed by the card (POINTS_DEBT).
"""

from __future__ import annotations

import msgspec

from domain import postings
from domain.cards import events as ev
from domain.cards import retention
from domain.cards.decide import CardState, Decision, PurchaseRecord, decline
from domain.common import CardStatus, Meta, Result, shown
from domain.coupons.decide import CouponUse, NotUsable, apply_coupons, new_coupon
from domain.coupons.model import Campaign
from domain.points import purse
from domain.points.program import DAY_US, QUALIFYING_WINDOW_US, Clawback, Program
from domain.purchases import stateful
from domain.purchases.commands import Purchase, Return
from domain.purchases.evaluation import Evaluation
from domain.rules.model import Basket, RuleSet
from domain.settlement.agreements import Agreements

MICROS = 1_000_000  # a point value is in millionths of a minor unit

class PurchaseContext(msgspec.Struct, frozen=True):
    meta: Meta
    now_us: int
    acquirer_partner_id: str  # the store's accounting entity (its partner or itself)
    program: Program | None
    evaluation: Evaluation
    weekday: int  # what the rules saw: the store's local day and minute
    minute_of_day: int
    coupon_ids: tuple[str, ...] = ()  # the tendered codes' coupons, their MACs checked
    campaigns_to_issue: tuple[Campaign, ...] = ()  # from the rules that fired
    rule_sets: tuple[RuleSet, ...] = ()  # in force: their rules on the card's history apply
    local_date: str = ""  # the store's local date, "YYYY-MM-DD"
    issuer_entity: str = ""  # the card's issuing entity ("": its issuing partner)
    # Redemption at a partner (Purchase.redeem_program naming another program than the
    # card's own): that program as defined (None: it is not), and the published agreements
    # that say where its points may pay (`accepted_at`).
    redeem_program: Program | None = None
    agreements: Agreements | None = None


class PurchaseDecision(msgspec.Struct, frozen=True):
    result: Result
    reason: str = ""  # why a decline, in words for the till
    event: ev.PurchaseMade | None = None


def _declined(result: Result, reason: str) -> PurchaseDecision:
    return PurchaseDecision(result, reason)


def decide_purchase(state: CardState, cmd: Purchase, ctx: PurchaseContext) -> PurchaseDecision:
    if state.status != CardStatus.ACTIVE:
        return _declined(Result.DECLINED_CARD_NOT_ACTIVE, "the card may not spend")
    if cmd.currency != state.currency:
        return _declined(Result.DECLINED_CURRENCY_MISMATCH,
                         f"the card holds {state.currency}, the basket is in {cmd.currency}")
    program = ctx.program
    basket = Basket(lines=cmd.lines, card_class=state.card_class, tier=state.tier,
                    weekday=ctx.weekday, minute_of_day=ctx.minute_of_day)
    evaluation, stamps = stateful.apply(state, ctx.rule_sets, basket, ctx.local_date,
                                        ctx.evaluation,
                                        cmd.total_minor - ctx.evaluation.discount_minor)
    discount = evaluation.discount_minor + cmd.override_discount_minor
    if discount > cmd.total_minor:
        return _declined(Result.DECLINED_TENDER_EXCEEDS_DUE,
                         f"the manager's discount {cmd.override_discount_minor} is more than the "
                         f"{cmd.total_minor - evaluation.discount_minor} due")
    due = cmd.total_minor - discount
    try:
        uses = apply_coupons(state.coupons, ctx.coupon_ids, cmd.lines, due, ctx.meta.store_id,
                             ctx.now_us)
    except NotUsable as refused:
        return _declined(Result.DECLINED_COUPON_NOT_USABLE, str(refused))
    due -= sum(use.amount_minor for use in uses)
    redeemed: tuple[tuple[str, int], ...] = ()
    points_value = 0
    redeemed_owner = ""  # the redeemed points' program's owner when not the card's own
    if cmd.points_to_redeem:
        own = not cmd.redeem_program or (program is not None
                                         and cmd.redeem_program == program.owner)
        source = program if own else ctx.redeem_program
        if source is None:
            return _declined(Result.DECLINED_NO_POINTS_PROGRAM,
                             "the card's issuer has no points program" if own else
                             f"no points program of {shown(cmd.redeem_program)} is defined")
        if source.currency != cmd.currency:
            return _declined(Result.DECLINED_CURRENCY_MISMATCH,
                             f"points are valued in {source.currency}")
        if not own and not accepted_at(ctx.agreements, source.owner,
                                       ctx.acquirer_partner_id, ctx.now_us):
            return _declined(Result.DECLINED_NO_AGREEMENT,
                             f"{source.owner}'s points do not pay here: no agreement in force "
                             f"between {source.owner} and {ctx.acquirer_partner_id}")
        points_value = source.value_minor(cmd.points_to_redeem)
        if points_value > due:
            return _declined(Result.DECLINED_TENDER_EXCEEDS_DUE,
                             f"{cmd.points_to_redeem} points are worth {points_value}, more "
                             f"than the {due} due")
        lots = state.purse if own else state.purse_of(source.owner)
        owed = state.points_debt if own else 0  # a points debt is owed the card's own program
        free = purse.spendable(lots, ctx.now_us) - owed
        if cmd.points_to_redeem > free:
            debt = f" ({owed} owed)" if owed else ""
            of = "" if own else f" in {source.owner}'s program"
            return _declined(Result.DECLINED_INSUFFICIENT_POINTS,
                             f"{cmd.points_to_redeem} points asked, {max(0, free)} "
                             f"spendable{of}{debt}")
        redeemed = purse.redeem(lots, cmd.points_to_redeem, ctx.now_us).takes
        redeemed_owner = "" if own else source.owner
    rest = due - points_value
    charged = rest if cmd.stored_value_pays_rest else cmd.stored_value_minor
    result = Result.APPROVED
    if charged > rest:
        return _declined(Result.DECLINED_TENDER_EXCEEDS_DUE,
                         f"stored value {charged} is more than the {rest} left to pay")
    if charged > state.available_minor:
        if not cmd.allow_partial or state.available_minor <= 0:
            return _declined(Result.DECLINED_INSUFFICIENT_FUNDS,
                             f"{state.available_minor} available on the card")
        charged, result = state.available_minor, Result.PARTIALLY_APPROVED
    purchase_id = f"{state.card_number}.{state.version + 1}"
    qualifying = evaluation.eligible_minor
    tier = state.tier
    if program is not None:
        reached = program.tier_for(qualifying_spend(state, ctx.now_us) + qualifying)
        if program.rank(reached) > program.rank(tier):
            tier = reached  # upgrades happen at once; downgrades wait for the review
    lot = None
    earned = evaluation.points if program is not None else 0
    settled = min(earned, state.points_debt)  # a points debt is paid first
    if earned - settled > 0:
        assert program is not None
        expires = purse.expires_at_us(ctx.now_us, program.expiry)
        vests = min(ctx.now_us + program.vesting_days * DAY_US, expires - 1)
        lot = purse.earn(purse.Lot(
            purchase_id, earned - settled, earned - settled, ctx.now_us, vests, expires,
            f"purchase:{ctx.meta.request_id}", ",".join(evaluation.rule_sets),
            program.point_value_micros)).lot
    legs: tuple[postings.Leg, ...] = ()
    if charged:
        legs = postings.move(postings.available(state.card_number),
                             postings.clearing(ctx.issuer_entity or state.issuing_partner_id,
                                               ctx.acquirer_partner_id), charged)
    legs += _coupon_legs(uses, ctx.acquirer_partner_id)
    owner, micros = (program.owner, program.point_value_micros) if program else ("", 0)
    legs += _points_legs(redeemed_owner or owner, owner, ctx.acquirer_partner_id, points_value,
                         earned * micros // MICROS)
    issued = tuple(new_coupon(campaign, state.coupon_id(index), ctx.now_us)
                   for index, campaign in enumerate(ctx.campaigns_to_issue))
    return PurchaseDecision(result, event=ev.PurchaseMade(
        ctx.meta, purchase_id, ctx.acquirer_partner_id, cmd.lines, ctx.weekday,
        ctx.minute_of_day, qualifying, tier, cmd.total_minor, discount, charged,
        cmd.points_to_redeem, points_value, rest - charged, redeemed, lot,
        evaluation.rule_sets, _explained(evaluation, earned > 0), legs, uses, issued,
        ctx.local_date, stamps, cmd.override_discount_minor, cmd.override_approver,
        cmd.override_reason, settled, owner, micros, redeemed_owner))


def accepted_at(agreements: Agreements | None, owner: str, acquirer: str, at_us: int) -> bool:
    """May points of `owner`'s program (not the card's own) pay at a store of entity
    `acquirer`? At the owner's own entity's stores, always (the flow stays within it);
    elsewhere only with an agreement in force between the owner and the store's entity: the
    pair's (named either way round), else an alliance-wide one, which every member has agreed
    to. These are the terms settlement prices the redeemed points by
    (`points_reimbursement_micros`, projections/settlement.py). An entity's own terms (its net
    debit cap, its voucher share) link it to no other entity and do not count."""
    if owner == acquirer:
        return True
    return agreements is not None and agreements.for_pair(owner, acquirer, at_us) is not None


def _points_legs(redeemed_owner: str, owner: str, acquirer: str, redeemed_value: int,
                 earned_value: int) -> tuple[postings.Leg, ...]:
    """A purchase's points at their value (domain/postings.py): what the redeemed points'
    program's owner owes the store's entity for them, what the store's entity owes the card's
    own program's owner for points its sale handed out (flows only when they differ:
    domain/settlement/legs.py)."""
    legs: tuple[postings.Leg, ...] = ()
    if redeemed_value:
        legs += postings.move(postings.points_outstanding(redeemed_owner),
                              postings.points_redeemed(redeemed_owner, acquirer),
                              redeemed_value)
    if earned_value:
        legs += postings.move(postings.points_sold(acquirer, owner),
                              postings.points_outstanding(owner), earned_value)
    return legs


def _returned_points_legs(record: PurchaseRecord, restored: int, clawed: int,
                          written_off: int) -> tuple[postings.Leg, ...]:
    """A return's share of the purchase's points legs, reversed: each figure is the value of
    the cumulative points less what earlier returns reversed, so a purchase returned in parts
    ends exactly where it began (nothing lost to rounding each part)."""
    owner, acquirer = record.points_owner, record.acquirer_partner_id
    spent_in = record.redeemed_owner or owner  # the redeemed points' program's owner
    legs: tuple[postings.Leg, ...] = ()
    if restored and record.points_redeemed and spent_in:
        value, total = record.points_redeemed_value_minor, record.points_redeemed
        back = (value * (record.points_restored + restored) // total
                - value * record.points_restored // total)
        if back:
            legs += postings.move(postings.points_redeemed(spent_in, acquirer),
                                  postings.points_outstanding(spent_in), back)
    if clawed and owner:
        micros = record.points_value_micros
        undone = ((record.points_clawed + clawed) * micros // MICROS
                  - record.points_clawed * micros // MICROS)
        lost = min(undone, written_off * micros // MICROS)
        if undone:
            legs += (postings.Leg(postings.points_sold(acquirer, owner), undone),
                     postings.Leg(postings.points_outstanding(owner), lost - undone))
            if lost:
                legs += (postings.Leg(postings.points_written_off(owner), -lost),)
    return legs


def _coupon_legs(uses: tuple[CouponUse, ...], acquirer_id: str,
                 back: bool = False) -> tuple[postings.Leg, ...]:
    legs: tuple[postings.Leg, ...] = ()
    for use in uses:
        source, target = postings.coupon_funding(use.funded_by), postings.coupon_given(acquirer_id)
        legs += postings.move(target, source, use.amount_minor) if back else postings.move(
            source, target, use.amount_minor)
    return legs


def _explained(evaluation: Evaluation, earned: bool) -> tuple[ev.RuleAward, ...]:
    """The explanation: discounts always (they were given); points only if they were earned
    (no program: the rules' points went nowhere)."""
    if earned:
        return evaluation.awards
    return tuple(msgspec.structs.replace(a, points=0) for a in evaluation.awards
                 if a.discount_minor)


# ------------------------------------------------------------------------------ returns


def _share(amount: int, before: int, after: int, total: int) -> int:
    """This return's share of `amount`, counted cumulatively so the shares sum to `amount`."""
    return amount * after // total - amount * before // total


def decide_return(state: CardState, cmd: Return, meta: Meta, now_us: int,
                  program: Program | None = None, issuer_entity: str = "") -> Decision:
    record = state.purchases.get(cmd.purchase_id)
    if record is None:
        return decline(Result.DECLINED_PURCHASE_NOT_FOUND)
    if record.recorded_at_us <= now_us - retention.RETURN_WINDOW_US:
        return decline(Result.DECLINED_RETURN_WINDOW_CLOSED)
    if state.status not in (CardStatus.ACTIVE, CardStatus.BLOCKED):
        return decline(Result.DECLINED_CARD_NOT_ACTIVE)  # value never lands on a dead card
    for line in cmd.lines:
        if line.line_index >= len(record.lines) or (
                record.returned[line.line_index] + line.quantity
                > record.lines[line.line_index].quantity):
            return decline(Result.DECLINED_RETURN_EXCEEDS_PURCHASE)
    before, after, total = _progress(record, cmd)
    sv = _share(record.sv_charged_minor, before, after, total)
    restore = _share(record.points_redeemed, before, after, total)
    claw = _share(record.points_earned, before, after, total)
    restored = _restore(record, restore)
    clawed, short = _claw(state, record, claw, now_us, restored)
    debt = short if program is not None and program.clawback == Clawback.POINTS_DEBT else 0
    written_off = short - debt
    legs: tuple[postings.Leg, ...] = ()
    if sv:
        legs = postings.move(postings.clearing(issuer_entity or state.issuing_partner_id,
                                               record.acquirer_partner_id),
                             postings.available(state.card_number), sv)
    legs += _returned_points_legs(record, sum(p for _, p in restored),
                                  sum(p for _, p in clawed) + short, written_off)
    lines = tuple((line.line_index, line.quantity) for line in cmd.lines)
    qualifying = _share(record.qualifying_minor, before, after, total)
    coupons_back: tuple[CouponUse, ...] = ()
    if after == total:  # returned in full: coupons come back if their campaign says so
        coupons_back = tuple(
            CouponUse(coupon_id, amount, used_up, state.coupons[coupon_id].terms.funded_by)
            for coupon_id, amount, used_up in record.coupons_used
            if state.coupons[coupon_id].terms.restore_on_return)
        legs += _coupon_legs(coupons_back, record.acquirer_partner_id, back=True)
    return Decision(Result.APPROVED, (ev.PurchaseReturned(
        meta, cmd.purchase_id, lines, cmd.reason, sv, restored, clawed, written_off, qualifying,
        legs, coupons_back, _stamps_back(state, record, cmd), debt),),
        approved_amount_minor=sv)


def _stamps_back(state: CardState, record: PurchaseRecord,
                 cmd: Return) -> tuple[tuple[str, int, int], ...]:
    """The stamps the returned units earned, never more than the card still holds."""
    back: list[tuple[str, int, int]] = []
    holding = dict(state.stamps)
    returned = {line.line_index: line.quantity for line in cmd.lines}
    for key, line, earned in record.stamped:
        if line not in returned:
            continue
        left = earned - record.stamps_taken.get(f"{key}#{line}", 0)
        take = min(returned[line], left, holding.get(key, 0))
        if take > 0:
            back.append((key, line, take))
            holding[key] -= take
    return tuple(back)


def _progress(record: PurchaseRecord, cmd: Return) -> tuple[int, int, int]:
    """(returned before, returned after this return, whole purchase), by value; by quantity
    when the basket was free (every line priced 0)."""
    by_value = any(line.unit_price_minor for line in record.lines)

    def weight(index: int, quantity: int) -> int:
        line = record.lines[index]
        return quantity * line.unit_price_minor if by_value else quantity

    total = sum(weight(i, line.quantity) for i, line in enumerate(record.lines))
    before = sum(weight(i, q) for i, q in enumerate(record.returned))
    after = before + sum(weight(line.line_index, line.quantity) for line in cmd.lines)
    return before, after, total


def _restore(record: PurchaseRecord, points: int) -> tuple[tuple[str, int], ...]:
    """Redeemed points go back into the lots they came from, the latest-expiring first (the
    customer keeps the longest life), never more than each lot gave. Earlier returns filled
    the lots in the same order, so what they gave back is skipped from the same end."""
    already = record.points_restored
    restored: list[tuple[str, int]] = []
    for lot_id, taken in reversed(record.redeemed):
        skip = min(already, taken)
        already -= skip
        give = min(points, taken - skip)
        if give:
            restored.append((lot_id, give))
            points -= give
    assert points == 0, "a return restores at most what the purchase redeemed"
    return tuple(restored)


def _claw(state: CardState, record: PurchaseRecord, points: int, now_us: int,
          restored: tuple[tuple[str, int], ...]) -> tuple[tuple[str, int], int]:
    """(lot id, points) taken back and the points short because they were spent. The same
    return's restored points count as there (they are put back first), so a return that gives
    redeemed points back claws from them before anything is written off."""
    back = dict(restored)
    live = [(lot, lot.remaining + back.get(lot.lot_id, 0)) for lot in state.lots.values()
            if now_us < lot.expires_at_us and not lot.program]  # the card's own program's
    live.sort(key=lambda pair: (pair[0].lot_id != record.lot_id, pair[0].expires_at_us,
                                pair[0].earned_at_us, pair[0].lot_id))
    clawed: list[tuple[str, int]] = []
    for lot, remaining in live:
        if points == 0:
            break
        take = min(points, remaining)
        if take:
            clawed.append((lot.lot_id, take))
            points -= take
    return tuple(clawed), points


# ------------------------------------------------------------------------------ tiers


def qualifying_spend(state: CardState, at_us: int) -> int:
    """Eligible spend of the purchases in the window ending at `at_us`, less returns."""
    since = at_us - QUALIFYING_WINDOW_US
    return sum(spend for at, spend in state.history.spend if since < at <= at_us)


def review_tier(state: CardState, program: Program | None, period_end_us: int,
                meta: Meta) -> tuple[ev.TierChanged, ...]:
    """The periodic review at a period's end: a downgrade when the window that ended then no
    longer reaches the card's tier (an upgrade never waits for it). A tier reached after that
    period end is judged at the next one."""
    if program is None or not state.tier or state.tier_since_us > period_end_us:
        return ()
    spend = qualifying_spend(state, period_end_us)
    supported = program.tier_for(spend)
    if program.rank(supported) >= program.rank(state.tier) and program.rank(state.tier) >= 0:
        return ()
    return (ev.TierChanged(meta, supported, spend, period_end_us),)


# ------------------------------------------------------------------------------ expiry


def expired_points(state: CardState, now_us: int, meta: Meta,
                   own_program: str = "") -> tuple[ev.PointsExpired, ...]:
    """Expiry events for every lot whose time is up and that still has a remainder, in
    every program's purse, with their value leaving the program's outstanding points for its
    breakage (`own_program`: the owner of the card's own program, whose lots say "")."""
    found = []
    for e in purse.expire(purse.Purse(tuple(state.lots.values())), now_us):
        lot = state.lots[e.lot_id]
        owner = lot.program or own_program
        value = e.amount * lot.value_micros_per_point // MICROS
        legs = postings.move(postings.points_outstanding(owner), postings.points_breakage(owner),
                             value) if owner and value else ()
        found.append(ev.PointsExpired(meta, e.lot_id, e.amount, legs))
    return tuple(found)
