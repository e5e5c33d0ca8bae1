"""IFRS 15 for points from the ledger's own log: cohorts traced lot by lot (earned by sales,
redeemed and expired in later months, returns taking their share off), and the report
command's schedule for them; a cohort's revenue is its allocation times redeemed over expected.
"""

from __future__ import annotations

import json
from typing import Any

from domain.cards import commands as cc
from domain.common import Result
from domain.finance.estimates import Method, PublishedEstimate
from domain.finance.ifrs15 import ifrs15_report
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.purchases import commands as pc
from domain.purchases.commands import Line
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Rule, RuleSet
from projections.ifrs15_cohorts import cohorts_from_log, month_of
from tests.support.alliance import ok, rid
from tests.support.processes import run

USD = "USD"
DAY_S = 86_400


def call(ledger: Any, who: str, command: Any) -> Any:
    return ok(ledger.call(who, command, request_id=rid("ifrs"), timeout_s=30))


def test_cohorts_and_the_schedule_from_the_log(ledger, alliance, clock, store_url):
    assert call(ledger, alliance.p1_manager, DefineProgram(
        "P1", USD, 1_000_000, int(ExpiryKind.MONTHS_AFTER), 2, "UTC", 0)).result == 1
    assert call(ledger, alliance.admin, PublishRuleSet(RuleSet(
        rule_set_id="earn", version=1, scope="alliance", valid_from_us=0, valid_to_us=2**62,
        rules=(Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=10),)))).result == 1
    number = call(ledger, alliance.p1_manager, cc.IssueCard("", "STANDARD", USD, "",
                                                           "S1")).card_number
    assert call(ledger, alliance.p1_manager, cc.ActivateCard(number, "")).result == 1
    first_month = month_of(clock.now_us)
    # a sale of 1,000.00 earns 10,000 points (worth 100.00)
    sale = call(ledger, alliance.t1, pc.Purchase(number, USD, (Line("tv", "x", 1, 100_000),),
                                                 0, False, 0, "", "r1"))
    assert sale.result == Result.APPROVED and sale.purchase.points_earned == 10_000
    clock.advance(32 * DAY_S)
    # next month 4,500 points pay 45.00 of a 45.00 basket (which earns nothing: paid in points)
    paid = call(ledger, alliance.t1, pc.Purchase(number, USD, (Line("tea", "x", 1, 4_500),),
                                                 0, False, 4_500, "", "r2"))
    assert paid.result == Result.APPROVED, paid
    cohorts, months = cohorts_from_log(ledger.store, clock.now_us)
    assert months[0] == first_month and len(months) == 2
    assert len(cohorts) == 2  # the tea earned 450 points in the second month
    first = cohorts[0]
    assert (first.program, first.period, first.points_earned, first.sales_minor) == (
        "P1", first_month, 10_000, 100_000)
    assert first.face_value_micros == 10_000 * 1_000_000
    assert first.redeemed_by_age == (0, 4_500) and first.expired_by_age == (0, 0)
    found = ifrs15_report(cohorts, months, Method.PUBLISHED,
                          [PublishedEstimate("P1", first_month, 9_500)])
    year_one = next(row for row in found.schedule_rows() if row["period"] == months[1])
    # allocation 100,000 x 9,500 / 109,500 = 8,676 to the points (IFRS 15 IE Example 52's
    # arithmetic in cents); revenue to date 8,676 x 4,500 / 9,500 = 4,110 (rounded half up)
    allocation = next(a for a in found.allocation_rows() if a["period"] == first_month)
    assert allocation["points_minor"] == 8_676
    assert year_one["recognised_minor"] == 4_110, year_one
    assert year_one["closing_minor"] == 8_676 - 4_110
    # the command prints the same schedule
    done = run("report", "ifrs15", "--method", "published", "--expected-bps", "9500",
               "--format", "json", "--database", store_url)
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    assert next(a["points_minor"] for a in printed["allocations"]) == 8_676
    bad = run("report", "ifrs15", "--method", "published", "--expected-bps", "20000",
              "--database", store_url)
    assert bad.returncode == 2 and "--expected-bps" in bad.stderr
