"""SettlementService: close the open settlement period (through the writer, idempotent) and
read a period's statements and instructions (from the settlement read model, off the writer).
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from domain import access
from domain.common import InvalidInput, check_id
from domain.settlement.instructions import outstanding
from domain.settlement.model import Category
from domain.settlement.payments import RecordSettlementPayment
from domain.settlement.periods import CloseSettlementPeriod
from grpc_api.generated import pos_pb2 as pb
from grpc_api.generated import pos_pb2_grpc as pb_grpc
from grpc_api.server import Gateway, Rejected, _deadline, _validated, rpc
from ledger.refusals import Refusal
from projections.reconcile import transfer_due
from projections.settlement import (
    period_payments,
    period_statements,
    periods,
    settlement_runner,
)


class SettlementService(pb_grpc.SettlementServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        # Caught up by each read; followed between reads by the projector process.
        self.runner = settlement_runner(gateway.ledger.store)

    @rpc
    async def CloseSettlementPeriod(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(CloseSettlementPeriod(request.note), request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return pb.CloseSettlementPeriodReply(result=outcome.result, period_id=outcome.period_id,
                                             replayed=outcome.replayed)

    @rpc
    async def GetSettlementStatement(self, request: Any, context: Any, credential: Any) -> Any:
        if request.entity_id:
            check_id(request.entity_id, "entity_id")
        if request.period_id < 0:
            raise InvalidInput("period_id", "must be 0 (the last closed period) or a period id")
        principal = credential.principal
        # No entity named: everyone's for the alliance's readers, its own for a partner's.
        everyone = access.read_statement(principal, "") is None
        scope = request.entity_id or ("" if everyone else principal.partner_id)
        denial = access.read_statement(principal, scope)
        if denial is not None:
            raise Rejected(Refusal.DENIED, denial)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._statement, principal,
                                          request.period_id, request.entity_id)

    def _statement(self, principal: Any, period_id: int, entity_id: str) -> Any:
        known = periods(self.runner)
        period = period_id or max(1, len(known) - 1)
        found, instructions = period_statements(self.runner, period)
        paid = {s.instruction_id: s for s in outstanding(
            instructions, period_payments(self.runner, period))}

        def readable(entity: str) -> bool:
            return ((not entity_id or entity == entity_id)
                    and access.read_statement(principal, entity) is None)

        return pb.SettlementStatementReply(
            period_id=period, closed=period < known[-1].period_id, digest=found.digest(),
            statements=[pb.EntityStatement(
                currency=s.currency, entity_id=s.entity_id,
                lines=[pb.SettlementLine(counterparty_id=line.counterparty_id,
                                         category=Category(line.category).name,
                                         receivable_minor=line.receivable_minor,
                                         payable_minor=line.payable_minor) for line in s.lines],
                bilateral=[pb.BilateralNet(counterparty_id=n.counterparty_id,
                                           receivable_minor=n.receivable_minor,
                                           payable_minor=n.payable_minor, net_minor=n.net_minor)
                           for n in s.bilateral],
                gross_receivable_minor=s.gross_receivable_minor,
                gross_payable_minor=s.gross_payable_minor,
                multilateral_net_minor=s.multilateral_net_minor)
                for s in found.statements if readable(s.entity_id)],
            instructions=[pb.SettlementInstruction(
                instruction_id=i.instruction_id, currency=i.currency, payer_id=i.payer_id,
                payee_id=i.payee_id, instrument=i.instrument.name, amount_minor=i.amount_minor,
                paid_minor=paid[i.instruction_id].paid_minor,
                outstanding_minor=paid[i.instruction_id].outstanding_minor,
                payment_references=paid[i.instruction_id].references)
                for i in instructions if readable(i.payer_id) or readable(i.payee_id)])

    @rpc
    async def RecordSettlementPayment(self, request: Any, context: Any,
                                      credential: Any) -> Any:
        asked = _validated(RecordSettlementPayment(
            request.period_id, request.currency, request.payer_id, request.payee_id,
            request.amount_minor, request.reference), request.request_id)
        # The transfer's instructions, from the closed period (they never change): the
        # writer checks the period and what was paid before (domain/settlement/payments.py).
        loop = asyncio.get_running_loop()
        due = await loop.run_in_executor(None, transfer_due, self.runner, asked.period_id,
                                         asked.currency, asked.payer_id, asked.payee_id)
        command = msgspec.structs.replace(asked, due=due)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        view = outcome.recon
        return pb.RecordSettlementPaymentReply(
            result=outcome.result, paid_minor=view.paid_minor if view else 0,
            outstanding_minor=view.outstanding_minor if view else 0,
            replayed=outcome.replayed)
