"""ExchangeService: publish rates (a registry write), quote (a read that signs the terms) and
execute an exchange (a card write). Translation only: the rules are in domain/exchange."""

from __future__ import annotations

from typing import Any

from domain.common import format_time_us, parse_time_us
from domain.exchange.commands import ExecuteExchange, QuoteExchange
from domain.exchange.rates import ExchangeRate, PublishExchangeRate
from grpc_api.generated import exchange_pb2 as xpb
from grpc_api.generated import exchange_pb2_grpc as xpb_grpc
from grpc_api.generated import pos_pb2 as pb
from grpc_api.server import Gateway, _deadline, _validated, card_message, rpc
from ledger.codec import Outcome


def rate(message: Any) -> ExchangeRate:
    return ExchangeRate(
        message.from_program, message.to_program, message.version,
        parse_time_us(message.valid_from, "rate.valid_from", 0), message.numerator,
        message.denominator, message.rounding, message.fee_fixed_points, message.fee_bp,
        message.min_points, message.max_points, message.daily_limit_points,
        message.quote_ttl_s)


def exchange_reply(outcome: Outcome) -> Any:
    x = outcome.exchange
    reply = xpb.ExchangeReply(result=outcome.result, card=card_message(outcome.card),
                              replayed=outcome.replayed)
    if x is not None:
        reply.quote_id = x.quote_id
        reply.from_program, reply.to_program = x.from_program, x.to_program
        reply.rate_version = x.rate_version
        reply.points_taken, reply.fee_points = x.points_taken, x.fee_points
        reply.points_given = x.points_given
        reply.expires_at = format_time_us(x.expires_at_us)
        reply.lot_id, reply.lot_expires_at = x.lot_id, format_time_us(x.lot_expires_at_us)
        reply.decline_reason = x.decline_reason
    return reply


class ExchangeService(xpb_grpc.ExchangeServiceServicer):
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    @rpc
    async def PublishExchangeRate(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(PublishExchangeRate(rate(request.rate)), request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return pb.AdminReply(result=outcome.result, replayed=outcome.replayed)

    @rpc
    async def QuoteExchange(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(QuoteExchange(request.card_number, request.from_program,
                                           request.to_program, request.points_taken,
                                           request.points_wanted), None)
        outcome = await self.gateway.execute(credential, command, "", _deadline(context))
        return exchange_reply(outcome)

    @rpc
    async def ExecuteExchange(self, request: Any, context: Any, credential: Any) -> Any:
        command = _validated(ExecuteExchange(request.card_number, request.quote_id),
                             request.request_id)
        outcome = await self.gateway.execute(credential, command, request.request_id,
                                             _deadline(context))
        return exchange_reply(outcome)
