"""FinanceService: liability, roll-forward and breakage from the finance read model (caught up
to the log's end at each call, off the writer; followed between calls by the projector); IFRS
15 for points and campaign profitability from a scan of the log, by the very functions the
`loyalty-ledger report ifrs15|campaigns` command calls (their rows are the command's JSON)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from domain.common import InvalidInput, Principal, check_id, shown
from domain.finance.estimates import Method
from domain.liability import access, days
from domain.liability import reports as rp
from domain.points.program import ALLIANCE
from grpc_api.generated import finance_pb2 as fpb
from grpc_api.generated import finance_pb2_grpc as fpb_grpc
from grpc_api.server import Gateway, Rejected, rpc
from ledger.refusals import Refusal
from projections import finance
from projections.campaigns import campaigns_from_log
from projections.ifrs15_cohorts import ifrs15_from_log


def report_scope(principal: Principal, entity_id: str, known: Callable[[str], bool],
                 field: str = "entity_id") -> str:
    """The entity a report covers ("" = every one): the one named, checked and readable, or
    the caller's own when it reads one entity only. InvalidInput (naming `field`) for an
    unknown entity, Rejected(DENIED) for one out of scope."""
    if entity_id:
        if entity_id != ALLIANCE:
            check_id(entity_id, field)
        if not known(entity_id):
            what = "program" if field == "program_id" else "partner"
            raise InvalidInput(field, f"unknown {what} {shown(entity_id)}")
    scope = entity_id or ("" if access.sees_all(principal) else principal.partner_id)
    denial = access.read_report(principal, scope)
    if denial is not None:
        raise Rejected(Refusal.DENIED, denial)
    return scope


def day_range(from_day: str, to_day: str, today: str) -> tuple[str, str]:
    start = days.parse_day(from_day, "from")
    end = days.parse_day(to_day, "to") if to_day else today
    if start > end:
        raise InvalidInput("to", f"must not be before from ({start})")
    return start, end


class FinanceService(fpb_grpc.FinanceServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.runner = finance.finance_runner(gateway.ledger.store)

    def _scope(self, credential: Any, entity_id: str) -> str:
        registry = self.gateway.ledger.registry
        return report_scope(credential.principal, entity_id,
                            lambda e: e in registry.partners or e in registry.programs)

    def _position(self) -> int:
        """The log's end before a scan (off the loop: a database read), only reported as
        log_position; on a split log the sum of the lanes' heads, a watermark, never a position
        to read from."""
        return self.gateway.ledger.store.max_notification_id()

    def _today(self) -> str:
        return days.day_of(self.gateway.ledger.clock_us())

    async def _off_loop(self, work: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, work)

    @rpc
    async def GetLiability(self, request: Any, context: Any, credential: Any) -> Any:
        as_of = days.parse_day(request.as_of, "as_of") if request.as_of else self._today()
        scope = self._scope(credential, request.entity_id)
        found = await self._off_loop(lambda: finance.liability(self.runner, as_of, scope))
        return fpb.LiabilityReply(
            as_of=found.as_of, log_position=self.runner.position,
            stored_value=[fpb.StoredValueLiability(
                issuer_id=s.issuer_id, currency=s.currency, available_minor=s.available_minor,
                held_minor=s.held_minor, outstanding_minor=s.outstanding_minor)
                for s in found.stored_value],
            points=[fpb.PointsLiability(
                program_id=p.program_id, currency=p.currency, vested_points=p.vested_points,
                pending_points=p.pending_points, outstanding_points=p.outstanding_points,
                point_value_micros=p.point_value_micros, value_minor=p.value_minor,
                debt_points=p.debt_points) for p in found.points])

    @rpc
    async def GetRollForward(self, request: Any, context: Any, credential: Any) -> Any:
        start, end = day_range(getattr(request, "from"), request.to, self._today())
        scope = self._scope(credential, request.entity_id)
        rows = await self._off_loop(lambda: finance.roll_forward(self.runner, start, end,
                                                                 scope))
        return fpb.RollForwardReply(**{"from": start}, to=end, rows=[_roll(r) for r in rows],
                                    log_position=self.runner.position)

    @rpc
    async def GetBreakage(self, request: Any, context: Any, credential: Any) -> Any:
        start, end = day_range(getattr(request, "from"), request.to, self._today())
        scope = self._scope(credential, request.entity_id)
        rows = await self._off_loop(lambda: finance.breakage(self.runner, start, end, scope))
        return fpb.BreakageReply(
            **{"from": start}, to=end, log_position=self.runner.position,
            rows=[fpb.Breakage(month=b.month, kind=b.kind, entity_id=b.entity_id,
                               currency=b.currency, points=b.points,
                               amount_minor=b.amount_minor, posted_minor=b.posted_minor)
                  for b in rows])

    @rpc
    async def GetIfrs15(self, request: Any, context: Any, credential: Any) -> Any:
        as_of = days.parse_day(request.as_of, "as_of") if request.as_of else self._today()
        programs = self.gateway.ledger.registry.programs
        scope = report_scope(credential.principal, request.program_id,
                             lambda e: e in programs, field="program_id")
        if request.method == fpb.ESTIMATE_METHOD_UNSPECIFIED:
            raise InvalidInput("method", "say PUBLISHED or COHORT_RUNOFF")
        rates = [(e.effective_from, e.redemption_rate_bp) for e in request.estimates]
        position, found = await self._off_loop(lambda: (self._position(), ifrs15_from_log(
            self.gateway.ledger.store, as_of, scope, request.method, rates)))
        return fpb.Ifrs15Reply(
            as_of=found.as_of, method=cast(Any, int(found.method)), periods=found.periods,
            schedule=[fpb.Ifrs15Period(**row) for row in found.schedule_rows()],
            allocations=[fpb.Ifrs15Allocation(**row) for row in found.allocation_rows()],
            estimates=[fpb.Ifrs15Estimate(**estimate_fields(row))
                       for row in found.estimate_rows()],
            age_rates=[fpb.Ifrs15AgeRate(**row) for row in found.age_rate_rows()],
            exchanged=[fpb.ExchangedPoints(**row) for row in found.exchanged_rows()],
            log_position=position)

    @rpc
    async def GetCampaignProfitability(self, request: Any, context: Any,
                                       credential: Any) -> Any:
        start, end = day_range(getattr(request, "from"), request.to, self._today())
        registry = self.gateway.ledger.registry
        scope = report_scope(credential.principal, request.entity_id,
                             lambda e: e == ALLIANCE or e in registry.partners)
        position, found = await self._off_loop(lambda: (self._position(), campaigns_from_log(
            self.gateway.ledger.store, days.end_us(start) - days.DAY_US, days.end_us(end),
            scope)))
        return fpb.CampaignProfitabilityReply(
            **{"from": start}, to=end, log_position=position,
            rows=[fpb.CampaignProfitability(**f.row()) for f in found])


def estimate_fields(row: dict[str, int | str]) -> dict[str, Any]:
    """An estimate row of the command's JSON as the message's fields: the method by its
    number, no published rate as 0."""
    return {**row, "method": Method[str(row["method"])].value,
            "published_rate_bp": row["published_rate_bp"] or 0}


def _roll(r: rp.RollForward) -> Any:
    return fpb.RollForward(
        kind=r.kind, entity_id=r.entity_id, currency=r.currency, opening=r.opening,
        lines=[fpb.RollForwardLine(line=line, amount=amount) for line, amount in r.lines],
        closing=r.closing, opening_value_minor=r.opening_value_minor,
        closing_value_minor=r.closing_value_minor,
        memo=[fpb.RollForwardLine(line=line, amount=amount) for line, amount in r.memo])
