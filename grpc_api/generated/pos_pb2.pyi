from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Result(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESULT_UNSPECIFIED: _ClassVar[Result]
    APPROVED: _ClassVar[Result]
    PARTIALLY_APPROVED: _ClassVar[Result]
    DECLINED_INSUFFICIENT_FUNDS: _ClassVar[Result]
    DECLINED_CARD_NOT_FOUND: _ClassVar[Result]
    DECLINED_CARD_NOT_ACTIVE: _ClassVar[Result]
    DECLINED_CURRENCY_MISMATCH: _ClassVar[Result]
    DECLINED_LIMIT_EXCEEDED: _ClassVar[Result]
    DECLINED_AUTHORIZATION_NOT_FOUND: _ClassVar[Result]
    DECLINED_AUTHORIZATION_NOT_PENDING: _ClassVar[Result]
    DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION: _ClassVar[Result]
    DECLINED_REFUND_EXCEEDS_CAPTURED: _ClassVar[Result]
    DUPLICATE_REQUEST_MISMATCH: _ClassVar[Result]
    DECLINED_CARD_EXISTS: _ClassVar[Result]
    DECLINED_INVALID_STATE: _ClassVar[Result]
    DECLINED_REQUEST_REVERSED: _ClassVar[Result]

class CardStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CARD_STATUS_UNSPECIFIED: _ClassVar[CardStatus]
    ISSUED: _ClassVar[CardStatus]
    ACTIVE: _ClassVar[CardStatus]
    BLOCKED: _ClassVar[CardStatus]
    CLOSED: _ClassVar[CardStatus]
    REPLACED: _ClassVar[CardStatus]

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ADMIN: _ClassVar[Role]
    PARTNER_MANAGER: _ClassVar[Role]
    STORE_MANAGER: _ClassVar[Role]
    TERMINAL: _ClassVar[Role]
    GATEWAY: _ClassVar[Role]
    AUDITOR: _ClassVar[Role]
    FINANCE: _ClassVar[Role]
RESULT_UNSPECIFIED: Result
APPROVED: Result
PARTIALLY_APPROVED: Result
DECLINED_INSUFFICIENT_FUNDS: Result
DECLINED_CARD_NOT_FOUND: Result
DECLINED_CARD_NOT_ACTIVE: Result
DECLINED_CURRENCY_MISMATCH: Result
DECLINED_LIMIT_EXCEEDED: Result
DECLINED_AUTHORIZATION_NOT_FOUND: Result
DECLINED_AUTHORIZATION_NOT_PENDING: Result
DECLINED_AMOUNT_EXCEEDS_AUTHORIZATION: Result
DECLINED_REFUND_EXCEEDS_CAPTURED: Result
DUPLICATE_REQUEST_MISMATCH: Result
DECLINED_CARD_EXISTS: Result
DECLINED_INVALID_STATE: Result
DECLINED_REQUEST_REVERSED: Result
CARD_STATUS_UNSPECIFIED: CardStatus
ISSUED: CardStatus
ACTIVE: CardStatus
BLOCKED: CardStatus
CLOSED: CardStatus
REPLACED: CardStatus
ROLE_UNSPECIFIED: Role
ADMIN: Role
PARTNER_MANAGER: Role
STORE_MANAGER: Role
TERMINAL: Role
GATEWAY: Role
AUDITOR: Role
FINANCE: Role

class Principal(_message.Message):
    __slots__ = ("role", "partner_id", "store_id", "terminal_id")
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    role: Role
    partner_id: str
    store_id: str
    terminal_id: str
    def __init__(self, role: _Optional[_Union[Role, str]] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., terminal_id: _Optional[str] = ...) -> None: ...

class DefineCardClassRequest(_message.Message):
    __slots__ = ("request_id", "card_class", "max_balance_major", "hold_ttl_seconds")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_CLASS_FIELD_NUMBER: _ClassVar[int]
    MAX_BALANCE_MAJOR_FIELD_NUMBER: _ClassVar[int]
    HOLD_TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_class: str
    max_balance_major: int
    hold_ttl_seconds: int
    def __init__(self, request_id: _Optional[str] = ..., card_class: _Optional[str] = ..., max_balance_major: _Optional[int] = ..., hold_ttl_seconds: _Optional[int] = ...) -> None: ...

class RegisterPartnerRequest(_message.Message):
    __slots__ = ("request_id", "partner_id", "name", "currency")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partner_id: str
    name: str
    currency: str
    def __init__(self, request_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., name: _Optional[str] = ..., currency: _Optional[str] = ...) -> None: ...

class RegisterStoreRequest(_message.Message):
    __slots__ = ("request_id", "partner_id", "store_id", "name", "timezone")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partner_id: str
    store_id: str
    name: str
    timezone: str
    def __init__(self, request_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., store_id: _Optional[str] = ..., name: _Optional[str] = ..., timezone: _Optional[str] = ...) -> None: ...

class RegisterTerminalRequest(_message.Message):
    __slots__ = ("request_id", "store_id", "terminal_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    store_id: str
    terminal_id: str
    def __init__(self, request_id: _Optional[str] = ..., store_id: _Optional[str] = ..., terminal_id: _Optional[str] = ...) -> None: ...

class CreateCredentialRequest(_message.Message):
    __slots__ = ("request_id", "principal", "label")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PRINCIPAL_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    principal: Principal
    label: str
    def __init__(self, request_id: _Optional[str] = ..., principal: _Optional[_Union[Principal, _Mapping]] = ..., label: _Optional[str] = ...) -> None: ...

class RevokeCredentialRequest(_message.Message):
    __slots__ = ("request_id", "credential_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    credential_id: str
    def __init__(self, request_id: _Optional[str] = ..., credential_id: _Optional[str] = ...) -> None: ...

class AdminReply(_message.Message):
    __slots__ = ("result", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class CredentialReply(_message.Message):
    __slots__ = ("result", "credential_id", "token", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    TOKEN_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    credential_id: str
    token: str
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., credential_id: _Optional[str] = ..., token: _Optional[str] = ..., replayed: _Optional[bool] = ...) -> None: ...

class Card(_message.Message):
    __slots__ = ("card_number", "card_class", "status", "currency", "balance_minor", "held_minor", "available_minor", "issuing_partner_id", "issuing_store_id", "replaced_by", "points", "version")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CARD_CLASS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    HELD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    ISSUING_PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    ISSUING_STORE_ID_FIELD_NUMBER: _ClassVar[int]
    REPLACED_BY_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    card_class: str
    status: CardStatus
    currency: str
    balance_minor: int
    held_minor: int
    available_minor: int
    issuing_partner_id: str
    issuing_store_id: str
    replaced_by: str
    points: int
    version: int
    def __init__(self, card_number: _Optional[str] = ..., card_class: _Optional[str] = ..., status: _Optional[_Union[CardStatus, str]] = ..., currency: _Optional[str] = ..., balance_minor: _Optional[int] = ..., held_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., issuing_partner_id: _Optional[str] = ..., issuing_store_id: _Optional[str] = ..., replaced_by: _Optional[str] = ..., points: _Optional[int] = ..., version: _Optional[int] = ...) -> None: ...

class IssueCardRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "card_class", "currency", "customer_ref", "issuing_store_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CARD_CLASS_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CUSTOMER_REF_FIELD_NUMBER: _ClassVar[int]
    ISSUING_STORE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    card_class: str
    currency: str
    customer_ref: str
    issuing_store_id: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., card_class: _Optional[str] = ..., currency: _Optional[str] = ..., customer_ref: _Optional[str] = ..., issuing_store_id: _Optional[str] = ...) -> None: ...

class CardActionRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ReplaceCardRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "new_card_number", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    NEW_CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    new_card_number: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., new_card_number: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class CardReply(_message.Message):
    __slots__ = ("result", "card", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    card: Card
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., card: _Optional[_Union[Card, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class LoadValueRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "amount_minor", "currency", "payment_ref")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REF_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    amount_minor: int
    currency: str
    payment_ref: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., payment_ref: _Optional[str] = ...) -> None: ...

class ValueReply(_message.Message):
    __slots__ = ("result", "balance_minor", "available_minor", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    balance_minor: int
    available_minor: int
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., balance_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetCardRequest(_message.Message):
    __slots__ = ("card_number",)
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    def __init__(self, card_number: _Optional[str] = ...) -> None: ...

class ListMovementsRequest(_message.Message):
    __slots__ = ("card_number", "after_version", "limit")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AFTER_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    after_version: int
    limit: int
    def __init__(self, card_number: _Optional[str] = ..., after_version: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class Movement(_message.Message):
    __slots__ = ("version", "kind", "amount_minor", "balance_minor", "held_minor", "store_id", "terminal_id", "request_id", "recorded_at")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    HELD_MINOR_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    version: int
    kind: str
    amount_minor: int
    balance_minor: int
    held_minor: int
    store_id: str
    terminal_id: str
    request_id: str
    recorded_at: str
    def __init__(self, version: _Optional[int] = ..., kind: _Optional[str] = ..., amount_minor: _Optional[int] = ..., balance_minor: _Optional[int] = ..., held_minor: _Optional[int] = ..., store_id: _Optional[str] = ..., terminal_id: _Optional[str] = ..., request_id: _Optional[str] = ..., recorded_at: _Optional[str] = ...) -> None: ...

class ListMovementsReply(_message.Message):
    __slots__ = ("movements",)
    MOVEMENTS_FIELD_NUMBER: _ClassVar[int]
    movements: _containers.RepeatedCompositeFieldContainer[Movement]
    def __init__(self, movements: _Optional[_Iterable[_Union[Movement, _Mapping]]] = ...) -> None: ...

class AuthorizeRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "amount_minor", "currency", "allow_partial", "stan")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    STAN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    amount_minor: int
    currency: str
    allow_partial: bool
    stan: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ..., allow_partial: _Optional[bool] = ..., stan: _Optional[str] = ...) -> None: ...

class CaptureRequest(_message.Message):
    __slots__ = ("request_id", "authorization_id", "amount_minor")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    authorization_id: str
    amount_minor: int
    def __init__(self, request_id: _Optional[str] = ..., authorization_id: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class VoidRequest(_message.Message):
    __slots__ = ("request_id", "authorization_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    authorization_id: str
    def __init__(self, request_id: _Optional[str] = ..., authorization_id: _Optional[str] = ...) -> None: ...

class RefundRequest(_message.Message):
    __slots__ = ("request_id", "authorization_id", "amount_minor")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    authorization_id: str
    amount_minor: int
    def __init__(self, request_id: _Optional[str] = ..., authorization_id: _Optional[str] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class ReverseRequest(_message.Message):
    __slots__ = ("request_id", "original_request_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    original_request_id: str
    def __init__(self, request_id: _Optional[str] = ..., original_request_id: _Optional[str] = ...) -> None: ...

class AuthorizeReply(_message.Message):
    __slots__ = ("result", "authorization_id", "approved_amount_minor", "available_minor", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZATION_ID_FIELD_NUMBER: _ClassVar[int]
    APPROVED_AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    authorization_id: str
    approved_amount_minor: int
    available_minor: int
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., authorization_id: _Optional[str] = ..., approved_amount_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetBalanceRequest(_message.Message):
    __slots__ = ("card_number",)
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    def __init__(self, card_number: _Optional[str] = ...) -> None: ...

class BalanceReply(_message.Message):
    __slots__ = ("result", "currency", "balance_minor", "held_minor", "available_minor", "status", "points")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    BALANCE_MINOR_FIELD_NUMBER: _ClassVar[int]
    HELD_MINOR_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    result: Result
    currency: str
    balance_minor: int
    held_minor: int
    available_minor: int
    status: CardStatus
    points: int
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., currency: _Optional[str] = ..., balance_minor: _Optional[int] = ..., held_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., status: _Optional[_Union[CardStatus, str]] = ..., points: _Optional[int] = ...) -> None: ...

class PosOperation(_message.Message):
    __slots__ = ("terminal_id", "authorize", "capture", "void", "refund", "reverse", "load")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    VOID_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    authorize: AuthorizeRequest
    capture: CaptureRequest
    void: VoidRequest
    refund: RefundRequest
    reverse: ReverseRequest
    load: LoadValueRequest
    def __init__(self, terminal_id: _Optional[str] = ..., authorize: _Optional[_Union[AuthorizeRequest, _Mapping]] = ..., capture: _Optional[_Union[CaptureRequest, _Mapping]] = ..., void: _Optional[_Union[VoidRequest, _Mapping]] = ..., refund: _Optional[_Union[RefundRequest, _Mapping]] = ..., reverse: _Optional[_Union[ReverseRequest, _Mapping]] = ..., load: _Optional[_Union[LoadValueRequest, _Mapping]] = ...) -> None: ...

class PosOperationReply(_message.Message):
    __slots__ = ("reply", "error")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    reply: AuthorizeReply
    error: str
    def __init__(self, reply: _Optional[_Union[AuthorizeReply, _Mapping]] = ..., error: _Optional[str] = ...) -> None: ...

class BatchRequest(_message.Message):
    __slots__ = ("operations",)
    OPERATIONS_FIELD_NUMBER: _ClassVar[int]
    operations: _containers.RepeatedCompositeFieldContainer[PosOperation]
    def __init__(self, operations: _Optional[_Iterable[_Union[PosOperation, _Mapping]]] = ...) -> None: ...

class BatchReply(_message.Message):
    __slots__ = ("replies",)
    REPLIES_FIELD_NUMBER: _ClassVar[int]
    replies: _containers.RepeatedCompositeFieldContainer[PosOperationReply]
    def __init__(self, replies: _Optional[_Iterable[_Union[PosOperationReply, _Mapping]]] = ...) -> None: ...
