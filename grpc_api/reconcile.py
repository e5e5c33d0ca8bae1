"""ReconciliationService: a partner's journal matched against the ledger (the matching is pure
domain code, domain/reconcile/; the ledger's side is read from the log, off the writer), the
run recorded through the writer, breaks resolved, runs and the ledger's totals read."""

from __future__ import annotations

import asyncio
from typing import Any

from domain.common import InvalidInput, check_id, format_time_us
from domain.reconcile import decide as recon
from domain.reconcile.export import day_totals
from domain.reconcile.journal import JournalRow
from domain.reconcile.matching import Item, MatchClass
from grpc_api.generated import reconcile_pb2 as rpb
from grpc_api.generated import reconcile_pb2_grpc as rpb_grpc
from grpc_api.server import Gateway, Rejected, _deadline, _validated, rpc
from ledger import limits
from ledger.refusals import Refusal
from projections.reconcile import (
    TooLarge,
    ledger_rows,
    partner_stores,
    registry_now,
    run_matching,
)
from projections.settlement import settlement_runner


def _period(value: int) -> int:
    if value < 1:
        raise InvalidInput("period_id", f"must be a closed period id >= 1, not {value}")
    return value


def counts_message(counts: tuple[int, ...]) -> rpb.ReconciliationCounts:
    return rpb.ReconciliationCounts(**{c.name.lower(): counts[c - 1] for c in MatchClass})


def _row(row: JournalRow | None) -> rpb.JournalRow | None:
    if row is None:
        return None
    return rpb.JournalRow(store_id=row.store_id, reference=row.reference, type=row.type,
                          amount_minor=row.amount_minor, currency=row.currency)


class ReconciliationService(rpb_grpc.ReconciliationServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.runner = settlement_runner(gateway.ledger.store)

    def _scope(self, principal: Any, partner_id: str, period_id: int, read: bool) -> None:
        check_id(partner_id, "partner_id")
        _period(period_id)
        denial = (recon.may_read if read else recon.may_reconcile)(principal, partner_id)
        if denial is not None:
            raise Rejected(Refusal.DENIED, denial)

    async def _off_loop(self, function: Any, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(None, function, *args)
        except TooLarge as error:
            raise Rejected(Refusal.NOT_CONFIGURED, str(error)) from None

    @rpc
    async def Reconcile(self, request: Any, context: Any, credential: Any) -> Any:
        self._scope(credential.principal, request.partner_id, request.period_id, read=False)
        if len(request.rows) > limits.RECONCILE_RPC_ROWS_MAX:
            raise InvalidInput("rows", f"at most {limits.RECONCILE_RPC_ROWS_MAX} rows in one "
                               f"request, not {len(request.rows)} (a larger journal: "
                               "loyalty-ledger reconcile FILE)")
        rows = [JournalRow(r.store_id, r.reference, r.type, r.amount_minor, r.currency)
                for r in request.rows]
        found = await self._off_loop(run_matching, self.runner, request.partner_id,
                                        request.period_id, rows)
        command = _validated(recon.record_command(request.partner_id, request.period_id, found),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        view = outcome.recon
        resolved = await self._resolutions(credential, request.partner_id, request.period_id,
                                           context)
        breaks = found.breaks()
        shown_breaks = breaks[:limits.RECONCILE_REPLY_BREAKS_MAX]
        return rpb.ReconcileReply(
            result=outcome.result, run_id=view.run_id if view else "",
            repeat_of=view.repeat_of if view else "", file_digest=found.file_digest,
            file_rows=found.file_rows, ledger_rows=found.ledger_rows,
            counts=counts_message(found.counts()),
            breaks=[self._break(item, resolved) for item in shown_breaks],
            breaks_omitted=len(breaks) - len(shown_breaks), replayed=outcome.replayed)

    async def _resolutions(self, credential: Any, partner_id: str, period_id: int,
                           context: Any) -> dict[str, str]:
        outcome = await self.gateway.execute(
            credential, recon.GetReconciliation(partner_id, period_id), "", _deadline(context))
        view = outcome.recon
        return {r.break_id: r.reason for r in view.resolutions} if view else {}

    @staticmethod
    def _break(item: Item, resolved: dict[str, str]) -> rpb.ReconciliationBreak:
        return rpb.ReconciliationBreak(
            break_id=item.break_id, match_class=item.match_class.name,
            file_row=_row(item.file_row), ledger_row=_row(item.ledger_row),
            resolved=item.break_id in resolved,
            resolution_reason=resolved.get(item.break_id, ""))

    @rpc
    async def ResolveBreak(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(recon.ResolveBreak(request.partner_id, request.period_id,
                                                request.break_id, request.reason),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return rpb.ResolveBreakReply(result=outcome.result, replayed=outcome.replayed)

    @rpc
    async def GetReconciliation(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(recon.GetReconciliation(request.partner_id, request.period_id),
                             None)
        outcome = await self.gateway.execute(credential, command, "", _deadline(context))
        view = outcome.recon
        assert view is not None
        return rpb.ReconciliationReply(
            runs=[rpb.ReconciliationRun(
                run_id=r.run_id, file_digest=r.file_digest, file_rows=r.file_rows,
                ledger_rows=r.ledger_rows, counts=counts_message(r.counts),
                repeat_of=r.repeat_of, recorded_at=format_time_us(r.recorded_at_us),
                credential_id=r.credential_id) for r in view.runs],
            open_breaks=list(view.open_breaks),
            resolutions=[rpb.BreakResolution(
                break_id=r.break_id, reason=r.reason,
                resolved_at=format_time_us(r.resolved_at_us), credential_id=r.credential_id)
                for r in view.resolutions])

    @rpc
    async def ExportLedgerTotals(self, request: Any, context: Any, credential: Any) -> Any:
        self._scope(credential.principal, request.partner_id, request.period_id, read=True)
        totals = await self._off_loop(export_totals, self.runner, request.partner_id,
                                      request.period_id)
        return rpb.ExportLedgerTotalsReply(totals=[rpb.LedgerDayTotal(
            store_id=t.store_id, day=t.day, type=t.type, currency=t.currency, count=t.count,
            amount_minor=t.amount_minor) for t in totals])


def export_totals(runner: Any, partner_id: str, period_id: int) -> list[Any]:
    stores = partner_stores(registry_now(runner.store), partner_id)
    return day_totals(ledger_rows(runner, partner_id, period_id, stores), stores)

