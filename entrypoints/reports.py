"""`loyalty-ledger report statement` and `loyalty-ledger settlement close`: a period's
statements and instructions as a table, CSV or JSON, and the close of the open period."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sys
from typing import Any

import msgspec

from domain.settlement.instructions import Instruction, InstructionStatus, outstanding
from domain.settlement.model import Category
from domain.settlement.statements import StatementSet

TOKEN_ENV = "LEDGER_TOKEN"


def statement_rows(found: StatementSet, entity: str = "") -> list[dict[str, Any]]:
    """One row per statement line, then the entity's totals (category "TOTAL")."""
    rows: list[dict[str, Any]] = []
    for s in found.statements:
        if entity and s.entity_id != entity:
            continue
        for line in s.lines:
            rows.append({"period": s.period_id, "currency": s.currency, "entity": s.entity_id,
                         "counterparty": line.counterparty_id,
                         "category": Category(line.category).name,
                         "receivable_minor": line.receivable_minor,
                         "payable_minor": line.payable_minor, "net_minor": ""})
        for net in s.bilateral:
            rows.append({"period": s.period_id, "currency": s.currency, "entity": s.entity_id,
                         "counterparty": net.counterparty_id, "category": "BILATERAL_NET",
                         "receivable_minor": net.receivable_minor,
                         "payable_minor": net.payable_minor, "net_minor": net.net_minor})
        rows.append({"period": s.period_id, "currency": s.currency, "entity": s.entity_id,
                     "counterparty": "", "category": "MULTILATERAL_NET",
                     "receivable_minor": s.gross_receivable_minor,
                     "payable_minor": s.gross_payable_minor,
                     "net_minor": s.multilateral_net_minor})
    return rows


def instruction_rows(found: tuple[Instruction, ...], entity: str = "",
                     statuses: dict[str, InstructionStatus] | None = None,
                     ) -> list[dict[str, Any]]:
    """One row per instruction; with `statuses`, what was paid and is outstanding."""
    rows = []
    for i in found:
        if entity and entity not in (i.payer_id, i.payee_id):
            continue
        row: dict[str, Any] = {"instruction": i.instruction_id, "currency": i.currency,
                               "payer": i.payer_id, "payee": i.payee_id,
                               "instrument": i.instrument.name, "amount_minor": i.amount_minor}
        if statuses is not None:
            status = statuses[i.instruction_id]
            row.update(paid_minor=status.paid_minor,
                       outstanding_minor=status.outstanding_minor,
                       references=" ".join(status.references))
        rows.append(row)
    return rows


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    if fmt == "json":
        return json.dumps(rows, indent=1)
    if not rows:
        return "(nothing)\n" if fmt == "table" else ""
    columns = list(rows[0])
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return out.getvalue()
    widths = [max(len(c), *(len(str(r[c])) for r in rows)) for c in columns]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        lines.append("  ".join(
            (str(r[c]).rjust(w) if isinstance(r[c], int) else str(r[c]).ljust(w))
            for c, w in zip(columns, widths, strict=True)))
    return "\n".join(lines) + "\n"


def period_figures(store: Any, period: int = 0) -> tuple[
        int, str, StatementSet, tuple[Instruction, ...], dict[str, InstructionStatus]]:
    """A period's statements, instructions and what is paid of each, from the settlement
    read model: (period, "open" or "closed", statements, instructions, statuses by
    instruction id); period 0 = the last closed one (the open one when none is closed)."""
    from projections.settlement import (
        period_payments,
        period_statements,
        periods,
        settlement_runner,
    )

    runner = settlement_runner(store)
    known = periods(runner)
    period = period or max(1, len(known) - 1)
    found, instructions = period_statements(runner, period)
    statuses = {s.instruction_id: s
                for s in outstanding(instructions, period_payments(runner, period))}
    state = "open" if period == known[-1].period_id else "closed"
    return period, state, found, instructions, statuses


def cmd_report_statement(ns: argparse.Namespace, store: Any) -> int:
    period, state, found, instructions, statuses = period_figures(store, ns.period)
    if ns.format == "json":
        print(json.dumps({"period": period, "state": state, "digest": found.digest(),
                          "statements": msgspec.to_builtins(
                              [s for s in found.statements
                               if not ns.entity or s.entity_id == ns.entity]),
                          "instructions": instruction_rows(instructions, ns.entity,
                                                           statuses)},
                         indent=1))
        return 0
    if ns.format == "table":
        print(f"settlement period {period} ({state}), digest {found.digest()[:16]}")
    sys.stdout.write(render(statement_rows(found, ns.entity), ns.format))
    if ns.format == "table":
        print("\ninstructions")
    sys.stdout.write(render(instruction_rows(instructions, ns.entity, statuses), ns.format))
    return 0


def cmd_settlement_close(ns: argparse.Namespace, store: Any) -> int:
    from domain.settlement.periods import CloseSettlementPeriod
    from ledger.codec import Outcome
    from ledger.engine import Ledger

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"loyalty-ledger: set {TOKEN_ENV} to an ADMIN or alliance FINANCE token",
              file=sys.stderr)
        return 2
    command = CloseSettlementPeriod(ns.note)
    command.validate()
    ledger = Ledger(store).start()
    try:
        credential = ledger.authenticate(token)
        if credential is None:
            print(f"loyalty-ledger: {TOKEN_ENV}: unknown or revoked token", file=sys.stderr)
            return 2
        reply = ledger.call(credential.credential_id, command,
                            request_id=ns.request_id or os.urandom(8).hex())
    finally:
        ledger.stop()
    if not isinstance(reply, Outcome):
        print(f"loyalty-ledger: {reply.code.name}: {reply.message}", file=sys.stderr)
        return 1
    print(f"closed settlement period {reply.period_id}"
          + (" (replayed)" if reply.replayed else ""))
    return 0
