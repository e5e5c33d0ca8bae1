from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
