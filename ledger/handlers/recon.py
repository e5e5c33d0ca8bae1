"""Settlement payments and reconciliation runs (issue 9, sections 3 and 4): registry events
decided by domain/settlement/payments.py and domain/reconcile/decide.py. The readers that
build these commands (grpc_api, the CLI) do the reading: a payment's instructions and a run's
matching come from the closed period in the read models; the writer checks the scope, the
period, what was paid before, and records."""

from __future__ import annotations

from domain.common import InvalidInput, Result, shown
from domain.reconcile import decide as recon
from domain.settlement import payments
from ledger.codec import Outcome, ReconView
from ledger.handlers.context import Ctx
from ledger.handlers.registry import emit
from ledger.refusals import check


def record_payment(ctx: Ctx) -> Outcome:
    command: payments.RecordSettlementPayment = ctx.command
    tag = type(command).__struct_config__.tag
    check(payments.may_record_payment(ctx.principal, command.payee_id))
    state = ctx.registry
    event = payments.decide_payment(state.payments, state.open_period, command, ctx.meta())
    emit(ctx, event)
    due = sum(d.amount_minor for d in command.due)
    paid = sum(state.payments.paid_minor(command.period_id, d.instruction_id)
               for d in command.due)
    return Outcome(int(Result.APPROVED), tag,
                   recon=ReconView(paid_minor=paid, outstanding_minor=due - paid))


def record_run(ctx: Ctx) -> Outcome:
    command: recon.RecordReconciliation = ctx.command
    tag = type(command).__struct_config__.tag
    check(recon.may_reconcile(ctx.principal, command.partner_id))
    state = ctx.registry
    recon.check_scope(state.partners, state.open_period, command.partner_id, command.period_id)
    event = recon.decide_run(state.reconciliations, command, ctx.meta())
    emit(ctx, event)
    return Outcome(int(Result.APPROVED), tag,
                   recon=ReconView(run_id=event.run_id, repeat_of=event.repeat_of))


def resolve_break(ctx: Ctx) -> Outcome:
    command: recon.ResolveBreak = ctx.command
    tag = type(command).__struct_config__.tag
    check(recon.may_reconcile(ctx.principal, command.partner_id))
    state = ctx.registry
    if command.partner_id not in state.partners:
        raise InvalidInput("partner_id", f"unknown partner {shown(command.partner_id)}")
    result, event = recon.decide_resolve(state.reconciliations, command, ctx.meta())
    if event is not None:
        emit(ctx, event)
    return Outcome(int(result), tag)


def read_runs(ctx: Ctx) -> Outcome:
    """GetReconciliation: read on the writer's thread, where the registry is consistent."""
    command: recon.GetReconciliation = ctx.command
    tag = type(command).__struct_config__.tag
    check(recon.may_read(ctx.principal, command.partner_id))
    state = ctx.registry
    recon.check_scope(state.partners, state.open_period, command.partner_id, command.period_id)
    book = state.reconciliations
    key = recon.scope_key(command.partner_id, command.period_id)
    resolved = book.resolved.get(key, {})
    return Outcome(int(Result.APPROVED), tag, recon=ReconView(
        runs=tuple(book.runs.get(key, ())),
        open_breaks=tuple(sorted(book.open_breaks.get(key, frozenset()))),
        resolutions=tuple(resolved[b] for b in sorted(resolved))))


HANDLERS = {
    payments.RecordSettlementPayment: record_payment,
    recon.RecordReconciliation: record_run,
    recon.ResolveBreak: resolve_break,
    recon.GetReconciliation: read_runs,
}
