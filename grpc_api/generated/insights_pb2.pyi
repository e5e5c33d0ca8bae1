from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InsightsRequest(_message.Message):
    __slots__ = ("as_of", "months", "partner_id", "store_id", "limit", "sales_split_minor", "margin_split_minor")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SALES_SPLIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_SPLIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    months: int
    partner_id: str
    store_id: str
    limit: int
    sales_split_minor: int
    margin_split_minor: int
    def __init__(self, as_of: _Optional[str] = ..., months: _Optional[int] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., limit: _Optional[int] = ..., sales_split_minor: _Optional[int] = ..., margin_split_minor: _Optional[int] = ...) -> None: ...

class InsightsScope(_message.Message):
    __slots__ = ("as_of", "first_day", "last_day", "partner_id", "store_id", "log_position")
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    FIRST_DAY_FIELD_NUMBER: _ClassVar[int]
    LAST_DAY_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    LOG_POSITION_FIELD_NUMBER: _ClassVar[int]
    as_of: str
    first_day: str
    last_day: str
    partner_id: str
    store_id: str
    log_position: int
    def __init__(self, as_of: _Optional[str] = ..., first_day: _Optional[str] = ..., last_day: _Optional[str] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., log_position: _Optional[int] = ...) -> None: ...

class PyramidLevel(_message.Message):
    __slots__ = ("level", "customers", "spend_minor", "share_bps", "min_spend_minor", "max_spend_minor")
    LEVEL_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    MAX_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    level: str
    customers: int
    spend_minor: int
    share_bps: int
    min_spend_minor: int
    max_spend_minor: int
    def __init__(self, level: _Optional[str] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ..., share_bps: _Optional[int] = ..., min_spend_minor: _Optional[int] = ..., max_spend_minor: _Optional[int] = ...) -> None: ...

class PyramidMove(_message.Message):
    __slots__ = ("previous", "current", "customers")
    PREVIOUS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    previous: str
    current: str
    customers: int
    def __init__(self, previous: _Optional[str] = ..., current: _Optional[str] = ..., customers: _Optional[int] = ...) -> None: ...

class PyramidReply(_message.Message):
    __slots__ = ("scope", "customers", "spend_minor", "levels", "movement")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    LEVELS_FIELD_NUMBER: _ClassVar[int]
    MOVEMENT_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    customers: int
    spend_minor: int
    levels: _containers.RepeatedCompositeFieldContainer[PyramidLevel]
    movement: _containers.RepeatedCompositeFieldContainer[PyramidMove]
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ..., levels: _Optional[_Iterable[_Union[PyramidLevel, _Mapping]]] = ..., movement: _Optional[_Iterable[_Union[PyramidMove, _Mapping]]] = ...) -> None: ...

class MatrixQuadrant(_message.Message):
    __slots__ = ("quadrant", "customers", "sales_minor", "margin_minor")
    QUADRANT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SALES_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_MINOR_FIELD_NUMBER: _ClassVar[int]
    quadrant: str
    customers: int
    sales_minor: int
    margin_minor: int
    def __init__(self, quadrant: _Optional[str] = ..., customers: _Optional[int] = ..., sales_minor: _Optional[int] = ..., margin_minor: _Optional[int] = ...) -> None: ...

class ValueMatrixReply(_message.Message):
    __slots__ = ("scope", "sales_split_minor", "margin_split_minor", "quadrants")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SALES_SPLIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_SPLIT_MINOR_FIELD_NUMBER: _ClassVar[int]
    QUADRANTS_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    sales_split_minor: int
    margin_split_minor: int
    quadrants: _containers.RepeatedCompositeFieldContainer[MatrixQuadrant]
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., sales_split_minor: _Optional[int] = ..., margin_split_minor: _Optional[int] = ..., quadrants: _Optional[_Iterable[_Union[MatrixQuadrant, _Mapping]]] = ...) -> None: ...

class RfmCustomer(_message.Message):
    __slots__ = ("customer", "recency_days", "visits", "spend_minor", "r", "f", "m", "score", "segment")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    RECENCY_DAYS_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    R_FIELD_NUMBER: _ClassVar[int]
    F_FIELD_NUMBER: _ClassVar[int]
    M_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    customer: str
    recency_days: int
    visits: int
    spend_minor: int
    r: int
    f: int
    m: int
    score: int
    segment: str
    def __init__(self, customer: _Optional[str] = ..., recency_days: _Optional[int] = ..., visits: _Optional[int] = ..., spend_minor: _Optional[int] = ..., r: _Optional[int] = ..., f: _Optional[int] = ..., m: _Optional[int] = ..., score: _Optional[int] = ..., segment: _Optional[str] = ...) -> None: ...

class RfmSegment(_message.Message):
    __slots__ = ("segment", "customers", "spend_minor")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    segment: str
    customers: int
    spend_minor: int
    def __init__(self, segment: _Optional[str] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ...) -> None: ...

class RfmReply(_message.Message):
    __slots__ = ("scope", "recency_cuts", "frequency_cuts", "monetary_cuts", "segments", "customers", "customers_total")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    RECENCY_CUTS_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_CUTS_FIELD_NUMBER: _ClassVar[int]
    MONETARY_CUTS_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    recency_cuts: _containers.RepeatedScalarFieldContainer[int]
    frequency_cuts: _containers.RepeatedScalarFieldContainer[int]
    monetary_cuts: _containers.RepeatedScalarFieldContainer[int]
    segments: _containers.RepeatedCompositeFieldContainer[RfmSegment]
    customers: _containers.RepeatedCompositeFieldContainer[RfmCustomer]
    customers_total: int
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., recency_cuts: _Optional[_Iterable[int]] = ..., frequency_cuts: _Optional[_Iterable[int]] = ..., monetary_cuts: _Optional[_Iterable[int]] = ..., segments: _Optional[_Iterable[_Union[RfmSegment, _Mapping]]] = ..., customers: _Optional[_Iterable[_Union[RfmCustomer, _Mapping]]] = ..., customers_total: _Optional[int] = ...) -> None: ...

class LifecycleCount(_message.Message):
    __slots__ = ("status", "customers")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    status: str
    customers: int
    def __init__(self, status: _Optional[str] = ..., customers: _Optional[int] = ...) -> None: ...

class AtRiskCustomer(_message.Message):
    __slots__ = ("customer", "last_visit", "gap_days", "usual_interval_days")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    LAST_VISIT_FIELD_NUMBER: _ClassVar[int]
    GAP_DAYS_FIELD_NUMBER: _ClassVar[int]
    USUAL_INTERVAL_DAYS_FIELD_NUMBER: _ClassVar[int]
    customer: str
    last_visit: str
    gap_days: int
    usual_interval_days: int
    def __init__(self, customer: _Optional[str] = ..., last_visit: _Optional[str] = ..., gap_days: _Optional[int] = ..., usual_interval_days: _Optional[int] = ...) -> None: ...

class SegmentSpend(_message.Message):
    __slots__ = ("segment", "customers", "previous_spend_minor", "current_spend_minor", "change_minor", "fell")
    SEGMENT_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENT_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    CHANGE_MINOR_FIELD_NUMBER: _ClassVar[int]
    FELL_FIELD_NUMBER: _ClassVar[int]
    segment: str
    customers: int
    previous_spend_minor: int
    current_spend_minor: int
    change_minor: int
    fell: bool
    def __init__(self, segment: _Optional[str] = ..., customers: _Optional[int] = ..., previous_spend_minor: _Optional[int] = ..., current_spend_minor: _Optional[int] = ..., change_minor: _Optional[int] = ..., fell: _Optional[bool] = ...) -> None: ...

class ChurnReply(_message.Message):
    __slots__ = ("scope", "statuses", "became_at_risk", "segments")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    STATUSES_FIELD_NUMBER: _ClassVar[int]
    BECAME_AT_RISK_FIELD_NUMBER: _ClassVar[int]
    SEGMENTS_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    statuses: _containers.RepeatedCompositeFieldContainer[LifecycleCount]
    became_at_risk: _containers.RepeatedCompositeFieldContainer[AtRiskCustomer]
    segments: _containers.RepeatedCompositeFieldContainer[SegmentSpend]
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., statuses: _Optional[_Iterable[_Union[LifecycleCount, _Mapping]]] = ..., became_at_risk: _Optional[_Iterable[_Union[AtRiskCustomer, _Mapping]]] = ..., segments: _Optional[_Iterable[_Union[SegmentSpend, _Mapping]]] = ...) -> None: ...

class VisitCell(_message.Message):
    __slots__ = ("weekday", "hour", "visits", "spend_minor")
    WEEKDAY_FIELD_NUMBER: _ClassVar[int]
    HOUR_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    weekday: int
    hour: int
    visits: int
    spend_minor: int
    def __init__(self, weekday: _Optional[int] = ..., hour: _Optional[int] = ..., visits: _Optional[int] = ..., spend_minor: _Optional[int] = ...) -> None: ...

class VisitTimesReply(_message.Message):
    __slots__ = ("scope", "visits", "spend_minor", "cells", "by_weekday", "by_hour")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VISITS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    CELLS_FIELD_NUMBER: _ClassVar[int]
    BY_WEEKDAY_FIELD_NUMBER: _ClassVar[int]
    BY_HOUR_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    visits: int
    spend_minor: int
    cells: _containers.RepeatedCompositeFieldContainer[VisitCell]
    by_weekday: _containers.RepeatedCompositeFieldContainer[VisitCell]
    by_hour: _containers.RepeatedCompositeFieldContainer[VisitCell]
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., visits: _Optional[int] = ..., spend_minor: _Optional[int] = ..., cells: _Optional[_Iterable[_Union[VisitCell, _Mapping]]] = ..., by_weekday: _Optional[_Iterable[_Union[VisitCell, _Mapping]]] = ..., by_hour: _Optional[_Iterable[_Union[VisitCell, _Mapping]]] = ...) -> None: ...

class AffinityPlace(_message.Message):
    __slots__ = ("kind", "id", "partner_id", "customers", "spend_minor", "share_bps")
    KIND_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    kind: str
    id: str
    partner_id: str
    customers: int
    spend_minor: int
    share_bps: int
    def __init__(self, kind: _Optional[str] = ..., id: _Optional[str] = ..., partner_id: _Optional[str] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ..., share_bps: _Optional[int] = ...) -> None: ...

class Share(_message.Message):
    __slots__ = ("id", "share_bps")
    ID_FIELD_NUMBER: _ClassVar[int]
    SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    id: str
    share_bps: int
    def __init__(self, id: _Optional[str] = ..., share_bps: _Optional[int] = ...) -> None: ...

class CustomerAffinity(_message.Message):
    __slots__ = ("customer", "spend_minor", "partners", "stores", "partner_shares")
    CUSTOMER_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    PARTNERS_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    PARTNER_SHARES_FIELD_NUMBER: _ClassVar[int]
    customer: str
    spend_minor: int
    partners: int
    stores: _containers.RepeatedCompositeFieldContainer[Share]
    partner_shares: _containers.RepeatedCompositeFieldContainer[Share]
    def __init__(self, customer: _Optional[str] = ..., spend_minor: _Optional[int] = ..., partners: _Optional[int] = ..., stores: _Optional[_Iterable[_Union[Share, _Mapping]]] = ..., partner_shares: _Optional[_Iterable[_Union[Share, _Mapping]]] = ...) -> None: ...

class PartnerFlow(_message.Message):
    __slots__ = ("from_partner", "to_partner", "customers", "spend_minor")
    FROM_PARTNER_FIELD_NUMBER: _ClassVar[int]
    TO_PARTNER_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    from_partner: str
    to_partner: str
    customers: int
    spend_minor: int
    def __init__(self, from_partner: _Optional[str] = ..., to_partner: _Optional[str] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ...) -> None: ...

class AffinityReply(_message.Message):
    __slots__ = ("scope", "customers", "spend_minor", "places", "multi_partner_customers", "multi_partner_spend_minor", "elsewhere_customers", "flows", "customers_top")
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    PLACES_FIELD_NUMBER: _ClassVar[int]
    MULTI_PARTNER_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    MULTI_PARTNER_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    ELSEWHERE_CUSTOMERS_FIELD_NUMBER: _ClassVar[int]
    FLOWS_FIELD_NUMBER: _ClassVar[int]
    CUSTOMERS_TOP_FIELD_NUMBER: _ClassVar[int]
    scope: InsightsScope
    customers: int
    spend_minor: int
    places: _containers.RepeatedCompositeFieldContainer[AffinityPlace]
    multi_partner_customers: int
    multi_partner_spend_minor: int
    elsewhere_customers: int
    flows: _containers.RepeatedCompositeFieldContainer[PartnerFlow]
    customers_top: _containers.RepeatedCompositeFieldContainer[CustomerAffinity]
    def __init__(self, scope: _Optional[_Union[InsightsScope, _Mapping]] = ..., customers: _Optional[int] = ..., spend_minor: _Optional[int] = ..., places: _Optional[_Iterable[_Union[AffinityPlace, _Mapping]]] = ..., multi_partner_customers: _Optional[int] = ..., multi_partner_spend_minor: _Optional[int] = ..., elsewhere_customers: _Optional[int] = ..., flows: _Optional[_Iterable[_Union[PartnerFlow, _Mapping]]] = ..., customers_top: _Optional[_Iterable[_Union[CustomerAffinity, _Mapping]]] = ...) -> None: ...
