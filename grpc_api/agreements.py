"""AgreementService: accounting entities and the agreements between them (issue 9, section 1).
Writes go through the writer like every registry command; the list is read from the registry
the writer keeps (copied whole under the GIL: a published version never changes)."""

from __future__ import annotations

from typing import Any

from domain.common import Role, check_id, format_time_us, parse_time_us
from domain.settlement.agreements import (
    BPS,
    Agreement,
    Payer,
    PublishAgreement,
    RegisterStoreEntity,
)
from grpc_api.generated import agreements_pb2 as apb
from grpc_api.generated import agreements_pb2_grpc as apb_grpc
from grpc_api.server import _AdminWrites, rpc

ALLIANCE_READERS = (Role.ADMIN, Role.AUDITOR, Role.FINANCE)


def agreement_of(message: Any) -> Agreement:
    return Agreement(
        message.agreement_id, message.version,
        parse_time_us(message.valid_from, "agreement.valid_from", 0),
        message.entity_a, message.entity_b, message.sv_commission_bps,
        message.commission_paid_by or Payer.ACQUIRER, message.points_reimbursement_micros,
        message.points_price_micros, message.points_billing_bps or BPS,
        message.exchange_fee_bps, message.exchange_fee_earner,
        message.voucher_share_bps, message.net_debit_cap_minor, message.cap_currency)


def agreement_message(value: Agreement) -> Any:
    return apb.Agreement(
        agreement_id=value.agreement_id, version=value.version,
        valid_from=format_time_us(value.valid_from_us), entity_a=value.entity_a,
        entity_b=value.entity_b, sv_commission_bps=value.sv_commission_bps,
        commission_paid_by=value.commission_paid_by,
        points_reimbursement_micros=value.points_reimbursement_micros,
        points_price_micros=value.points_price_micros,
        points_billing_bps=value.points_billing_bps, exchange_fee_bps=value.exchange_fee_bps,
        exchange_fee_earner=value.exchange_fee_earner, voucher_share_bps=value.voucher_share_bps,
        net_debit_cap_minor=value.net_debit_cap_minor, cap_currency=value.cap_currency)


class AgreementService(_AdminWrites, apb_grpc.AgreementServiceServicer):
    @rpc
    async def PublishAgreement(self, request: Any, context: Any, credential: Any) -> Any:
        return await self._admin(request, context, credential,
                                 PublishAgreement(agreement_of(request.agreement)))

    @rpc
    async def RegisterStoreEntity(self, request: Any, context: Any, credential: Any) -> Any:
        return await self._admin(request, context, credential,
                                 RegisterStoreEntity(request.store_id))

    @rpc
    async def ListAgreements(self, request: Any, context: Any, credential: Any) -> Any:
        if request.agreement_id:
            check_id(request.agreement_id, "agreement_id")
        registry = self.gateway.ledger.registry
        versions = dict(registry.agreements.versions)  # one C-level copy: never torn
        entities = registry.entities()  # a new dict
        principal = credential.principal
        everyone = principal.role in ALLIANCE_READERS and not principal.partner_id

        def visible(agreement: Agreement) -> bool:
            return everyone or not agreement.entity_a or principal.partner_id in (
                agreement.entity_a, agreement.entity_b)

        # One agreement: every version; else every agreement's latest.
        found = (list(versions.get(request.agreement_id, [])) if request.agreement_id
                 else [list(v)[-1] for _, v in sorted(versions.items())])
        return apb.ListAgreementsReply(
            agreements=[agreement_message(a) for a in found if visible(a)],
            entities=[apb.AccountingEntity(entity_id=e, kind=k)
                      for e, k in sorted(entities.items())])
