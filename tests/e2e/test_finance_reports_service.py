"""FinanceService.GetIfrs15 and GetCampaignProfitability over gRPC, on SQLite and PostgreSQL:
the figures are the `loyalty-ledger report ifrs15|campaigns --format json` figures for the
same log (one function computes both), the standard's Example 52 comes out exactly with the
estimates published, points exchanged in and out are reported explicitly, the scopes are the
other finance reports', and every bad input is INVALID_ARGUMENT naming its field with nothing
written.

The log, in two UTC months (M1, M2):
- P1 (retail, a point = a cent): a card earns 10,000 points in M1 (a 10,000.00 sale) and buys
  two mugs and a pen with a P1 coupon; in M2 it redeems 3,000 points, exchanges 1,000 points
  for 10 P2 points (a P2 point = a dollar) and brings one mug back.
- P2 (IFRS 15 Example 52 in cents: a point = CU1 = 1.00): a card buys 100,000.00 of goods in M1
  and earns 10,000 points, redeems 4,500 in M1 and 4,000 in M2 (on lines of a category that
  earns nothing, so no cohort but the first).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from typing import Any

import grpc
import pytest

from domain.cards import commands as cc
from domain.common import Principal, Role
from domain.coupons.model import IssueCoupon
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.rates import ExchangeRate, PublishExchangeRate, Rounding
from domain.finance.cohorts import round_half_up
from domain.liability import days
from domain.points.program import DefineProgram
from domain.points.purse import ExpiryKind
from domain.purchases.commands import Purchase, Return, ReturnLine
from domain.registry import commands as rc
from domain.rules.commands import PublishRuleSet
from domain.rules.model import Effect, Line, Rule
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from ledger.store import open_store
from projections.ifrs15_cohorts import month_of
from tests.integration.test_purchase_stories import (
    EARN_1_PER_USD,
    basket,
    campaign,
    purchase,
    rule_set,
)
from tests.support.alliance import (
    Alliance,
    FakeClock,
    build_alliance,
    card_number,
    ok,
    rid,
    started_ledger,
)
from tests.support.databases import fresh_postgres
from tests.support.processes import run
from tests.support.rpc import Server, call, db_state, serve, status_of

DAY_S = 86_400
RETAIL = DefineProgram("P1", "USD", 1_000_000, int(ExpiryKind.MONTHS_AFTER), 12, "UTC", 0)
EXAMPLE = DefineProgram("P2", "USD", 100_000_000, int(ExpiryKind.NEVER), 0, "UTC", 0)
MILES = (Rule(rule_id="base", effect=Effect.EARN, rate_num=1, rate_den=10_00),  # a point/10.00
         Rule(rule_id="awards", effect=Effect.EXCLUDE, categories=("award",)))
RATE = ExchangeRate("P1", "P2", 1, 0, 1, 100, int(Rounding.DOWN), 0, 0, 100, 100_000, 0, 0)


class World:
    def __init__(self, server: Server, alliance: Alliance, clock: FakeClock, url: str) -> None:
        self.server, self.alliance, self.clock, self.url = server, alliance, clock, url
        self.finance = fpb_grpc.FinanceServiceStub(server.channel)
        self.tokens: dict[str, str] = dict(alliance.tokens)
        self.months: list[str] = []
        self.first_day = self.today = ""

    def do(self, who: str, command: Any) -> Any:
        reply = ok(self.server.ledger.call(getattr(self.alliance, who), command,
                                           request_id=rid("rep"), timeout_s=30))
        assert reply.result in (1, 2), reply  # APPROVED or PARTIALLY_APPROVED
        return reply


def _card(w: World, who: str, store: str) -> str:
    number = card_number(int.from_bytes(rid("c").encode()[-6:], "big") % 10**9)
    w.do(who, cc.IssueCard(number, "STANDARD", "USD", "cust", store))
    w.do(who, cc.ActivateCard(number, ""))
    return number


def _traffic(w: World) -> None:
    for who, command in (("p1_manager", RETAIL), ("p2_manager", EXAMPLE),
                         ("p1_manager", PublishRuleSet(rule_set(EARN_1_PER_USD))),
                         ("p2_manager", PublishRuleSet(rule_set(
                             *MILES, rule_set_id="p2-miles", scope="partner:P2"))),
                         ("admin", PublishExchangeRate(RATE)),
                         ("p1_manager", campaign("gift-5", w.clock, value_minor=5_00))):
        w.do(who, command)
    w.first_day = days.day_of(w.clock.now_us)
    # M1
    retail = _card(w, "s1_manager", "")
    w.do("t1", purchase(retail, basket(("tv", "electronics", 1, 10_000_00))))
    (coupon,) = w.do("s1_manager", IssueCoupon(retail, "gift-5")).coupons
    mugs = w.do("t1", purchase(retail, (Line("mug", "home", 2, 10_00, 4_00),
                                        Line("pen", "office", 1, 3_00, 1_00)),
                               coupons=(coupon.code,))).purchase.purchase_id
    example = _card(w, "p2_manager", "A1")
    sale = w.do("t_air", Purchase(example, "USD", basket(("goods", "x", 1, 100_000_00)), 0,
                                  False, 0, "", "r1"))
    assert sale.purchase.points_earned == 10_000
    w.do("t_air", Purchase(example, "USD", basket(("award", "award", 1, 4_500_00)), 0, False,
                           4_500, "", "r2"))
    w.months.append(month_of(w.clock.now_us))
    w.clock.advance(32 * DAY_S)
    # M2
    w.do("t1", purchase(retail, basket(("tea", "grocery", 1, 30_00)), points=3_000))
    quote = w.do("t_air", QuoteExchange(retail, "P1", "P2", 1_000, 0)).exchange
    assert quote.points_given == 10
    w.do("t_air", ExecuteExchange(retail, quote.quote_id))
    w.do("t1", Return(mugs, (ReturnLine(0, 1),), "chipped"))
    w.do("t_air", Purchase(example, "USD", basket(("award", "award", 1, 4_000_00)), 0, False,
                           4_000, "", "r3"))
    w.months.append(month_of(w.clock.now_us))
    w.today = days.day_of(w.clock.now_us)


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Iterator[World]:
    def build(url: str) -> Iterator[World]:
        store = open_store(url)
        store.create_schema()
        clock = FakeClock()
        with started_ledger(store, clock_us=clock) as ledger:
            alliance = build_alliance(ledger, ledger.admin_token)  # type: ignore[attr-defined]
            with serve(ledger) as server:
                w = World(server, alliance, clock, url)
                for name, partner in (("p1_finance", "P1"), ("p2_finance", "P2")):
                    w.tokens[name] = ok(ledger.call(alliance.admin, rc.CreateCredential(
                        Principal(Role.FINANCE, partner), name), request_id=rid("fin"))).token
                _traffic(w)
                yield w
        store.close()

    if request.param == "sqlite":
        yield from build(f"sqlite:///{tmp_path_factory.mktemp('fin-rep')}/ledger.db")
    else:
        with fresh_postgres("fin_rep") as url:
            yield from build(url)


def _ifrs15(w: World, token: str, **fields: Any) -> Any:
    fields.setdefault("as_of", w.today)
    return call(w.finance.GetIfrs15, fpb.GetIfrs15Request(**fields), token)


def _campaigns(w: World, token: str, **fields: Any) -> Any:
    fields.setdefault("from", w.first_day)
    fields.setdefault("to", w.today)
    return call(w.finance.GetCampaignProfitability,
                fpb.GetCampaignProfitabilityRequest(**fields), token)


def _rows(messages: Any, like: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The reply's messages as the command's JSON rows (its columns, its values)."""
    found = []
    for message in messages:
        row = {}
        for column, printed in (like[0] if like else {}).items():
            value = getattr(message, column)
            if column == "method":
                value = fpb.EstimateMethod.Name(value)
            elif column == "published_rate_bp" and printed == "" and value == 0:
                value = ""
            row[column] = value
        found.append(row)
    return found


def _cli(w: World, *args: str) -> Any:
    done = run("report", *args, "--format", "json", "--database", w.url)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.parametrize("method", ["runoff", "published"])
def test_ifrs15_over_grpc_is_the_commands_json(world: World, method: str) -> None:
    options: tuple[str, ...]
    if method == "published":
        options = ("--method", "published", "--expected-bps", "9500", "--estimate",
                   f"{world.months[1]}=9700")
        request = {"method": fpb.PUBLISHED, "estimates": [
            fpb.PublishedRate(redemption_rate_bp=9_500),
            fpb.PublishedRate(effective_from=world.months[1], redemption_rate_bp=9_700)]}
    else:
        options, request = ("--method", "runoff"), {"method": fpb.COHORT_RUNOFF}
    printed = _cli(world, "ifrs15", "--as-of", world.today, *options)
    reply = _ifrs15(world, world.tokens["finance"], **request)
    assert reply.as_of == printed["as_of"] == world.today
    assert fpb.EstimateMethod.Name(reply.method) == printed["method"]
    assert list(reply.periods) == printed["periods"] == world.months
    for name in ("schedule", "allocations", "estimates", "age_rates", "exchanged"):
        # every part has rows to compare (the run-off triangle is COHORT_RUNOFF's only)
        assert bool(printed[name]) == (name != "age_rates" or method == "runoff"), name
        assert _rows(getattr(reply, name), printed[name]) == printed[name], name
        assert len(getattr(reply, name)) == len(printed[name])
    assert reply.log_position >= 1
    # One program's report is that program's rows of the whole one.
    alone = _cli(world, "ifrs15", "--as-of", world.today, "--entity", "P1", *options)
    p1 = _ifrs15(world, world.tokens["p1_finance"], **request)  # its own program
    assert _rows(p1.schedule, alone["schedule"]) == alone["schedule"] == [
        r for r in printed["schedule"] if r["program"] == "P1"]


def test_example_52_comes_out_exactly_through_the_rpc(world: World) -> None:
    """IFRS 15 IE Example 52 in cents, rounded to the standard's whole units (CU): a point's
    stand-alone price CU0.95 (9,500 expected of 10,000), the sales split 91,324 / 8,676; year
    1: 4,500 redeemed, revenue 4,110, liability 4,566; year 2: 8,500 redeemed of 9,700 now
    expected, revenue 3,493 (7,603 to date), liability 1,073."""
    reply = _ifrs15(world, world.tokens["p2_finance"], method=fpb.PUBLISHED, estimates=[
        fpb.PublishedRate(effective_from=world.months[0], redemption_rate_bp=9_500),
        fpb.PublishedRate(effective_from=world.months[1], redemption_rate_bp=9_700)])

    def cu(minor: int) -> int:
        return round_half_up(Fraction(minor, 100))

    (allocation,) = reply.allocations
    assert (allocation.program, allocation.sales_minor, allocation.points_ssp_minor) == (
        "P2", 100_000_00, 9_500_00)
    assert (cu(allocation.goods_minor), cu(allocation.points_minor)) == (91_324, 8_676)
    year1, year2 = reply.schedule
    assert [year1.period, year2.period] == world.months
    assert (year1.points_earned, year1.points_redeemed, year2.points_redeemed) == (
        10_000, 4_500, 4_000)
    assert (cu(year1.recognised_minor), cu(year1.closing_minor)) == (4_110, 4_566)
    assert (cu(year2.recognised_minor), cu(year2.closing_minor)) == (3_493, 1_073)
    assert cu(year1.recognised_minor + year2.recognised_minor) == 7_603
    assert (year1.allocated_minor, year1.recognised_minor, year2.recognised_minor) == (
        867_580, 410_959, 349_292)  # as tests/unit/test_ifrs15.py works it out in cents
    assert [(e.period, e.published_rate_bp, e.expected_points) for e in reply.estimates] == [
        (world.months[0], 9_500, 9_500), (world.months[1], 9_700, 9_700)]
    # The 10 points P2 received by exchange are no cohort: they are reported apart.
    assert [(x.period, x.received_points, x.received_minor, x.closing_points)
            for x in reply.exchanged] == [(world.months[1], 10, 10_00, 10)]


def test_exchanged_points_are_reported_explicitly(world: World) -> None:
    reply = _ifrs15(world, world.tokens["finance"], method=fpb.COHORT_RUNOFF, program_id="P1")
    # The 1,000 points exchanged out of P1's first cohort count as its redemptions in M2
    # (with the 3,000 the tea took), and the report says how many of them were exchanges.
    m2 = next(r for r in reply.schedule if r.period == world.months[1])
    assert m2.points_redeemed == 3_000 + 1_000
    assert [(x.program, x.period, x.cohort_exchanged_out_points, x.received_points)
            for x in reply.exchanged] == [("P1", world.months[1], 1_000, 0)]


def test_campaign_profitability_over_grpc_is_the_commands_json(world: World) -> None:
    printed = _cli(world, "campaigns", "--from", world.first_day, "--to", world.today)
    reply = _campaigns(world, world.tokens["auditor"])
    assert (getattr(reply, "from"), reply.to) == (world.first_day, world.today)
    assert _rows(reply.rows, printed) == printed
    rows = {r.campaign: r for r in reply.rows}
    assert set(rows) == {"p1-everyday@1", "p2-miles@1", "gift-5"}
    gift = rows["gift-5"]
    # one mug of 23.00 came back: its sales and margin, and 10/23 of the coupon's 5.00
    assert (gift.owner, gift.returns, gift.sales_minor, gift.margin_minor, gift.discount_minor,
            gift.funded_by) == ("P1", 1, 13_00, 5_00, 5_00 - 217, "P1")
    assert rows["p2-miles@1"].owner == "P2"
    assert [r.campaign for r in _campaigns(world, world.tokens["p1_finance"]).rows] == [
        "gift-5", "p1-everyday@1"]  # its own campaigns only (coupon campaigns sort first)
    alone = _cli(world, "campaigns", "--from", world.first_day, "--to", world.today,
                 "--entity", "P2")
    assert _rows(_campaigns(world, world.tokens["finance"], entity_id="P2").rows, alone) == \
        alone == [r for r in printed if r["owner"] == "P2"]


def test_scopes_are_the_finance_reports_scopes(world: World) -> None:
    for who in ("finance", "auditor"):
        assert {r.program for r in _ifrs15(world, world.tokens[who],
                                           method=fpb.COHORT_RUNOFF).schedule} == {"P1", "P2"}
    admin = _ifrs15(world, world.alliance.admin_token, method=fpb.COHORT_RUNOFF)
    assert {r.program for r in admin.schedule} == {"P1", "P2"}
    mine = _ifrs15(world, world.tokens["p1_finance"], method=fpb.COHORT_RUNOFF)
    assert {r.program for r in mine.schedule} == {"P1"}
    assert {x.program for x in mine.exchanged} == {"P1"}
    for method, request in (
            (world.finance.GetIfrs15, fpb.GetIfrs15Request(method=fpb.COHORT_RUNOFF,
                                                           program_id="P2")),
            (world.finance.GetCampaignProfitability, fpb.GetCampaignProfitabilityRequest(
                **{"from": world.first_day}, entity_id="P2"))):
        denied = status_of(method, request, world.tokens["p1_finance"])
        assert denied is not None and denied.code == grpc.StatusCode.PERMISSION_DENIED
        for who in ("p1_manager", "t1", "s1_manager", "gw1"):
            refused = status_of(method, request, world.tokens[who])
            assert refused is not None and refused.code == grpc.StatusCode.PERMISSION_DENIED, \
                (who, refused)
        nobody = status_of(method, request, None)
        assert nobody is not None and nobody.code == grpc.StatusCode.UNAUTHENTICATED


def _published(*rates: tuple[str, int]) -> list[fpb.PublishedRate]:
    return [fpb.PublishedRate(effective_from=m, redemption_rate_bp=bp) for m, bp in rates]


M2 = "M2"  # replaced by the world's second month


@pytest.mark.parametrize(("method", "fields", "field"), [
    ("GetIfrs15", {"as_of": "2026-02-30"}, "as_of"),
    ("GetIfrs15", {"as_of": "9999-12-31"}, "as_of"),  # more months than a report covers
    ("GetIfrs15", {"program_id": "P9"}, "program_id"),
    ("GetIfrs15", {"program_id": "bad id!"}, "program_id"),
    ("GetIfrs15", {"method": 0}, "method"),
    ("GetIfrs15", {"method": 7}, "method"),
    ("GetIfrs15", {"method": 1}, "estimates"),  # PUBLISHED without a rate
    ("GetIfrs15", {"method": 2, "estimates": _published(("", 9_000))}, "estimates"),
    ("GetIfrs15", {"method": 1, "estimates": _published(("", 10_001))},
     "estimates[0].redemption_rate_bp"),
    ("GetIfrs15", {"method": 1, "estimates": _published(("", -1))},
     "estimates[0].redemption_rate_bp"),
    ("GetIfrs15", {"method": 1, "estimates": _published(("", 9_000), ("2026-13", 9_000))},
     "estimates[1].effective_from"),
    ("GetIfrs15", {"method": 1, "estimates": _published(("", 9_000), ("", 9_100))},
     "estimates[1].effective_from"),
    ("GetIfrs15", {"method": 1, "estimates": _published(("9999-01", 9_000))},
     "estimates[0].effective_from"),  # after the report's last month
    ("GetIfrs15", {"method": 1, "estimates": _published((M2, 9_000))},
     "estimates"),  # none in force from the first cohort
    ("GetCampaignProfitability", {}, "from"),
    ("GetCampaignProfitability", {"from": "2026-12-03", "to": "2026-12-01"}, "to"),
    ("GetCampaignProfitability", {"from": "2026-12-01", "to": "tomorrow"}, "to"),
    ("GetCampaignProfitability", {"from": "2026-12-01", "entity_id": "P9"}, "entity_id"),
    ("GetCampaignProfitability", {"from": "2026-12-01", "entity_id": "P 1"}, "entity_id"),
])
def test_bad_input_names_its_field_and_writes_nothing(world: World, method: str,
                                                      fields: dict[str, Any],
                                                      field: str) -> None:
    ledger = world.server.ledger
    before = db_state(ledger)
    fields = dict(fields)
    if method == "GetIfrs15":
        fields.setdefault("method", fpb.COHORT_RUNOFF)
        fields.setdefault("as_of", world.today)
        fields["estimates"] = [fpb.PublishedRate(
            effective_from=world.months[1] if e.effective_from == M2 else e.effective_from,
            redemption_rate_bp=e.redemption_rate_bp) for e in fields.get("estimates", [])]
        request: Any = fpb.GetIfrs15Request(**fields)
    else:
        request = fpb.GetCampaignProfitabilityRequest(**fields)
    for who in ("finance", "p1_finance"):
        refused = status_of(getattr(world.finance, method), request, world.tokens[who])
        assert refused is not None and refused.code == grpc.StatusCode.INVALID_ARGUMENT, \
            (who, refused)
        assert refused.details.startswith(f"{field}:"), refused
    assert db_state(ledger) == before


@pytest.mark.parametrize(("args", "field"), [
    (("ifrs15", "--method", "published", "--estimate", "2027-13=9000"),
     "--estimate[1].effective_from"),
    (("ifrs15", "--method", "published", "--estimate", "2027-01"), "--estimate"),
    (("ifrs15", "--method", "published", "--estimate", "2027-01=10001"), "--estimate"),
    (("ifrs15", "--method", "runoff", "--estimate", "2027-01=9000"), "--estimate"),
    (("ifrs15", "--entity", "P9"), "--entity"),
    (("campaigns", "--entity", "P9"), "--entity"),
    (("campaigns", "--from", "2026-12-31", "--to", "2026-12-01"), "--to"),
])
def test_the_commands_bad_input_names_its_option(world: World, args: tuple[str, ...],
                                                 field: str) -> None:
    before = db_state(world.server.ledger)
    done = run("report", *args, "--database", world.url)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.startswith(f"loyalty-ledger: {field}:"), done.stderr
    assert db_state(world.server.ledger) == before
