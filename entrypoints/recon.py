"""`loyalty-ledger settlement pay`, `loyalty-ledger reconcile FILE` and `loyalty-ledger
reconcile export` (issue 9, sections 3 and 4)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from domain.common import InvalidInput
from domain.reconcile import decide as recon
from domain.reconcile.export import TOTAL_COLUMNS, day_totals
from domain.reconcile.journal import FILE_BYTES_MAX, read_csv, write_csv
from domain.reconcile.matching import MatchClass, match
from entrypoints.reports import TOKEN_ENV, render
from ledger import limits

ERRORS_SHOWN = 1_000  # bad lines listed one by one; the rest are counted


def _writer(store: Any, role_hint: str) -> tuple[Any, Any] | None:
    """A started in-process ledger and the credential whose token is in LEDGER_TOKEN."""
    from ledger.engine import Ledger

    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"loyalty-ledger: set {TOKEN_ENV} to {role_hint} token", file=sys.stderr)
        return None
    ledger = Ledger(store).start()
    credential = ledger.authenticate(token)
    if credential is None:
        ledger.stop()
        print(f"loyalty-ledger: {TOKEN_ENV}: unknown or revoked token", file=sys.stderr)
        return None
    return ledger, credential


def _call(ledger: Any, credential: Any, command: Any, request_id: str) -> Any:
    from ledger.codec import Outcome

    reply = ledger.call(credential.credential_id, command,
                        request_id=request_id or os.urandom(8).hex())
    if not isinstance(reply, Outcome):
        if reply.code.name == "INVALID_INPUT":  # a bad input: exit 2, like the read side's
            field, _, problem = reply.message.partition(": ")
            raise InvalidInput(field, problem)
        print(f"loyalty-ledger: {reply.code.name}: {reply.message}", file=sys.stderr)
        return None
    return reply


def cmd_settlement_pay(ns: argparse.Namespace, store: Any) -> int:
    import msgspec

    from domain.settlement.payments import RecordSettlementPayment
    from projections.reconcile import transfer_due
    from projections.settlement import settlement_runner

    asked = RecordSettlementPayment(ns.period, ns.currency, ns.payer, ns.payee,
                                    ns.amount_minor, ns.reference)
    asked.validate()
    due = transfer_due(settlement_runner(store), ns.period, ns.currency, ns.payer, ns.payee)
    started = _writer(store, "an ADMIN, alliance FINANCE or the payee's FINANCE")
    if started is None:
        return 2
    ledger, credential = started
    try:
        reply = _call(ledger, credential, msgspec.structs.replace(asked, due=due),
                      ns.request_id)
    finally:
        ledger.stop()
    if reply is None:
        return 1
    view = reply.recon
    print(f"payment recorded: {ns.payer} -> {ns.payee} {ns.currency} period {ns.period}: paid "
          f"{view.paid_minor}, outstanding {view.outstanding_minor}"
          + (" (replayed)" if reply.replayed else ""))
    return 0


def cmd_reconcile(ns: argparse.Namespace, store: Any) -> int:
    from projections.reconcile import ledger_rows, partner_stores, registry_now
    from projections.settlement import settlement_runner

    runner = settlement_runner(store)
    stores = partner_stores(registry_now(store), ns.partner)
    if ns.target == "export":
        found = ledger_rows(runner, ns.partner, ns.period, stores)
        if ns.detail:
            text = write_csv(sorted(row for row, _ in found))
        else:
            totals = day_totals(found, stores)
            text = render([{c: getattr(t, c) for c in TOTAL_COLUMNS} for t in totals], "csv")
            text = text or ",".join(TOTAL_COLUMNS) + "\n"
        if ns.output:
            Path(ns.output).write_text(text, encoding="utf-8")
        else:
            sys.stdout.write(text)
        return 0

    path = Path(ns.target)
    try:
        if path.stat().st_size > FILE_BYTES_MAX:
            print(f"loyalty-ledger: {path}: larger than {FILE_BYTES_MAX} bytes",
                  file=sys.stderr)
            return 2
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        print(f"loyalty-ledger: {path}: {error}", file=sys.stderr)
        return 2
    rows, bad = read_csv(text, stores, ns.partner, limits.RECONCILE_ROWS_MAX)
    if bad:
        for error in bad[:ERRORS_SHOWN]:
            print(f"{path}: {error}", file=sys.stderr)
        more = len(bad) - ERRORS_SHOWN
        print(f"loyalty-ledger: {len(bad)} bad lines" + (f" ({more} not listed)" if more > 0
                                                          else "") + "; nothing recorded",
              file=sys.stderr)
        return 2
    started = _writer(store, "an ADMIN, alliance FINANCE or the partner's FINANCE")
    if started is None:
        return 2
    ledger, credential = started
    try:
        denial = recon.may_reconcile(credential.principal, ns.partner)
        if denial is not None:
            print(f"loyalty-ledger: PERMISSION_DENIED: {denial}", file=sys.stderr)
            return 1
        ours = [row for row, _ in ledger_rows(runner, ns.partner, ns.period, stores)]
        found = match(rows, ours, f"{ns.partner}/{ns.period}")
        reply = _call(ledger, credential, recon.record_command(ns.partner, ns.period, found),
                      ns.request_id)
        if reply is None:
            return 1
        view = ledger.call(credential.credential_id,
                           recon.GetReconciliation(ns.partner, ns.period), request_id="")
        resolved = {r.break_id: r.reason for r in view.recon.resolutions}
    finally:
        ledger.stop()
    counts = found.counts()
    breaks = [{"break_id": item.break_id, "class": item.match_class.name,
               "store_id": (item.file_row or item.ledger_row).store_id,  # type: ignore[union-attr]
               "reference": (item.file_row or item.ledger_row).reference,  # type: ignore[union-attr]
               "type": (item.file_row or item.ledger_row).type,  # type: ignore[union-attr]
               "file_amount_minor": "" if item.file_row is None else item.file_row.amount_minor,
               "file_currency": "" if item.file_row is None else item.file_row.currency,
               "ledger_amount_minor": ("" if item.ledger_row is None
                                       else item.ledger_row.amount_minor),
               "ledger_currency": "" if item.ledger_row is None else item.ledger_row.currency,
               "resolved": resolved.get(item.break_id, "")}
              for item in found.breaks()]
    summary = {"run_id": reply.recon.run_id, "repeat_of": reply.recon.repeat_of,
               "replayed": reply.replayed, "file_digest": found.file_digest,
               "file_rows": found.file_rows, "ledger_rows": found.ledger_rows,
               "counts": {c.name: counts[c - 1] for c in MatchClass}}
    if ns.format == "json":
        print(json.dumps({**summary, "breaks": breaks}, indent=1))
        return 0
    if ns.format == "csv":
        sys.stdout.write(render(breaks, "csv"))
        return 0
    repeat = f", a repeat of {summary['repeat_of']}" if summary["repeat_of"] else ""
    print(f"reconciliation {summary['run_id']} of partner {ns.partner}, period {ns.period}"
          f"{repeat}: {found.file_rows} rows in the file, {found.ledger_rows} in the ledger, "
          f"digest {found.file_digest[:16]}")
    sys.stdout.write(render([{"class": c.name, "count": counts[c - 1]} for c in MatchClass],
                            "table"))
    if breaks:
        print("\nbreaks")
        sys.stdout.write(render(breaks, "table"))
    return 0


def cmd_resolve(ns: argparse.Namespace, store: Any) -> int:
    command = recon.ResolveBreak(ns.partner, ns.period, ns.break_id, ns.reason)
    command.validate()
    started = _writer(store, "an ADMIN, alliance FINANCE or the partner's FINANCE")
    if started is None:
        return 2
    ledger, credential = started
    try:
        reply = _call(ledger, credential, command, ns.request_id)
    finally:
        ledger.stop()
    if reply is None:
        return 1
    if reply.result != 1:
        print(f"break {ns.break_id} was resolved already", file=sys.stderr)
        return 1
    print(f"break {ns.break_id} resolved" + (" (replayed)" if reply.replayed else ""))
    return 0
