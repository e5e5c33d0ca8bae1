"""`loyalty-ledger report html --out FILE`: one self-contained page (inline CSS and SVG, no
script, nothing fetched) with the liability and the settlement figures of stage 3 and the
customer views of stage 4, each a table and, where a picture says it faster, a chart. Every
figure on the page is one of the underlying reports' (the same functions the `report`
commands print); tests/e2e/test_report_page.py opens it in headless Chromium and
finds them."""

from __future__ import annotations

import argparse
import html
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from domain.common import format_time_us
from domain.liability import days
from entrypoints import charts


@dataclass
class Section:
    title: str
    note: str = ""
    tables: list[tuple[str, list[dict[str, Any]]]] = field(default_factory=list)
    chart_svg: str = ""


def liability_section(store: Any, as_of: str) -> Section:
    from entrypoints.finance_reports import liability_rows
    from projections import finance

    rows = liability_rows(finance.liability(finance.finance_runner(store), as_of))
    money = [r for r in rows if r["kind"] == "STORED_VALUE"]
    points = [r for r in rows if r["kind"] == "POINTS"]
    labels = [f"{r['entity']} ({r['currency']})" for r in money] + \
             [f"{r['entity']} points" for r in points]
    chart = charts.bars("Outstanding liability, minor units", labels, {
        "stored value / points value": [r["value_minor"] for r in money + points]}) \
        if labels else None
    return Section(f"Liability at the end of {as_of} (UTC)",
                   "Stored value per issuer (available and held) and points per program "
                   "(vested and pending) outstanding, with the points' value at each "
                   "program's point value. Money in minor units.",
                   [("liability", [{k: v for k, v in r.items() if k != "as_of"}
                                   for r in rows])], charts.svg(chart) if chart else "")


def settlement_section(store: Any) -> Section:
    from entrypoints.reports import instruction_rows, period_figures

    period, state, found, instructions, statuses = period_figures(store)
    nets = [{"entity": s.entity_id, "currency": s.currency,
             "gross_receivable_minor": s.gross_receivable_minor,
             "gross_payable_minor": s.gross_payable_minor,
             "multilateral_net_minor": s.multilateral_net_minor} for s in found.statements]
    chart = charts.bars(f"Period {period}: multilateral net per entity, minor units",
                        [f"{n['entity']} {n['currency']}" for n in nets],
                        {"net": [n["multilateral_net_minor"] for n in nets]}) if nets else None
    return Section(f"Settlement period {period} ({state})",
                   f"Each entity's gross receivable and payable and its multilateral net (they "
                   f"sum to zero per currency), and the instructions that settle them. Digest "
                   f"{found.digest()[:16]}.",
                   [("statements", nets),
                    ("instructions", instruction_rows(instructions, "", statuses))],
                   charts.svg(chart) if chart else "")


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f"<td>{'yes' if value else ''}</td>"
    if isinstance(value, int):
        return f'<td class="n">{value:,}</td>'
    return f"<td>{html.escape(str(value))}</td>"


def _table(name: str, rows: list[dict[str, Any]]) -> str:
    if not rows:
        return f'<p class="empty">{html.escape(name)}: nothing yet</p>'
    columns = list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(r.get(c, "")) for c in columns) + "</tr>"
                   for r in rows)
    return (f'<table data-report="{html.escape(name)}"><caption>{html.escape(name)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222;padding:0 1rem}
h1{font-size:1.6rem;margin-bottom:.2rem} h2{margin-top:2.2rem;border-bottom:1px solid #ccc}
.meta{color:#666} .note{color:#444;max-width:60rem} svg{max-width:100%;height:auto}
table{border-collapse:collapse;margin:.8rem 0;font-size:13px}
caption{text-align:left;font-weight:600;padding:.3rem 0}
th,td{border-bottom:1px solid #e3e3e3;padding:.25rem .6rem;text-align:left}
td.n{text-align:right;font-variant-numeric:tabular-nums} .empty{color:#888}
"""


def render(sections: Sequence[Section], as_of: str, position: int, where: str,
           lanes: int = 1) -> str:
    """`position`: the log's end (`max_notification_id`); on a split log of `lanes` lanes the
    sum of their heads, shown as the watermark it is (there is no position across lanes)."""
    parts = [f"<!doctype html><html lang=en><head><meta charset=utf-8>"
             f"<title>Loyalty ledger report, {html.escape(as_of)}</title>"
             f"<style>{STYLE}</style></head><body>",
             "<h1>Loyalty ledger report</h1>",
             f'<p class="meta">As of the end of {html.escape(as_of)} (UTC); made '
             f"{html.escape(format_time_us(time.time_ns() // 1000))} from {html.escape(where)} "
             + (f"at log position {position:,}" if lanes == 1 else
                f"at log watermark {position:,} (the sum of {lanes} lanes' heads)")
             + ". Money in minor units.</p>"]
    for section in sections:
        parts.append(f"<section><h2>{html.escape(section.title)}</h2>")
        if section.note:
            parts.append(f'<p class="note">{html.escape(section.note)}</p>')
        if section.chart_svg:
            parts.append(f'<figure>{section.chart_svg}</figure>')
        parts += [_table(name, rows) for name, rows in section.tables]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "".join(parts)


def _where(url: str) -> str:
    """The database without credentials: scheme and name only."""
    parsed = urllib.parse.urlsplit(url)
    return f"{parsed.scheme}:{parsed.path.rsplit('/', 1)[-1]}"


def write_page(store: Any, out: str, as_of: str = "") -> str:
    """Write the page for the end of UTC day `as_of` (default today); returns a summary."""
    as_of = as_of or days.day_of(time.time_ns() // 1000)
    from entrypoints.customer_reports import page_sections

    sections = [liability_section(store, as_of), settlement_section(store),
                *page_sections(store, as_of)]
    page = render(sections, as_of, store.max_notification_id(), _where(store.url),
                  len(store.lanes()))
    with open(out, "w", encoding="utf-8") as f:
        f.write(page)
    return f"wrote {out} ({len(page):,} bytes, {len(sections)} sections)"


def cmd_report_html(ns: argparse.Namespace, store: Any) -> int:
    from domain.common import InvalidInput

    if not ns.out:
        raise InvalidInput("--out", "give the file to write the page to")
    as_of = days.parse_day(ns.as_of, "--as-of") if ns.as_of else ""
    print(write_page(store, ns.out, as_of))
    return 0
