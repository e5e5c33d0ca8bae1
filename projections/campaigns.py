"""Campaign profitability (issue 9, section 5), from the log: per rule-set version and per
coupon campaign, what it gave (points and their value, discounts, coupons) and who funded it,
against the sales and the margin recorded on the lines of the purchases it touched, net of
returns. `campaigns_from_log` is the one function `loyalty-ledger report campaigns` and
FinanceService.GetCampaignProfitability both call.

A purchase counts for every rule-set version that awarded it something and every campaign
whose coupon it used; its sales and margin count in full for each (they are what the
campaign was given for, not a share). Margins are what the till recorded (`margin_minor` per
unit); a line without one counts 0.

Returns are netted in the period they are recorded in (a period's figures never change once
it is over; a purchase of an earlier period returned in this one takes its share off this
one's figures): the returned lines' sales and margin, exactly, and the return's share of what
each campaign gave the purchase (points, their value, discounts), worked out as the ledger
works out the points a return claws back (domain/purchases/decide.py: the share of the
purchase's value returned so far, cumulatively, so a purchase returned in full gives back
exactly what it was given); a coupon given back by a full return no longer counts as used.

A campaign belongs to its owner: a coupon campaign's is in its terms; a rule set's is its
scope ("alliance", the partner, or the partner of the store). A scan of the log, like the
IFRS 15 cohorts (projections/ifrs15_cohorts.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.cards import events as ev
from domain.registry.events import RuleSetPublished, StoreRegistered
from ledger.codec import REGISTRY_ID, decode_event
from ledger.store import EventStore
from projections.runner import log_rows

MICROS = 1_000_000
RULE_SET = "rule_set"
COUPON_CAMPAIGN = "coupon_campaign"
_TOPICS = frozenset(t.__struct_config__.tag for t in (  # type: ignore[attr-defined]
    ev.PurchaseMade, ev.PurchaseReturned, ev.CouponIssued, RuleSetPublished, StoreRegistered))


@dataclass
class CampaignFigures:
    kind: str  # "rule_set" or "coupon_campaign"
    name: str  # "<rule set id>@<version>" or the campaign id
    owner: str = ""  # a partner id or "alliance" ("" when the log does not say)
    funded_by: str = ""  # coupons: who pays for the discounts
    purchases: int = 0
    returns: int = 0  # returns of purchases it touched, netted below
    sales_minor: int = 0  # the purchases' totals before discounts, less the lines returned
    margin_minor: int = 0  # recorded on their lines, less the lines returned
    points: int = 0
    points_value_minor: int = 0  # at the point value they were earned at
    discount_minor: int = 0
    coupons_used: int = 0
    coupons_issued: int = 0
    funders: set[str] = field(default_factory=set)

    def row(self) -> dict[str, int | str]:
        given = self.points_value_minor + self.discount_minor
        return {"kind": self.kind, "campaign": self.name, "owner": self.owner,
                "funded_by": ",".join(sorted(self.funders)) or self.funded_by,
                "purchases": self.purchases, "returns": self.returns,
                "sales_minor": self.sales_minor, "margin_minor": self.margin_minor,
                "points": self.points, "points_value_minor": self.points_value_minor,
                "discount_minor": self.discount_minor, "coupons_used": self.coupons_used,
                "coupons_issued": self.coupons_issued, "given_minor": given,
                "margin_after_minor": self.margin_minor - given}


@dataclass
class _Given:
    """What one campaign gave one purchase (gross), for its returns' shares."""

    points: int = 0
    points_value_minor: int = 0
    discount_minor: int = 0


@dataclass
class _Touched:
    """A purchase some campaign gave something to: what a return needs to net it."""

    lines: tuple[tuple[int, int, int], ...]  # (quantity, unit price, unit margin)
    given: dict[tuple[str, str], _Given]
    coupon_campaign: dict[str, str]  # coupon id -> its campaign
    returned: list[int]  # quantity returned so far, per line


def _share(amount: int, before: int, after: int, total: int) -> int:
    """A return's share of `amount`, cumulative so the shares sum to it (as the ledger's)."""
    return amount * after // total - amount * before // total


def rule_set_owner(scope: str, partner_of_store: dict[str, str]) -> str:
    kind, _, name = scope.partition(":")
    if kind == "partner":
        return name
    if kind == "store":
        return partner_of_store.get(name, "")
    return scope  # "alliance"


def campaigns_from_log(store: EventStore, start_us: int, end_us: int,
                       owner: str = "") -> list[CampaignFigures]:
    """Every rule-set version and coupon campaign (of `owner`, "" = every one) with something
    given or returned in [start, end)."""
    found: dict[tuple[str, str], CampaignFigures] = {}
    campaign_of: dict[tuple[bytes, str], str] = {}  # (card stream, coupon id) -> campaign
    campaign_owner: dict[str, str] = {}
    rule_set_scope: dict[str, str] = {}  # "<id>@<version>" -> scope
    partner_of_store: dict[str, str] = {}
    touched: dict[str, _Touched] = {}  # purchase id -> what a return nets

    def figures(kind: str, name: str) -> CampaignFigures:
        key = (kind, name)
        if key not in found:
            if kind == RULE_SET:
                who = rule_set_owner(rule_set_scope.get(name, ""), partner_of_store)
            else:
                who = campaign_owner.get(name, "")
            found[key] = CampaignFigures(kind, name, who)
        return found[key]

    # by time on a split log: a return may be on the replacement card, in another lane
    for row in log_rows(store, _TOPICS, by_time=True):
        event = decode_event(row.state)
        if row.originator_id == REGISTRY_ID:
            if isinstance(event, RuleSetPublished):
                rs = event.rule_set
                rule_set_scope[f"{rs.rule_set_id}@{rs.version}"] = rs.scope
            elif isinstance(event, StoreRegistered):
                partner_of_store[event.store_id] = event.partner_id
            continue
        stream = row.originator_id.bytes
        issued: tuple[ev.Coupon, ...] = ()
        if isinstance(event, ev.CouponIssued):
            issued = (event.coupon,)
        elif isinstance(event, ev.PurchaseMade):
            issued = event.coupons_issued
        for coupon in issued:
            campaign_of[(stream, coupon.coupon_id)] = coupon.terms.campaign_id
            campaign_owner[coupon.terms.campaign_id] = coupon.terms.owner
        at_us = event.meta.recorded_at_us
        if isinstance(event, ev.PurchaseMade):
            _purchase(event, stream, campaign_of, figures, touched,
                      count=start_us <= at_us < end_us)
        if not start_us <= at_us < end_us:
            continue
        for coupon in issued:
            figures(COUPON_CAMPAIGN, coupon.terms.campaign_id).coupons_issued += 1
        if isinstance(event, ev.PurchaseReturned) and event.purchase_id in touched:
            _return(event, touched[event.purchase_id], figures)
    return sorted((f for f in found.values() if not owner or f.owner == owner),
                  key=lambda f: (f.kind, f.name))


def _purchase(event: ev.PurchaseMade, stream: bytes,
              campaign_of: dict[tuple[bytes, str], str],
              figures: Callable[[str, str], CampaignFigures], touched: dict[str, _Touched], *,
              count: bool) -> None:
    """Remember what each campaign gave the purchase (for its returns, whenever they come);
    with `count`, add it to the figures."""
    micros = event.points_value_micros or (event.lot.value_micros_per_point if event.lot else 0)
    given: dict[tuple[str, str], _Given] = {}
    by_rule_set: dict[str, list[ev.RuleAward]] = defaultdict(list)
    for award in event.awards:
        by_rule_set[award.rule_set].append(award)
    for rule_set, awards in by_rule_set.items():
        points = sum(a.points for a in awards)
        given[(RULE_SET, rule_set)] = _Given(points, points * micros // MICROS,
                                             sum(a.discount_minor for a in awards))
    coupons: dict[str, str] = {}
    funders: dict[str, set[str]] = defaultdict(set)
    for use in event.coupons_used:
        campaign = campaign_of.get((stream, use.coupon_id), "?")
        coupons[use.coupon_id] = campaign
        funders[campaign].add(use.funded_by)
        g = given.setdefault((COUPON_CAMPAIGN, campaign), _Given())
        g.discount_minor += use.amount_minor
    if not given:
        return
    touched[event.purchase_id] = _Touched(
        tuple((line.quantity, line.unit_price_minor, line.margin_minor) for line in event.lines),
        given, coupons, [0] * len(event.lines))
    if not count:
        return
    sales = sum(line.quantity * line.unit_price_minor for line in event.lines)
    margin = sum(line.quantity * line.margin_minor for line in event.lines)
    for (kind, name), g in given.items():
        f = figures(kind, name)
        f.purchases += 1
        f.sales_minor += sales
        f.margin_minor += margin
        f.points += g.points
        f.points_value_minor += g.points_value_minor
        f.discount_minor += g.discount_minor
        f.funders |= funders.get(name, set()) if kind == COUPON_CAMPAIGN else set()
    for campaign in coupons.values():
        figures(COUPON_CAMPAIGN, campaign).coupons_used += 1


def _return(event: ev.PurchaseReturned, purchase: _Touched,
            figures: Callable[[str, str], CampaignFigures]) -> None:
    """Take the return's share off every campaign the purchase touched."""
    by_value = any(price for _, price, _ in purchase.lines)

    def weight(index: int, quantity: int) -> int:
        return quantity * purchase.lines[index][1] if by_value else quantity

    total = sum(weight(i, line[0]) for i, line in enumerate(purchase.lines))
    before = sum(weight(i, q) for i, q in enumerate(purchase.returned))
    sales = margin = 0
    for index, quantity in event.lines:
        purchase.returned[index] += quantity
        sales += quantity * purchase.lines[index][1]
        margin += quantity * purchase.lines[index][2]
    after = sum(weight(i, q) for i, q in enumerate(purchase.returned))
    for (kind, name), g in purchase.given.items():
        f = figures(kind, name)
        f.returns += 1
        f.sales_minor -= sales
        f.margin_minor -= margin
        if total:
            f.points -= _share(g.points, before, after, total)
            f.points_value_minor -= _share(g.points_value_minor, before, after, total)
            f.discount_minor -= _share(g.discount_minor, before, after, total)
    for use in event.coupons_restored:
        campaign = purchase.coupon_campaign.get(use.coupon_id)
        if campaign is not None:
            figures(COUPON_CAMPAIGN, campaign).coupons_used -= 1
