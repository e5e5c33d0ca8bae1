from . import pos_pb2 as _pos_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExchangeRounding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXCHANGE_ROUNDING_UNSPECIFIED: _ClassVar[ExchangeRounding]
    ROUND_DOWN: _ClassVar[ExchangeRounding]
    ROUND_HALF_UP: _ClassVar[ExchangeRounding]
    ROUND_UP: _ClassVar[ExchangeRounding]
EXCHANGE_ROUNDING_UNSPECIFIED: ExchangeRounding
ROUND_DOWN: ExchangeRounding
ROUND_HALF_UP: ExchangeRounding
ROUND_UP: ExchangeRounding

class ExchangeRate(_message.Message):
    __slots__ = ("from_program", "to_program", "version", "valid_from", "numerator", "denominator", "rounding", "fee_fixed_points", "fee_bp", "min_points", "max_points", "daily_limit_points", "quote_ttl_s")
    FROM_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TO_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    NUMERATOR_FIELD_NUMBER: _ClassVar[int]
    DENOMINATOR_FIELD_NUMBER: _ClassVar[int]
    ROUNDING_FIELD_NUMBER: _ClassVar[int]
    FEE_FIXED_POINTS_FIELD_NUMBER: _ClassVar[int]
    FEE_BP_FIELD_NUMBER: _ClassVar[int]
    MIN_POINTS_FIELD_NUMBER: _ClassVar[int]
    MAX_POINTS_FIELD_NUMBER: _ClassVar[int]
    DAILY_LIMIT_POINTS_FIELD_NUMBER: _ClassVar[int]
    QUOTE_TTL_S_FIELD_NUMBER: _ClassVar[int]
    from_program: str
    to_program: str
    version: int
    valid_from: str
    numerator: int
    denominator: int
    rounding: ExchangeRounding
    fee_fixed_points: int
    fee_bp: int
    min_points: int
    max_points: int
    daily_limit_points: int
    quote_ttl_s: int
    def __init__(self, from_program: _Optional[str] = ..., to_program: _Optional[str] = ..., version: _Optional[int] = ..., valid_from: _Optional[str] = ..., numerator: _Optional[int] = ..., denominator: _Optional[int] = ..., rounding: _Optional[_Union[ExchangeRounding, str]] = ..., fee_fixed_points: _Optional[int] = ..., fee_bp: _Optional[int] = ..., min_points: _Optional[int] = ..., max_points: _Optional[int] = ..., daily_limit_points: _Optional[int] = ..., quote_ttl_s: _Optional[int] = ...) -> None: ...

class PublishExchangeRateRequest(_message.Message):
    __slots__ = ("request_id", "rate")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    rate: ExchangeRate
    def __init__(self, request_id: _Optional[str] = ..., rate: _Optional[_Union[ExchangeRate, _Mapping]] = ...) -> None: ...

class QuoteExchangeRequest(_message.Message):
    __slots__ = ("card_number", "from_program", "to_program", "points_taken", "points_wanted")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    FROM_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TO_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    POINTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    POINTS_WANTED_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    from_program: str
    to_program: str
    points_taken: int
    points_wanted: int
    def __init__(self, card_number: _Optional[str] = ..., from_program: _Optional[str] = ..., to_program: _Optional[str] = ..., points_taken: _Optional[int] = ..., points_wanted: _Optional[int] = ...) -> None: ...

class ExecuteExchangeRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "quote_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    quote_id: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., quote_id: _Optional[str] = ...) -> None: ...

class ExchangeReply(_message.Message):
    __slots__ = ("result", "quote_id", "from_program", "to_program", "rate_version", "points_taken", "fee_points", "points_given", "expires_at", "lot_id", "lot_expires_at", "decline_reason", "card", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    QUOTE_ID_FIELD_NUMBER: _ClassVar[int]
    FROM_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    TO_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    RATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    POINTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    FEE_POINTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_GIVEN_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    LOT_ID_FIELD_NUMBER: _ClassVar[int]
    LOT_EXPIRES_AT_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: _pos_pb2.Result
    quote_id: str
    from_program: str
    to_program: str
    rate_version: int
    points_taken: int
    fee_points: int
    points_given: int
    expires_at: str
    lot_id: str
    lot_expires_at: str
    decline_reason: str
    card: _pos_pb2.Card
    replayed: bool
    def __init__(self, result: _Optional[_Union[_pos_pb2.Result, str]] = ..., quote_id: _Optional[str] = ..., from_program: _Optional[str] = ..., to_program: _Optional[str] = ..., rate_version: _Optional[int] = ..., points_taken: _Optional[int] = ..., fee_points: _Optional[int] = ..., points_given: _Optional[int] = ..., expires_at: _Optional[str] = ..., lot_id: _Optional[str] = ..., lot_expires_at: _Optional[str] = ..., decline_reason: _Optional[str] = ..., card: _Optional[_Union[_pos_pb2.Card, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...
