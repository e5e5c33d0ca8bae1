"""InsightsService: the customer views from the customers read model (caught up to the log's
end at each call, off the event loop; followed between calls by the projector). Scopes in
domain/customers/access.py; the proto names every rule."""

from __future__ import annotations

import asyncio
from typing import Any

from domain.common import InvalidInput, check_id, shown
from domain.customers import access
from domain.customers import activity as act
from grpc_api.generated import insights_pb2 as ipb
from grpc_api.generated import insights_pb2_grpc as ipb_grpc
from grpc_api.server import Gateway, Rejected, rpc
from ledger.refusals import Refusal
from projections import customers

LIMIT_DEFAULT = 100
LIMIT_MAX = 10_000


class Asked:
    """A request checked: the day, months, scope and limit."""

    def __init__(self, as_of: int, months: int, partner: str, store_id: str,
                 limit: int) -> None:
        self.as_of, self.months, self.partner, self.store_id, self.limit = (
            as_of, months, partner, store_id, limit)


class InsightsService(ipb_grpc.InsightsServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.runner = customers.customers_runner(gateway.ledger.store)

    def _asked(self, request: Any, credential: Any) -> Asked:
        as_of = (act.parse_day(request.as_of, "as_of") if request.as_of
                 else act.today(self.gateway.ledger.clock_us()))
        months = act.check_months(request.months or 12, "months")
        if not 0 <= request.limit <= LIMIT_MAX:
            raise InvalidInput("limit", f"must be 0..{LIMIT_MAX}")
        registry = self.gateway.ledger.registry
        if request.partner_id:
            check_id(request.partner_id, "partner_id")
            if request.partner_id not in registry.partners:
                raise InvalidInput("partner_id", f"unknown partner {shown(request.partner_id)}")
        store_partner = ""
        if request.store_id:
            check_id(request.store_id, "store_id")
            found = registry.stores.get(request.store_id)
            if found is None:
                raise InvalidInput("store_id", f"unknown store {shown(request.store_id)}")
            store_partner = found.partner_id
            if request.partner_id and store_partner != request.partner_id:
                raise InvalidInput("store_id", f"{shown(request.store_id)} is not a store of "
                                               f"{shown(request.partner_id)}")
        partner, denial = access.scope(credential.principal, request.partner_id, store_partner)
        if partner is None:
            raise Rejected(Refusal.DENIED, denial)
        return Asked(as_of, months, partner, request.store_id,
                     request.limit or LIMIT_DEFAULT)

    async def _view(self, name: str, asked: Asked, **options: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, lambda: customers.view(
            self.runner, name, asked.as_of, asked.months, asked.partner, asked.store_id,
            top=asked.limit, listed=asked.limit, **options))

    def _scope(self, asked: Asked, first_day: str, last_day: str) -> Any:
        return ipb.InsightsScope(as_of=act.day_name(asked.as_of), first_day=first_day,
                                 last_day=last_day, partner_id=asked.partner,
                                 store_id=asked.store_id, log_position=self.runner.position)

    @rpc
    async def GetPyramid(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view("pyramid", asked)
        return ipb.PyramidReply(
            scope=self._scope(asked, found.first_day, found.last_day),
            customers=found.customers, spend_minor=found.spend_minor,
            levels=[ipb.PyramidLevel(level=lv.level, customers=lv.customers,
                                     spend_minor=lv.spend_minor, share_bps=lv.share_bps,
                                     min_spend_minor=lv.min_spend_minor,
                                     max_spend_minor=lv.max_spend_minor)
                    for lv in found.levels],
            movement=[ipb.PyramidMove(previous=m.previous, current=m.current,
                                      customers=m.customers) for m in found.movement])

    @rpc
    async def GetValueMatrix(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view(
            "matrix", asked,
            sales_split=(request.sales_split_minor if request.HasField("sales_split_minor")
                         else None),
            margin_split=(request.margin_split_minor
                          if request.HasField("margin_split_minor") else None))
        return ipb.ValueMatrixReply(
            scope=self._scope(asked, found.first_day, found.last_day),
            sales_split_minor=found.sales_split_minor,
            margin_split_minor=found.margin_split_minor,
            quadrants=[ipb.MatrixQuadrant(quadrant=q.quadrant, customers=q.customers,
                                          sales_minor=q.sales_minor,
                                          margin_minor=q.margin_minor)
                       for q in found.quadrants])

    @rpc
    async def GetRfm(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view("rfm", asked)
        return ipb.RfmReply(
            scope=self._scope(asked, found.first_day, found.last_day),
            recency_cuts=found.recency_cuts, frequency_cuts=found.frequency_cuts,
            monetary_cuts=found.monetary_cuts,
            segments=[ipb.RfmSegment(segment=s.segment, customers=s.customers,
                                     spend_minor=s.spend_minor) for s in found.segments],
            customers=[ipb.RfmCustomer(customer=s.customer, recency_days=s.recency_days,
                                       visits=s.visits, spend_minor=s.spend_minor, r=s.r,
                                       f=s.f, m=s.m, score=s.score, segment=s.segment)
                       for s in found.customers],
            customers_total=sum(s.customers for s in found.segments))  # one segment each

    @rpc
    async def GetChurn(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view("churn", asked)
        first, last = act.period_ending(asked.as_of, asked.months).names()
        return ipb.ChurnReply(
            scope=self._scope(asked, first, last),
            statuses=[ipb.LifecycleCount(status=s.status, customers=s.customers)
                      for s in found.statuses],
            became_at_risk=[ipb.AtRiskCustomer(customer=a.customer, last_visit=a.last_visit,
                                               gap_days=a.gap_days,
                                               usual_interval_days=a.usual_interval_days)
                            for a in found.became_at_risk],
            segments=[ipb.SegmentSpend(segment=s.segment, customers=s.customers,
                                       previous_spend_minor=s.previous_spend_minor,
                                       current_spend_minor=s.current_spend_minor,
                                       change_minor=s.change_minor, fell=s.fell)
                      for s in found.segments])

    @rpc
    async def GetVisitTimes(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view("visits", asked)

        def cells(rows: Any) -> list[Any]:
            return [ipb.VisitCell(weekday=c.weekday, hour=c.hour, visits=c.visits,
                                  spend_minor=c.spend_minor) for c in rows]

        return ipb.VisitTimesReply(
            scope=self._scope(asked, found.first_day, found.last_day), visits=found.visits,
            spend_minor=found.spend_minor, cells=cells(found.cells),
            by_weekday=cells(found.by_weekday), by_hour=cells(found.by_hour))

    @rpc
    async def GetAffinity(self, request: Any, context: Any, credential: Any) -> Any:
        asked = self._asked(request, credential)
        found = await self._view("affinity", asked)
        return ipb.AffinityReply(
            scope=self._scope(asked, found.first_day, found.last_day),
            customers=found.customers, spend_minor=found.spend_minor,
            places=[ipb.AffinityPlace(kind=p.kind, id=p.id, partner_id=p.partner_id,
                                      customers=p.customers, spend_minor=p.spend_minor,
                                      share_bps=p.share_bps) for p in found.places],
            multi_partner_customers=found.multi_partner_customers,
            multi_partner_spend_minor=found.multi_partner_spend_minor,
            elsewhere_customers=found.elsewhere_customers,
            flows=[ipb.PartnerFlow(from_partner=f.from_partner, to_partner=f.to_partner,
                                   customers=f.customers, spend_minor=f.spend_minor)
                   for f in found.flows],
            customers_top=[ipb.CustomerAffinity(
                customer=c.customer, spend_minor=c.spend_minor, partners=c.partners,
                stores=[ipb.Share(id=k, share_bps=v) for k, v in c.stores],
                partner_shares=[ipb.Share(id=k, share_bps=v) for k, v in c.partner_shares])
                for c in found.customers_top[:asked.limit]])
