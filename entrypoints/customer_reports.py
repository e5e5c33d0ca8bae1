"""`loyalty-ledger report pyramid|matrix|rfm|churn|visits|affinity` (a table, CSV or JSON from
the customer read model brought up to the log's end) and `loyalty-ledger project --rebuild
customers`.

`report_sections(name, data)` turns a view's plain struct (projections.customers.view) into
titled rows, so a chart or a page can use the same data as the table."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgspec

from domain.common import InvalidInput, shown
from domain.customers import activity as act
from domain.customers.visits import WEEKDAYS
from entrypoints.reports import render

VIEWS = ("pyramid", "matrix", "rfm", "churn", "visits", "affinity")


def _pct(bps: int) -> str:
    return f"{bps / 100:.2f}%"


def _shares(pairs: Any) -> str:
    return " ".join(f"{k}:{_pct(v)}" for k, v in pairs)


def report_sections(name: str, data: Any, top: int = 20) -> list[tuple[str, list[dict[str,
                                                                                    Any]]]]:
    """(title, rows) of a view, in the order a table shows them."""
    if name == "pyramid":
        return [
            (f"customer pyramid by net spend, {data.first_day}..{data.last_day}: "
             f"{data.customers} customers, {data.spend_minor} spent (minor units)",
             [{"level": lv.level, "customers": lv.customers, "spend_minor": lv.spend_minor,
               "share": _pct(lv.share_bps), "min_spend_minor": lv.min_spend_minor,
               "max_spend_minor": lv.max_spend_minor} for lv in data.levels]),
            ("movement since the previous period (- = not a customer then / now)",
             [{"previous": m.previous, "current": m.current, "customers": m.customers}
              for m in data.movement])]
    if name == "matrix":
        return [(f"value matrix {data.first_day}..{data.last_day}: sales split at "
                 f"{data.sales_split_minor}, margin split at {data.margin_split_minor} "
                 "(above the split is high)",
                 [msgspec.to_builtins(q) for q in data.quadrants])]
    if name == "rfm":
        return [
            (f"RFM segments {data.first_day}..{data.last_day} (recency cuts "
             f"{data.recency_cuts} days, frequency {data.frequency_cuts} visits, monetary "
             f"{data.monetary_cuts})",
             [msgspec.to_builtins(s) for s in data.segments]),
            (f"customers by score (top {top})",
             [{"customer": s.customer, "score": s.score, "segment": s.segment,
               "recency_days": s.recency_days, "visits": s.visits,
               "spend_minor": s.spend_minor} for s in data.customers[:top]])]
    if name == "churn":
        return [
            (f"lifecycle as of {data.as_of}",
             [msgspec.to_builtins(s) for s in data.statuses]),
            ("became at risk this week (usual interval 0 = too few visits: fixed threshold)",
             [msgspec.to_builtins(a) for a in data.became_at_risk[:top]]),
            ("spend by RFM segment as of the previous period's end: previous period against "
             "this one", [msgspec.to_builtins(s) for s in data.segments])]
    if name == "visits":
        return [
            (f"visits and net spend by weekday and hour (store's local time), "
             f"{data.first_day}..{data.last_day}",
             [{"weekday": WEEKDAYS[c.weekday], "hour": c.hour, "visits": c.visits,
               "spend_minor": c.spend_minor} for c in data.cells]),
            ("by weekday", [{"weekday": WEEKDAYS[c.weekday], "visits": c.visits,
                             "spend_minor": c.spend_minor} for c in data.by_weekday])]
    if name == "affinity":
        return [
            (f"store affinity {data.first_day}..{data.last_day}: {data.customers} customers, "
             f"{data.spend_minor} spent; at 2+ partners: {data.multi_partner_customers} "
             f"customers, {data.multi_partner_spend_minor} spent; also seen at another "
             f"partner: {data.elsewhere_customers}",
             [{"kind": p.kind, "id": p.id, "partner": p.partner_id,
               "customers": p.customers, "spend_minor": p.spend_minor,
               "share": _pct(p.share_bps)} for p in data.places]),
            ("flows: first visit at one partner, later at another",
             [msgspec.to_builtins(f) for f in data.flows]),
            (f"customers' shares of spend (top {top})",
             [{"customer": c.customer, "spend_minor": c.spend_minor, "partners": c.partners,
               "stores": _shares(c.stores), "partner_shares": _shares(c.partner_shares)}
              for c in data.customers_top[:top]])]
    raise ValueError(name)


def _scope(ns: argparse.Namespace, store: Any) -> tuple[str, str]:
    if not ns.partner and not ns.store:
        return "", ""
    from ledger.state import State

    state = State(store)
    state.load_registry()
    registry = state.registry
    if ns.partner and ns.partner not in registry.partners:
        raise InvalidInput("--partner", f"unknown partner {shown(ns.partner)}")
    if ns.store:
        found = registry.stores.get(ns.store)
        if found is None:
            raise InvalidInput("--store", f"unknown store {shown(ns.store)}")
        if ns.partner and found.partner_id != ns.partner:
            raise InvalidInput("--store", f"{shown(ns.store)} is not a store of "
                                          f"{shown(ns.partner)}")
    return ns.partner, ns.store


def cmd_report_customers(ns: argparse.Namespace, store: Any) -> int:
    from projections import customers

    as_of = (act.parse_day(ns.as_of, "--as-of") if ns.as_of
             else act.today(time.time_ns() // 1000))
    months = act.check_months(ns.months, "--months")
    if ns.top < 1:
        raise InvalidInput("--top", "must be at least 1")
    if ns.chart and not ns.chart.lower().endswith((".png", ".svg")):
        raise InvalidInput("--chart", "the file must end in .png or .svg")
    partner, store_id = _scope(ns, store)
    runner = customers.customers_runner(store)
    data = customers.view(runner, ns.report, as_of, months, partner, store_id,
                          sales_split=ns.sales_split, margin_split=ns.margin_split,
                          top=ns.top, listed=None if ns.format == "json" else ns.top)
    if ns.chart:
        from entrypoints.charts import save
        from entrypoints.customer_charts import chart

        save(chart(ns.report, data), ns.chart)
        print(f"chart: wrote {ns.chart}", file=sys.stderr)
    if ns.format == "json":
        print(json.dumps(msgspec.to_builtins(data), indent=1))
        return 0
    scope = (f"store {store_id}" if store_id else f"partner {partner}" if partner
             else "the alliance")
    for index, (title, rows) in enumerate(report_sections(ns.report, data, ns.top)):
        if ns.format == "table":
            print(("" if index == 0 else "\n") + (f"[{scope}] " if index == 0 else "") + title)
        elif index:
            print()
        sys.stdout.write(render(rows, ns.format))
    return 0


def cmd_rebuild_customers(ns: argparse.Namespace, store: Any) -> int:
    """Rebuild the customer read model from zero (progress on stderr), then print its
    position and digest (equal to the digest of a model that followed live)."""
    from projections import customers
    from projections.audit import ProgressBar

    runner = customers.customers_runner(store)
    bar = ProgressBar(sys.stderr, "rebuild customers")
    start = time.perf_counter()
    position = runner.rebuild(progress=lambda done, total: bar("log", done, total))
    bar.end()
    seconds = time.perf_counter() - start
    print(f"rebuilt customers to log position {position:,} in {seconds:.1f} s; "
          f"digest {customers.digest(runner)}")
    return 0


def page_sections(store: Any, as_of: str) -> list[Any]:
    """The report page's customer views, alliance-wide, as of UTC day `as_of` (each a chart
    and its tables, the top 10 of any list of customers)."""
    from entrypoints.charts import svg
    from entrypoints.customer_charts import chart
    from entrypoints.report_page import Section
    from projections import customers

    runner = customers.customers_runner(store)
    runner.catch_up()
    day = act.parse_day(as_of, "--as-of")
    notes = {
        "pyramid": "Customers by net spend over the last 12 months: A the top 1 %, B the next "
                   "to 5 %, C the next to 20 %, D the rest (a tie goes whole to the higher "
                   "level).",
        "matrix": "Customers by sales and by gross margin, split at the period's medians.",
        "rfm": "Recency, frequency and monetary scores 1-5 by quantiles, and named segments.",
        "churn": "New, active, at risk and lapsed, against each customer's own usual "
                 "interval between visits; who became at risk this week.",
        "visits": "Visits and net spend by weekday and hour, in each store's timezone.",
        "affinity": "Each partner's customers and those who shop at two or more partners, "
                    "and the flows between partners.",
    }
    sections = []
    for name in VIEWS:
        data = customers.view(runner, name, day, current=False, top=10, listed=10)
        sections.append(Section(f"Customers: {name}", notes[name],
                                [(title, rows) for title, rows in
                                 report_sections(name, data, top=10)],
                                svg(chart(name, data))))
    return sections
