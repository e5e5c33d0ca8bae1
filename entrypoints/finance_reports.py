"""`loyalty-ledger report liability|rollforward|breakage` (a table, CSV or JSON, from the
finance read model brought up to the log's end) and `loyalty-ledger project --rebuild NAME`
(a read model rebuilt from zero with a progress bar)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import msgspec

from domain.common import InvalidInput, shown
from domain.liability import days
from entrypoints.reports import render


def _today() -> str:
    return days.day_of(time.time_ns() // 1000)


def _range(ns: argparse.Namespace) -> tuple[str, str]:
    end = days.parse_day(ns.to, "--to") if ns.to else _today()
    start = days.parse_day(ns.from_day, "--from") if ns.from_day else end[:8] + "01"
    if start > end:
        raise InvalidInput("--to", f"must not be before --from ({start})")
    return start, end


def _entity(ns: argparse.Namespace, store: Any) -> str:
    if not ns.entity:
        return ""
    from ledger.state import State

    state = State(store)
    state.load_registry()
    if ns.entity not in state.registry.partners and ns.entity not in state.registry.programs:
        raise InvalidInput("--entity", f"unknown partner {shown(ns.entity)}")
    return str(ns.entity)


def liability_rows(found: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [
        {"as_of": found.as_of, "kind": "STORED_VALUE", "entity": s.issuer_id,
         "currency": s.currency, "available_or_vested": s.available_minor,
         "held_or_pending": s.held_minor, "outstanding": s.outstanding_minor,
         "point_value_micros": "", "value_minor": s.outstanding_minor, "debt_points": ""}
        for s in found.stored_value]
    rows += [{"as_of": found.as_of, "kind": "POINTS", "entity": p.program_id,
              "currency": p.currency, "available_or_vested": p.vested_points,
              "held_or_pending": p.pending_points, "outstanding": p.outstanding_points,
              "point_value_micros": p.point_value_micros, "value_minor": p.value_minor,
              "debt_points": p.debt_points} for p in found.points]
    return rows


LINES = ("loaded", "earned", "exchanged_in", "refunded", "restored", "spent", "redeemed",
         "clawed_back", "exchanged_out", "expired", "written_off", "adjustments")


def roll_forward_rows(found: Any) -> list[dict[str, Any]]:
    """One row per issuer and program, every line a column ("" where a line is not its)."""
    rows = []
    for r in found:
        row: dict[str, Any] = {"kind": r.kind, "entity": r.entity_id, "currency": r.currency,
                               "opening": r.opening}
        lines = dict(r.lines)
        row.update({line: lines.get(line, "") for line in LINES})
        row["closing"] = r.closing
        rows.append(row)
    return rows


def _rates(ns: argparse.Namespace) -> list[tuple[str, int]]:
    """--expected-bps (from each program's first cohort) and every --estimate YYYY-MM=BPS."""
    if not 0 <= ns.expected_bps <= 10_000:
        raise InvalidInput("--expected-bps", "must be 0..10000 basis points")
    rates = [("", ns.expected_bps)]
    for text in ns.estimate:
        month, _, bps = text.partition("=")
        if not bps.isdigit() or not 0 <= int(bps) <= 10_000:
            raise InvalidInput("--estimate", f"must be YYYY-MM=BPS (0..10000), not {shown(text)}")
        rates.append((month, int(bps)))
    return rates


def cmd_report_ifrs15(ns: argparse.Namespace, store: Any) -> int:
    """IFRS 15 for points: the cohorts traced lot by lot from the log up to the end of
    --as-of, then allocation, recognition and the liability schedule per program and month,
    and the points received by exchange apart (projections/ifrs15_cohorts.ifrs15_from_log,
    which FinanceService.GetIfrs15 calls too)."""
    from domain.finance.estimates import Method
    from projections.ifrs15_cohorts import ifrs15_from_log

    as_of = days.parse_day(ns.as_of, "--as-of") if ns.as_of else _today()
    if ns.method == "published":
        method, rates = Method.PUBLISHED, _rates(ns)
    else:
        if ns.estimate:
            raise InvalidInput("--estimate", "only --method published reads published rates")
        method, rates = Method.COHORT_RUNOFF, []
    found = ifrs15_from_log(store, as_of, _entity(ns, store), method, rates,
                            rates_field="--estimate")
    if ns.format == "json":
        print(json.dumps(found.as_json(), indent=1))
        return 0
    if found.report is None:
        print("(no points earned by sales up to the end of that day)")
    else:
        if ns.format == "table":
            print(f"IFRS 15 for points to the end of {as_of} (UTC), per program and month; "
                  f"expected redemptions: {ns.method}"
                  + (" " + ", ".join(f"{m or 'first cohort'}: {bp} bp" for m, bp in rates)
                     if ns.method == "published" else " (cohort run-off)"))
            print("\nallocation of the sales that earned points (relative stand-alone prices)")
        sys.stdout.write(render(found.allocation_rows(), ns.format))
        if ns.format == "table":
            print("\ncontract liability schedule (minor units)")
        sys.stdout.write(render(found.schedule_rows(), ns.format))
    if found.exchanged:
        if ns.format == "table":
            print("\npoints received by exchange (no sale to allocate: a liability at the value "
                  "the exchange moved, recognised as they are redeemed, exchanged on or expire)")
        sys.stdout.write(render(found.exchanged_rows(), ns.format))
    return 0


def cmd_report_campaigns(ns: argparse.Namespace, store: Any) -> int:
    """Campaign profitability per rule-set version and coupon campaign over --from..--to, net
    of returns (projections/campaigns.campaigns_from_log, which
    FinanceService.GetCampaignProfitability calls too)."""
    from projections.campaigns import campaigns_from_log

    start, end = _range(ns)
    found = campaigns_from_log(store, days.end_us(start) - days.DAY_US, days.end_us(end),
                               _entity(ns, store))
    if ns.format == "table":
        print(f"campaigns from the start of {start} to the end of {end} (UTC): what each "
              "gave against the sales and margin of the purchases it touched, net of returns "
              "(minor units)")
    sys.stdout.write(render([f.row() for f in found], ns.format))
    return 0


def cmd_report_finance(ns: argparse.Namespace, store: Any) -> int:
    from projections import finance

    if ns.report == "ifrs15":
        return cmd_report_ifrs15(ns, store)
    if ns.report == "campaigns":
        return cmd_report_campaigns(ns, store)
    entity = _entity(ns, store)
    runner = finance.finance_runner(store)
    if ns.report == "liability":
        as_of = days.parse_day(ns.as_of, "--as-of") if ns.as_of else _today()
        found = finance.liability(runner, as_of, entity)
        if ns.format == "json":
            print(json.dumps(msgspec.to_builtins(found), indent=1))
            return 0
        if ns.format == "table":
            print(f"liability as of the end of {as_of} (UTC); money in minor units")
        sys.stdout.write(render(liability_rows(found), ns.format))
        return 0
    start, end = _range(ns)
    if ns.report == "rollforward":
        rolled = finance.roll_forward(runner, start, end, entity)
        if ns.format == "json":
            print(json.dumps(msgspec.to_builtins(rolled), indent=1))
            return 0
        if ns.format == "table":
            print(f"roll-forward from the start of {start} to the end of {end} (UTC): opening "
                  "+ loaded/earned + exchanged in + refunded/restored - spent/redeemed - "
                  "clawed back - exchanged out - expired - written off + adjustments = "
                  "closing")
        sys.stdout.write(render(roll_forward_rows(rolled), ns.format))
        return 0
    broken = finance.breakage(runner, start, end, entity)
    if ns.format == "json":
        print(json.dumps(msgspec.to_builtins(broken), indent=1))
        return 0
    if ns.format == "table":
        print(f"breakage (expired) per UTC month from {start} to {end}")
    sys.stdout.write(render([msgspec.to_builtins(b) for b in broken], ns.format))
    return 0


def cmd_rebuild(ns: argparse.Namespace, store: Any) -> int:
    """Rebuild one read model from zero (progress on stderr), then print its position and,
    for the finance model, its digest (equal to the digest of a model that followed live)."""
    from projections import finance
    from projections.audit import ProgressBar
    from projections.movements import movements_runner
    from projections.settlement import settlement_runner

    make = {"finance": finance.finance_runner, "movements": movements_runner,
            "settlement": settlement_runner}
    runner = make[ns.rebuild](store)
    bar = ProgressBar(sys.stderr, f"rebuild {ns.rebuild}")
    start = time.perf_counter()
    position = runner.rebuild(progress=lambda done, total: bar("log", done, total))
    bar.end()
    seconds = time.perf_counter() - start
    line = f"rebuilt {ns.rebuild} to log position {position:,} in {seconds:.1f} s"
    if ns.rebuild == "finance":
        line += f"; digest {finance.digest(runner)}"
    print(line)
    return 0
