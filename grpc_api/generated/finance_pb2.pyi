from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EstimateMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ESTIMATE_METHOD_UNSPECIFIED: _ClassVar[EstimateMethod]
    PUBLISHED: _ClassVar[EstimateMethod]
    COHORT_RUNOFF: _ClassVar[EstimateMethod]
ESTIMATE_METHOD_UNSPECIFIED: EstimateMethod
PUBLISHED: EstimateMethod
COHORT_RUNOFF: EstimateMethod

class GetLiabilityRequest(_message.Message):
    __slots__ = ("as_of", "entity_id")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    entity_id: str
    def __init__(self, as_of: _Optional[str] = ..., entity_id: _Optional[str] = ...) -> None: ...

class StoredValueLiability(_message.Message):
    __slots__ = ("issuer_id", "currency", "available_minor", "held_minor", "outstanding_minor")
    ISSUER_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    HELD_MINOR_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    issuer_id: str
    currency: str
    available_minor: int
    held_minor: int
    outstanding_minor: int
    def __init__(self, issuer_id: _Optional[str] = ..., currency: _Optional[str] = ..., available_minor: _Optional[int] = ..., held_minor: _Optional[int] = ..., outstanding_minor: _Optional[int] = ...) -> None: ...

class PointsLiability(_message.Message):
    __slots__ = ("program_id", "currency", "vested_points", "pending_points", "outstanding_points", "point_value_micros", "value_minor", "debt_points")
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    VESTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    PENDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_POINTS_FIELD_NUMBER: _ClassVar[int]
    POINT_VALUE_MICROS_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    DEBT_POINTS_FIELD_NUMBER: _ClassVar[int]
    program_id: str
    currency: str
    vested_points: int
    pending_points: int
    outstanding_points: int
    point_value_micros: int
    value_minor: int
    debt_points: int
    def __init__(self, program_id: _Optional[str] = ..., currency: _Optional[str] = ..., vested_points: _Optional[int] = ..., pending_points: _Optional[int] = ..., outstanding_points: _Optional[int] = ..., point_value_micros: _Optional[int] = ..., value_minor: _Optional[int] = ..., debt_points: _Optional[int] = ...) -> None: ...

class LiabilityReply(_message.Message):
    __slots__ = ("as_of", "stored_value", "points", "log_position")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    stored_value: _containers.RepeatedCompositeFieldContainer[StoredValueLiability]
    points: _containers.RepeatedCompositeFieldContainer[PointsLiability]
    log_position: int
    def __init__(self, as_of: _Optional[str] = ..., stored_value: _Optional[_Iterable[_Union[StoredValueLiability, _Mapping]]] = ..., points: _Optional[_Iterable[_Union[PointsLiability, _Mapping]]] = ..., log_position: _Optional[int] = ...) -> None: ...

class GetRollForwardRequest(_message.Message):
    __slots__ = ("to", "entity_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    entity_id: str
    def __init__(self, to: _Optional[str] = ..., entity_id: _Optional[str] = ..., **kwargs) -> None: ...

class RollForwardLine(_message.Message):
    __slots__ = ("line", "amount")
    LINE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_FIELD_NUMBER: _ClassVar[int]
    line: str
    amount: int
    def __init__(self, line: _Optional[str] = ..., amount: _Optional[int] = ...) -> None: ...

class RollForward(_message.Message):
    __slots__ = ("kind", "entity_id", "currency", "opening", "lines", "closing", "opening_value_minor", "closing_value_minor", "memo")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    OPENING_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    CLOSING_FIELD_NUMBER: _ClassVar[int]
    OPENING_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLOSING_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MEMO_FIELD_NUMBER: _ClassVar[int]
    kind: str
    entity_id: str
    currency: str
    opening: int
    lines: _containers.RepeatedCompositeFieldContainer[RollForwardLine]
    closing: int
    opening_value_minor: int
    closing_value_minor: int
    memo: _containers.RepeatedCompositeFieldContainer[RollForwardLine]
    def __init__(self, kind: _Optional[str] = ..., entity_id: _Optional[str] = ..., currency: _Optional[str] = ..., opening: _Optional[int] = ..., lines: _Optional[_Iterable[_Union[RollForwardLine, _Mapping]]] = ..., closing: _Optional[int] = ..., opening_value_minor: _Optional[int] = ..., closing_value_minor: _Optional[int] = ..., memo: _Optional[_Iterable[_Union[RollForwardLine, _Mapping]]] = ...) -> None: ...

class RollForwardReply(_message.Message):
    __slots__ = ("to", "rows", "log_position")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    to: str
    rows: _containers.RepeatedCompositeFieldContainer[RollForward]
    log_position: int
    def __init__(self, to: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[RollForward, _Mapping]]] = ..., log_position: _Optional[int] = ..., **kwargs) -> None: ...

class GetBreakageRequest(_message.Message):
    __slots__ = ("to", "entity_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    entity_id: str
    def __init__(self, to: _Optional[str] = ..., entity_id: _Optional[str] = ..., **kwargs) -> None: ...

class Breakage(_message.Message):
    __slots__ = ("month", "kind", "entity_id", "currency", "points", "amount_minor", "posted_minor")
    MONTH_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    POSTED_MINOR_FIELD_NUMBER: _ClassVar[int]
    month: str
    kind: str
    entity_id: str
    currency: str
    points: int
    amount_minor: int
    posted_minor: int
    def __init__(self, month: _Optional[str] = ..., kind: _Optional[str] = ..., entity_id: _Optional[str] = ..., currency: _Optional[str] = ..., points: _Optional[int] = ..., amount_minor: _Optional[int] = ..., posted_minor: _Optional[int] = ...) -> None: ...

class BreakageReply(_message.Message):
    __slots__ = ("to", "rows", "log_position")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    to: str
    rows: _containers.RepeatedCompositeFieldContainer[Breakage]
    log_position: int
    def __init__(self, to: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[Breakage, _Mapping]]] = ..., log_position: _Optional[int] = ..., **kwargs) -> None: ...

class PublishedRate(_message.Message):
    __slots__ = ("effective_from", "redemption_rate_bp")
    EFFECTIVE_FROM_FIELD_NUMBER: _ClassVar[int]
    REDEMPTION_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    effective_from: str
    redemption_rate_bp: int
    def __init__(self, effective_from: _Optional[str] = ..., redemption_rate_bp: _Optional[int] = ...) -> None: ...

class GetIfrs15Request(_message.Message):
    __slots__ = ("as_of", "program_id", "method", "estimates")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    PROGRAM_ID_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    program_id: str
    method: EstimateMethod
    estimates: _containers.RepeatedCompositeFieldContainer[PublishedRate]
    def __init__(self, as_of: _Optional[str] = ..., program_id: _Optional[str] = ..., method: _Optional[_Union[EstimateMethod, str]] = ..., estimates: _Optional[_Iterable[_Union[PublishedRate, _Mapping]]] = ...) -> None: ...

class Ifrs15Period(_message.Message):
    __slots__ = ("program", "currency", "period", "opening_minor", "allocated_minor", "redemptions_minor", "breakage_minor", "catch_up_minor", "recognised_minor", "closing_minor", "goods_revenue_minor", "points_earned", "points_redeemed", "points_expired", "points_open", "points_expected_to_redeem")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    OPENING_MINOR_FIELD_NUMBER: _ClassVar[int]
    ALLOCATED_MINOR_FIELD_NUMBER: _ClassVar[int]
    REDEMPTIONS_MINOR_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_MINOR_FIELD_NUMBER: _ClassVar[int]
    RECOGNISED_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLOSING_MINOR_FIELD_NUMBER: _ClassVar[int]
    GOODS_REVENUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    POINTS_EXPIRED_FIELD_NUMBER: _ClassVar[int]
    POINTS_OPEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_EXPECTED_TO_REDEEM_FIELD_NUMBER: _ClassVar[int]
    program: str
    currency: str
    period: str
    opening_minor: int
    allocated_minor: int
    redemptions_minor: int
    breakage_minor: int
    catch_up_minor: int
    recognised_minor: int
    closing_minor: int
    goods_revenue_minor: int
    points_earned: int
    points_redeemed: int
    points_expired: int
    points_open: int
    points_expected_to_redeem: int
    def __init__(self, program: _Optional[str] = ..., currency: _Optional[str] = ..., period: _Optional[str] = ..., opening_minor: _Optional[int] = ..., allocated_minor: _Optional[int] = ..., redemptions_minor: _Optional[int] = ..., breakage_minor: _Optional[int] = ..., catch_up_minor: _Optional[int] = ..., recognised_minor: _Optional[int] = ..., closing_minor: _Optional[int] = ..., goods_revenue_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., points_expired: _Optional[int] = ..., points_open: _Optional[int] = ..., points_expected_to_redeem: _Optional[int] = ...) -> None: ...

class Ifrs15Allocation(_message.Message):
    __slots__ = ("program", "currency", "period", "sales_minor", "goods_ssp_minor", "points_face_value_minor", "expected_rate_bp", "points_ssp_minor", "goods_minor", "points_minor")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    SALES_MINOR_FIELD_NUMBER: _ClassVar[int]
    GOODS_SSP_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FACE_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    POINTS_SSP_MINOR_FIELD_NUMBER: _ClassVar[int]
    GOODS_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_MINOR_FIELD_NUMBER: _ClassVar[int]
    program: str
    currency: str
    period: str
    sales_minor: int
    goods_ssp_minor: int
    points_face_value_minor: int
    expected_rate_bp: int
    points_ssp_minor: int
    goods_minor: int
    points_minor: int
    def __init__(self, program: _Optional[str] = ..., currency: _Optional[str] = ..., period: _Optional[str] = ..., sales_minor: _Optional[int] = ..., goods_ssp_minor: _Optional[int] = ..., points_face_value_minor: _Optional[int] = ..., expected_rate_bp: _Optional[int] = ..., points_ssp_minor: _Optional[int] = ..., goods_minor: _Optional[int] = ..., points_minor: _Optional[int] = ...) -> None: ...

class Ifrs15Estimate(_message.Message):
    __slots__ = ("program", "period", "method", "published_rate_bp", "published_from", "cohort", "age", "earned", "redeemed", "expired", "open", "expected_rate_bp", "expected_points", "used_points")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FROM_FIELD_NUMBER: _ClassVar[int]
    COHORT_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    EARNED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    OPEN_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_POINTS_FIELD_NUMBER: _ClassVar[int]
    USED_POINTS_FIELD_NUMBER: _ClassVar[int]
    program: str
    period: str
    method: EstimateMethod
    published_rate_bp: int
    published_from: str
    cohort: str
    age: int
    earned: int
    redeemed: int
    expired: int
    open: int
    expected_rate_bp: int
    expected_points: int
    used_points: int
    def __init__(self, program: _Optional[str] = ..., period: _Optional[str] = ..., method: _Optional[_Union[EstimateMethod, str]] = ..., published_rate_bp: _Optional[int] = ..., published_from: _Optional[str] = ..., cohort: _Optional[str] = ..., age: _Optional[int] = ..., earned: _Optional[int] = ..., redeemed: _Optional[int] = ..., expired: _Optional[int] = ..., open: _Optional[int] = ..., expected_rate_bp: _Optional[int] = ..., expected_points: _Optional[int] = ..., used_points: _Optional[int] = ...) -> None: ...

class Ifrs15AgeRate(_message.Message):
    __slots__ = ("program", "period", "age", "cohorts", "open_at_start", "redeemed", "expired", "redeemed_rate_bp", "expired_rate_bp", "tail_rate_bp")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    AGE_FIELD_NUMBER: _ClassVar[int]
    COHORTS_FIELD_NUMBER: _ClassVar[int]
    OPEN_AT_START_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    TAIL_RATE_BP_FIELD_NUMBER: _ClassVar[int]
    program: str
    period: str
    age: int
    cohorts: int
    open_at_start: int
    redeemed: int
    expired: int
    redeemed_rate_bp: int
    expired_rate_bp: int
    tail_rate_bp: int
    def __init__(self, program: _Optional[str] = ..., period: _Optional[str] = ..., age: _Optional[int] = ..., cohorts: _Optional[int] = ..., open_at_start: _Optional[int] = ..., redeemed: _Optional[int] = ..., expired: _Optional[int] = ..., redeemed_rate_bp: _Optional[int] = ..., expired_rate_bp: _Optional[int] = ..., tail_rate_bp: _Optional[int] = ...) -> None: ...

class ExchangedPoints(_message.Message):
    __slots__ = ("program", "currency", "period", "opening_points", "received_points", "redeemed_points", "exchanged_out_points", "expired_points", "closing_points", "opening_minor", "received_minor", "revenue_minor", "breakage_minor", "closing_minor", "cohort_exchanged_out_points")
    PROGRAM_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    OPENING_POINTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_POINTS_FIELD_NUMBER: _ClassVar[int]
    REDEEMED_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGED_OUT_POINTS_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_POINTS_FIELD_NUMBER: _ClassVar[int]
    CLOSING_POINTS_FIELD_NUMBER: _ClassVar[int]
    OPENING_MINOR_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_MINOR_FIELD_NUMBER: _ClassVar[int]
    REVENUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    BREAKAGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    CLOSING_MINOR_FIELD_NUMBER: _ClassVar[int]
    COHORT_EXCHANGED_OUT_POINTS_FIELD_NUMBER: _ClassVar[int]
    program: str
    currency: str
    period: str
    opening_points: int
    received_points: int
    redeemed_points: int
    exchanged_out_points: int
    expired_points: int
    closing_points: int
    opening_minor: int
    received_minor: int
    revenue_minor: int
    breakage_minor: int
    closing_minor: int
    cohort_exchanged_out_points: int
    def __init__(self, program: _Optional[str] = ..., currency: _Optional[str] = ..., period: _Optional[str] = ..., opening_points: _Optional[int] = ..., received_points: _Optional[int] = ..., redeemed_points: _Optional[int] = ..., exchanged_out_points: _Optional[int] = ..., expired_points: _Optional[int] = ..., closing_points: _Optional[int] = ..., opening_minor: _Optional[int] = ..., received_minor: _Optional[int] = ..., revenue_minor: _Optional[int] = ..., breakage_minor: _Optional[int] = ..., closing_minor: _Optional[int] = ..., cohort_exchanged_out_points: _Optional[int] = ...) -> None: ...

class Ifrs15Reply(_message.Message):
    __slots__ = ("as_of", "method", "periods", "schedule", "allocations", "estimates", "age_rates", "exchanged", "log_position")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PERIODS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    ALLOCATIONS_FIELD_NUMBER: _ClassVar[int]
    ESTIMATES_FIELD_NUMBER: _ClassVar[int]
    AGE_RATES_FIELD_NUMBER: _ClassVar[int]
    EXCHANGED_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    method: EstimateMethod
    periods: _containers.RepeatedScalarFieldContainer[str]
    schedule: _containers.RepeatedCompositeFieldContainer[Ifrs15Period]
    allocations: _containers.RepeatedCompositeFieldContainer[Ifrs15Allocation]
    estimates: _containers.RepeatedCompositeFieldContainer[Ifrs15Estimate]
    age_rates: _containers.RepeatedCompositeFieldContainer[Ifrs15AgeRate]
    exchanged: _containers.RepeatedCompositeFieldContainer[ExchangedPoints]
    log_position: int
    def __init__(self, as_of: _Optional[str] = ..., method: _Optional[_Union[EstimateMethod, str]] = ..., periods: _Optional[_Iterable[str]] = ..., schedule: _Optional[_Iterable[_Union[Ifrs15Period, _Mapping]]] = ..., allocations: _Optional[_Iterable[_Union[Ifrs15Allocation, _Mapping]]] = ..., estimates: _Optional[_Iterable[_Union[Ifrs15Estimate, _Mapping]]] = ..., age_rates: _Optional[_Iterable[_Union[Ifrs15AgeRate, _Mapping]]] = ..., exchanged: _Optional[_Iterable[_Union[ExchangedPoints, _Mapping]]] = ..., log_position: _Optional[int] = ...) -> None: ...

class GetCampaignProfitabilityRequest(_message.Message):
    __slots__ = ("to", "entity_id")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    to: str
    entity_id: str
    def __init__(self, to: _Optional[str] = ..., entity_id: _Optional[str] = ..., **kwargs) -> None: ...

class CampaignProfitability(_message.Message):
    __slots__ = ("kind", "campaign", "owner", "funded_by", "purchases", "returns", "sales_minor", "margin_minor", "points", "points_value_minor", "discount_minor", "coupons_used", "coupons_issued", "given_minor", "margin_after_minor")
    KIND_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    FUNDED_BY_FIELD_NUMBER: _ClassVar[int]
    PURCHASES_FIELD_NUMBER: _ClassVar[int]
    RETURNS_FIELD_NUMBER: _ClassVar[int]
    SALES_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    COUPONS_USED_FIELD_NUMBER: _ClassVar[int]
    COUPONS_ISSUED_FIELD_NUMBER: _ClassVar[int]
    GIVEN_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_AFTER_MINOR_FIELD_NUMBER: _ClassVar[int]
    kind: str
    campaign: str
    owner: str
    funded_by: str
    purchases: int
    returns: int
    sales_minor: int
    margin_minor: int
    points: int
    points_value_minor: int
    discount_minor: int
    coupons_used: int
    coupons_issued: int
    given_minor: int
    margin_after_minor: int
    def __init__(self, kind: _Optional[str] = ..., campaign: _Optional[str] = ..., owner: _Optional[str] = ..., funded_by: _Optional[str] = ..., purchases: _Optional[int] = ..., returns: _Optional[int] = ..., sales_minor: _Optional[int] = ..., margin_minor: _Optional[int] = ..., points: _Optional[int] = ..., points_value_minor: _Optional[int] = ..., discount_minor: _Optional[int] = ..., coupons_used: _Optional[int] = ..., coupons_issued: _Optional[int] = ..., given_minor: _Optional[int] = ..., margin_after_minor: _Optional[int] = ...) -> None: ...

class CampaignProfitabilityReply(_message.Message):
    __slots__ = ("to", "rows", "log_position")
    FROM_FIELD_NUMBER: _ClassVar[int]
    TO_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    to: str
    rows: _containers.RepeatedCompositeFieldContainer[CampaignProfitability]
    log_position: int
    def __init__(self, to: _Optional[str] = ..., rows: _Optional[_Iterable[_Union[CampaignProfitability, _Mapping]]] = ..., log_position: _Optional[int] = ..., **kwargs) -> None: ...
