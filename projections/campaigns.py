"""Campaign profitability (issue 9, section 5), from the log: per rule-set version and per
coupon campaign, what it gave (points and their value, discounts, coupons) and who funded it,
against the sales and the margin recorded on the lines of the purchases it touched.

A purchase counts for every rule-set version that awarded it something and every campaign
whose coupon it used; its sales and margin count in full for each (they are what the
campaign was given for, not a share). Margins are what the till recorded (`margin_minor` per
unit); a line without one counts 0. Figures are as sold: returns are not netted (a return is a
movement of a later day, shown in the roll-forward). A scan of the log over the days asked
for, like the IFRS 15 cohorts (projections/ifrs15_cohorts.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from domain.cards import events as ev
from ledger.codec import decode_event
from ledger.store import EventStore
from projections.runner import log_rows

MICROS = 1_000_000
_TOPICS = frozenset(t.__struct_config__.tag for t in (  # type: ignore[attr-defined]
    ev.PurchaseMade, ev.CouponIssued))


@dataclass
class CampaignFigures:
    kind: str  # "rule_set" or "coupon_campaign"
    name: str  # "<rule set id>@<version>" or the campaign id
    funded_by: str = ""  # coupons: who pays for the discounts
    purchases: int = 0
    sales_minor: int = 0  # the purchases' totals before discounts
    margin_minor: int = 0  # recorded on their lines
    points: int = 0
    points_value_minor: int = 0  # at the point value they were earned at
    discount_minor: int = 0
    coupons_used: int = 0
    coupons_issued: int = 0
    funders: set[str] = field(default_factory=set)

    def row(self) -> dict[str, int | str]:
        given = self.points_value_minor + self.discount_minor
        return {"kind": self.kind, "campaign": self.name,
                "funded_by": ",".join(sorted(self.funders)) or self.funded_by,
                "purchases": self.purchases, "sales_minor": self.sales_minor,
                "margin_minor": self.margin_minor, "points": self.points,
                "points_value_minor": self.points_value_minor,
                "discount_minor": self.discount_minor, "coupons_used": self.coupons_used,
                "coupons_issued": self.coupons_issued, "given_minor": given,
                "margin_after_minor": self.margin_minor - given}


def campaigns_from_log(store: EventStore, start_us: int, end_us: int) -> list[CampaignFigures]:
    """Every rule-set version and coupon campaign with something given in [start, end)."""
    found: dict[tuple[str, str], CampaignFigures] = {}
    campaign_of: dict[tuple[bytes, str], str] = {}  # (card stream, coupon id) -> campaign

    def figures(kind: str, name: str) -> CampaignFigures:
        key = (kind, name)
        if key not in found:
            found[key] = CampaignFigures(kind, name)
        return found[key]

    for row in log_rows(store, _TOPICS):
        event = decode_event(row.state)
        stream = row.originator_id.bytes
        issued = ((event.coupon,) if isinstance(event, ev.CouponIssued)
                  else event.coupons_issued)
        for coupon in issued:
            campaign_of[(stream, coupon.coupon_id)] = coupon.terms.campaign_id
        at_us = event.meta.recorded_at_us
        if not start_us <= at_us < end_us:
            continue
        for coupon in issued:
            figures("coupon_campaign", coupon.terms.campaign_id).coupons_issued += 1
        if isinstance(event, ev.PurchaseMade):
            _purchase(event, stream, campaign_of, figures)
    return sorted(found.values(), key=lambda f: (f.kind, f.name))


def _purchase(event: ev.PurchaseMade, stream: bytes, campaign_of: dict[tuple[bytes, str], str],
              figures: Callable[[str, str], CampaignFigures]) -> None:
    sales = sum(line.quantity * line.unit_price_minor for line in event.lines)
    margin = sum(line.quantity * line.margin_minor for line in event.lines)
    micros = event.points_value_micros or (event.lot.value_micros_per_point if event.lot else 0)
    touched: dict[tuple[str, str], CampaignFigures] = {}
    by_rule_set: dict[str, list[ev.RuleAward]] = defaultdict(list)
    for award in event.awards:
        by_rule_set[award.rule_set].append(award)
    for rule_set, awards in by_rule_set.items():
        f = figures("rule_set", rule_set)
        points = sum(a.points for a in awards)
        f.points += points
        f.points_value_minor += points * micros // MICROS
        f.discount_minor += sum(a.discount_minor for a in awards)
        touched[("rule_set", rule_set)] = f
    for use in event.coupons_used:
        campaign = campaign_of.get((stream, use.coupon_id), "?")
        f = figures("coupon_campaign", campaign)
        f.coupons_used += 1
        f.discount_minor += use.amount_minor
        f.funders.add(use.funded_by)
        touched[("coupon_campaign", campaign)] = f
    for f in touched.values():
        f.purchases += 1
        f.sales_minor += sales
        f.margin_minor += margin
