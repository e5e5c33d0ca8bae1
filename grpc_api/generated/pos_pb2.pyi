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
    DECLINED_INSUFFICIENT_POINTS: _ClassVar[Result]
    DECLINED_NO_POINTS_PROGRAM: _ClassVar[Result]
    DECLINED_TENDER_EXCEEDS_DUE: _ClassVar[Result]
    DECLINED_PURCHASE_NOT_FOUND: _ClassVar[Result]
    DECLINED_RETURN_EXCEEDS_PURCHASE: _ClassVar[Result]
    DECLINED_COUPON_NOT_USABLE: _ClassVar[Result]
    DECLINED_REFUND_WINDOW_CLOSED: _ClassVar[Result]
    DECLINED_RETURN_WINDOW_CLOSED: _ClassVar[Result]
    DECLINED_NET_DEBIT_CAP: _ClassVar[Result]
    DECLINED_QUOTE_EXPIRED: _ClassVar[Result]
    DECLINED_QUOTE_USED: _ClassVar[Result]
    DECLINED_QUOTE_FOREIGN: _ClassVar[Result]
    DECLINED_EXCHANGE_LIMIT: _ClassVar[Result]
    DECLINED_NO_EXCHANGE_RATE: _ClassVar[Result]
    DECLINED_NO_AGREEMENT: _ClassVar[Result]

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

class CouponKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_KIND_UNSPECIFIED: _ClassVar[CouponKind]
    COUPON_VALUE: _ClassVar[CouponKind]
    COUPON_PERCENT: _ClassVar[CouponKind]

class CouponStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COUPON_STATUS_UNSPECIFIED: _ClassVar[CouponStatus]
    COUPON_ACTIVE: _ClassVar[CouponStatus]
    COUPON_USED: _ClassVar[CouponStatus]
    COUPON_EXPIRED: _ClassVar[CouponStatus]

class ExpiryKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NEVER: _ClassVar[ExpiryKind]
    MONTHS_AFTER: _ClassVar[ExpiryKind]
    END_OF_MONTH: _ClassVar[ExpiryKind]
    END_OF_YEAR: _ClassVar[ExpiryKind]

class ClawbackPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CLAWBACK_UNSPECIFIED: _ClassVar[ClawbackPolicy]
    WRITE_OFF: _ClassVar[ClawbackPolicy]
    POINTS_DEBT: _ClassVar[ClawbackPolicy]

class RuleEffect(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RULE_EFFECT_UNSPECIFIED: _ClassVar[RuleEffect]
    EARN: _ClassVar[RuleEffect]
    MULTIPLY: _ClassVar[RuleEffect]
    EXCLUDE: _ClassVar[RuleEffect]
    THRESHOLD_BONUS: _ClassVar[RuleEffect]
    CAP: _ClassVar[RuleEffect]
    DISCOUNT: _ClassVar[RuleEffect]
    STAMP: _ClassVar[RuleEffect]
    FIRST_PURCHASE_BONUS: _ClassVar[RuleEffect]

class Stacking(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STACKING_UNSPECIFIED: _ClassVar[Stacking]
    COMBINE: _ClassVar[Stacking]
    EXCLUSIVE: _ClassVar[Stacking]

class Rounding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROUNDING_UNSPECIFIED: _ClassVar[Rounding]
    FLOOR: _ClassVar[Rounding]
    HALF_UP: _ClassVar[Rounding]
    CEIL: _ClassVar[Rounding]
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
DECLINED_INSUFFICIENT_POINTS: Result
DECLINED_NO_POINTS_PROGRAM: Result
DECLINED_TENDER_EXCEEDS_DUE: Result
DECLINED_PURCHASE_NOT_FOUND: Result
DECLINED_RETURN_EXCEEDS_PURCHASE: Result
DECLINED_COUPON_NOT_USABLE: Result
DECLINED_REFUND_WINDOW_CLOSED: Result
DECLINED_RETURN_WINDOW_CLOSED: Result
DECLINED_NET_DEBIT_CAP: Result
DECLINED_QUOTE_EXPIRED: Result
DECLINED_QUOTE_USED: Result
DECLINED_QUOTE_FOREIGN: Result
DECLINED_EXCHANGE_LIMIT: Result
DECLINED_NO_EXCHANGE_RATE: Result
DECLINED_NO_AGREEMENT: Result
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
COUPON_KIND_UNSPECIFIED: CouponKind
COUPON_VALUE: CouponKind
COUPON_PERCENT: CouponKind
COUPON_STATUS_UNSPECIFIED: CouponStatus
COUPON_ACTIVE: CouponStatus
COUPON_USED: CouponStatus
COUPON_EXPIRED: CouponStatus
NEVER: ExpiryKind
MONTHS_AFTER: ExpiryKind
END_OF_MONTH: ExpiryKind
END_OF_YEAR: ExpiryKind
CLAWBACK_UNSPECIFIED: ClawbackPolicy
WRITE_OFF: ClawbackPolicy
POINTS_DEBT: ClawbackPolicy
RULE_EFFECT_UNSPECIFIED: RuleEffect
EARN: RuleEffect
MULTIPLY: RuleEffect
EXCLUDE: RuleEffect
THRESHOLD_BONUS: RuleEffect
CAP: RuleEffect
DISCOUNT: RuleEffect
STAMP: RuleEffect
FIRST_PURCHASE_BONUS: RuleEffect
STACKING_UNSPECIFIED: Stacking
COMBINE: Stacking
EXCLUSIVE: Stacking
ROUNDING_UNSPECIFIED: Rounding
FLOOR: Rounding
HALF_UP: Rounding
CEIL: Rounding

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
    __slots__ = ("card_number", "card_class", "status", "currency", "balance_minor", "held_minor", "available_minor", "issuing_partner_id", "issuing_store_id", "replaced_by", "points", "version", "tier", "purse_points", "purse_pending")
    class PursePointsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class PursePendingEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
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
    TIER_FIELD_NUMBER: _ClassVar[int]
    PURSE_POINTS_FIELD_NUMBER: _ClassVar[int]
    PURSE_PENDING_FIELD_NUMBER: _ClassVar[int]
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
    tier: str
    purse_points: _containers.ScalarMap[str, int]
    purse_pending: _containers.ScalarMap[str, int]
    def __init__(self, card_number: _Optional[str] = ..., card_class: _Optional[str] = ..., status: _Optional[_Union[CardStatus, str]] = ..., currency: _Optional[str] = ..., balance_minor: _Optional[int] = ..., held_minor: _Optional[int] = ..., available_minor: _Optional[int] = ..., issuing_partner_id: _Optional[str] = ..., issuing_store_id: _Optional[str] = ..., replaced_by: _Optional[str] = ..., points: _Optional[int] = ..., version: _Optional[int] = ..., tier: _Optional[str] = ..., purse_points: _Optional[_Mapping[str, int]] = ..., purse_pending: _Optional[_Mapping[str, int]] = ...) -> None: ...

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
    __slots__ = ("card_number", "as_of")
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    AS_OF_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    as_of: str
    def __init__(self, card_number: _Optional[str] = ..., as_of: _Optional[str] = ...) -> None: ...

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

class PurchaseLine(_message.Message):
    __slots__ = ("sku", "category", "quantity", "unit_price_minor", "margin_minor")
    SKU_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    UNIT_PRICE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MARGIN_MINOR_FIELD_NUMBER: _ClassVar[int]
    sku: str
    category: str
    quantity: int
    unit_price_minor: int
    margin_minor: int
    def __init__(self, sku: _Optional[str] = ..., category: _Optional[str] = ..., quantity: _Optional[int] = ..., unit_price_minor: _Optional[int] = ..., margin_minor: _Optional[int] = ...) -> None: ...

class PurchaseRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "currency", "lines", "stored_value_minor", "allow_partial", "points_to_redeem", "local_time", "receipt_ref", "coupon_codes", "override_token", "override_discount_minor", "override_reason", "stored_value_pays_rest", "redeem_program")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    ALLOW_PARTIAL_FIELD_NUMBER: _ClassVar[int]
    POINTS_TO_REDEEM_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    RECEIPT_REF_FIELD_NUMBER: _ClassVar[int]
    COUPON_CODES_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_REASON_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_PAYS_REST_FIELD_NUMBER: _ClassVar[int]
    REDEEM_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    currency: str
    lines: _containers.RepeatedCompositeFieldContainer[PurchaseLine]
    stored_value_minor: int
    allow_partial: bool
    points_to_redeem: int
    local_time: str
    receipt_ref: str
    coupon_codes: _containers.RepeatedScalarFieldContainer[str]
    override_token: str
    override_discount_minor: int
    override_reason: str
    stored_value_pays_rest: bool
    redeem_program: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., currency: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[PurchaseLine, _Mapping]]] = ..., stored_value_minor: _Optional[int] = ..., allow_partial: _Optional[bool] = ..., points_to_redeem: _Optional[int] = ..., local_time: _Optional[str] = ..., receipt_ref: _Optional[str] = ..., coupon_codes: _Optional[_Iterable[str]] = ..., override_token: _Optional[str] = ..., override_discount_minor: _Optional[int] = ..., override_reason: _Optional[str] = ..., stored_value_pays_rest: _Optional[bool] = ..., redeem_program: _Optional[str] = ...) -> None: ...

class SimulatePurchaseRequest(_message.Message):
    __slots__ = ("purchase", "store_id")
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    purchase: PurchaseRequest
    store_id: str
    def __init__(self, purchase: _Optional[_Union[PurchaseRequest, _Mapping]] = ..., store_id: _Optional[str] = ...) -> None: ...

class RuleAward(_message.Message):
    __slots__ = ("rule_set", "rule_id", "points", "discount_minor")
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    rule_set: str
    rule_id: str
    points: int
    discount_minor: int
    def __init__(self, rule_set: _Optional[str] = ..., rule_id: _Optional[str] = ..., points: _Optional[int] = ..., discount_minor: _Optional[int] = ...) -> None: ...

class PurchaseReply(_message.Message):
    __slots__ = ("result", "purchase_id", "total_minor", "discount_minor", "stored_value_charged_minor", "points_redeemed", "points_redeemed_value_minor", "other_tender_minor", "points_earned", "points_pending", "points_vest_at", "points_expire_at", "rule_sets", "explanation", "decline_reason", "stored_value_refunded_minor", "points_restored", "points_clawed_back", "points_written_off", "card", "replayed", "tier", "coupons_used", "coupons_issued", "coupon_discount_minor", "stamps", "override_discount_minor", "override_approved_by", "points_debt_added", "points_debt_settled", "points_redeemed_program")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    TOTAL_MINOR_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_CHARGED_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    OTHER_TENDER_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_EARNED_FIELD_NUMBER: _ClassVar[int]
    POINTS_PENDING_FIELD_NUMBER: _ClassVar[int]
    POINTS_VEST_AT_FIELD_NUMBER: _ClassVar[int]
    POINTS_EXPIRE_AT_FIELD_NUMBER: _ClassVar[int]
    RULE_SETS_FIELD_NUMBER: _ClassVar[int]
    EXPLANATION_FIELD_NUMBER: _ClassVar[int]
    DECLINE_REASON_FIELD_NUMBER: _ClassVar[int]
    STORED_VALUE_REFUNDED_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_RESTORED_FIELD_NUMBER: _ClassVar[int]
    POINTS_CLAWED_BACK_FIELD_NUMBER: _ClassVar[int]
    POINTS_WRITTEN_OFF_FIELD_NUMBER: _ClassVar[int]
    CARD_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    COUPONS_USED_FIELD_NUMBER: _ClassVar[int]
    COUPONS_ISSUED_FIELD_NUMBER: _ClassVar[int]
    COUPON_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    STAMPS_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    OVERRIDE_APPROVED_BY_FIELD_NUMBER: _ClassVar[int]
    POINTS_DEBT_ADDED_FIELD_NUMBER: _ClassVar[int]
    POINTS_DEBT_SETTLED_FIELD_NUMBER: _ClassVar[int]
    POINTS_REDEEMED_PROGRAM_FIELD_NUMBER: _ClassVar[int]
    result: Result
    purchase_id: str
    total_minor: int
    discount_minor: int
    stored_value_charged_minor: int
    points_redeemed: int
    points_redeemed_value_minor: int
    other_tender_minor: int
    points_earned: int
    points_pending: int
    points_vest_at: str
    points_expire_at: str
    rule_sets: _containers.RepeatedScalarFieldContainer[str]
    explanation: _containers.RepeatedCompositeFieldContainer[RuleAward]
    decline_reason: str
    stored_value_refunded_minor: int
    points_restored: int
    points_clawed_back: int
    points_written_off: int
    card: Card
    replayed: bool
    tier: str
    coupons_used: _containers.RepeatedCompositeFieldContainer[CouponUse]
    coupons_issued: _containers.RepeatedCompositeFieldContainer[Coupon]
    coupon_discount_minor: int
    stamps: _containers.RepeatedCompositeFieldContainer[StampProgress]
    override_discount_minor: int
    override_approved_by: str
    points_debt_added: int
    points_debt_settled: int
    points_redeemed_program: str
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., purchase_id: _Optional[str] = ..., total_minor: _Optional[int] = ..., discount_minor: _Optional[int] = ..., stored_value_charged_minor: _Optional[int] = ..., points_redeemed: _Optional[int] = ..., points_redeemed_value_minor: _Optional[int] = ..., other_tender_minor: _Optional[int] = ..., points_earned: _Optional[int] = ..., points_pending: _Optional[int] = ..., points_vest_at: _Optional[str] = ..., points_expire_at: _Optional[str] = ..., rule_sets: _Optional[_Iterable[str]] = ..., explanation: _Optional[_Iterable[_Union[RuleAward, _Mapping]]] = ..., decline_reason: _Optional[str] = ..., stored_value_refunded_minor: _Optional[int] = ..., points_restored: _Optional[int] = ..., points_clawed_back: _Optional[int] = ..., points_written_off: _Optional[int] = ..., card: _Optional[_Union[Card, _Mapping]] = ..., replayed: _Optional[bool] = ..., tier: _Optional[str] = ..., coupons_used: _Optional[_Iterable[_Union[CouponUse, _Mapping]]] = ..., coupons_issued: _Optional[_Iterable[_Union[Coupon, _Mapping]]] = ..., coupon_discount_minor: _Optional[int] = ..., stamps: _Optional[_Iterable[_Union[StampProgress, _Mapping]]] = ..., override_discount_minor: _Optional[int] = ..., override_approved_by: _Optional[str] = ..., points_debt_added: _Optional[int] = ..., points_debt_settled: _Optional[int] = ..., points_redeemed_program: _Optional[str] = ...) -> None: ...

class StampProgress(_message.Message):
    __slots__ = ("stamp_card", "before", "after", "needed", "free_units", "discount_minor")
    STAMP_CARD_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    NEEDED_FIELD_NUMBER: _ClassVar[int]
    FREE_UNITS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    stamp_card: str
    before: int
    after: int
    needed: int
    free_units: int
    discount_minor: int
    def __init__(self, stamp_card: _Optional[str] = ..., before: _Optional[int] = ..., after: _Optional[int] = ..., needed: _Optional[int] = ..., free_units: _Optional[int] = ..., discount_minor: _Optional[int] = ...) -> None: ...

class CouponUse(_message.Message):
    __slots__ = ("coupon_id", "amount_minor", "used_up")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    USED_UP_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    amount_minor: int
    used_up: bool
    def __init__(self, coupon_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., used_up: _Optional[bool] = ...) -> None: ...

class ReturnLine(_message.Message):
    __slots__ = ("line_index", "quantity")
    LINE_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUANTITY_FIELD_NUMBER: _ClassVar[int]
    line_index: int
    quantity: int
    def __init__(self, line_index: _Optional[int] = ..., quantity: _Optional[int] = ...) -> None: ...

class ReturnRequest(_message.Message):
    __slots__ = ("request_id", "purchase_id", "lines", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    purchase_id: str
    lines: _containers.RepeatedCompositeFieldContainer[ReturnLine]
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., purchase_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[ReturnLine, _Mapping]]] = ..., reason: _Optional[str] = ...) -> None: ...

class CouponCampaign(_message.Message):
    __slots__ = ("campaign_id", "owner", "currency", "kind", "value_minor", "percent_bp", "min_spend_minor", "valid_from", "valid_to", "stores", "categories", "partial_use", "restore_on_return", "funded_by")
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    STORES_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    PARTIAL_USE_FIELD_NUMBER: _ClassVar[int]
    RESTORE_ON_RETURN_FIELD_NUMBER: _ClassVar[int]
    FUNDED_BY_FIELD_NUMBER: _ClassVar[int]
    campaign_id: str
    owner: str
    currency: str
    kind: CouponKind
    value_minor: int
    percent_bp: int
    min_spend_minor: int
    valid_from: str
    valid_to: str
    stores: _containers.RepeatedScalarFieldContainer[str]
    categories: _containers.RepeatedScalarFieldContainer[str]
    partial_use: bool
    restore_on_return: bool
    funded_by: str
    def __init__(self, campaign_id: _Optional[str] = ..., owner: _Optional[str] = ..., currency: _Optional[str] = ..., kind: _Optional[_Union[CouponKind, str]] = ..., value_minor: _Optional[int] = ..., percent_bp: _Optional[int] = ..., min_spend_minor: _Optional[int] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., stores: _Optional[_Iterable[str]] = ..., categories: _Optional[_Iterable[str]] = ..., partial_use: _Optional[bool] = ..., restore_on_return: _Optional[bool] = ..., funded_by: _Optional[str] = ...) -> None: ...

class DefineCouponCampaignRequest(_message.Message):
    __slots__ = ("request_id", "campaign")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    campaign: CouponCampaign
    def __init__(self, request_id: _Optional[str] = ..., campaign: _Optional[_Union[CouponCampaign, _Mapping]] = ...) -> None: ...

class IssueCouponRequest(_message.Message):
    __slots__ = ("request_id", "card_number", "campaign_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    card_number: str
    campaign_id: str
    def __init__(self, request_id: _Optional[str] = ..., card_number: _Optional[str] = ..., campaign_id: _Optional[str] = ...) -> None: ...

class Coupon(_message.Message):
    __slots__ = ("coupon_id", "code", "campaign_id", "kind", "value_minor", "percent_bp", "remaining_minor", "status", "valid_from", "valid_to", "min_spend_minor", "funded_by")
    COUPON_ID_FIELD_NUMBER: _ClassVar[int]
    CODE_FIELD_NUMBER: _ClassVar[int]
    CAMPAIGN_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PERCENT_BP_FIELD_NUMBER: _ClassVar[int]
    REMAINING_MINOR_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEND_MINOR_FIELD_NUMBER: _ClassVar[int]
    FUNDED_BY_FIELD_NUMBER: _ClassVar[int]
    coupon_id: str
    code: str
    campaign_id: str
    kind: CouponKind
    value_minor: int
    percent_bp: int
    remaining_minor: int
    status: CouponStatus
    valid_from: str
    valid_to: str
    min_spend_minor: int
    funded_by: str
    def __init__(self, coupon_id: _Optional[str] = ..., code: _Optional[str] = ..., campaign_id: _Optional[str] = ..., kind: _Optional[_Union[CouponKind, str]] = ..., value_minor: _Optional[int] = ..., percent_bp: _Optional[int] = ..., remaining_minor: _Optional[int] = ..., status: _Optional[_Union[CouponStatus, str]] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., min_spend_minor: _Optional[int] = ..., funded_by: _Optional[str] = ...) -> None: ...

class CouponReply(_message.Message):
    __slots__ = ("result", "coupon", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    COUPON_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    coupon: Coupon
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., coupon: _Optional[_Union[Coupon, _Mapping]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ListCouponsRequest(_message.Message):
    __slots__ = ("card_number",)
    CARD_NUMBER_FIELD_NUMBER: _ClassVar[int]
    card_number: str
    def __init__(self, card_number: _Optional[str] = ...) -> None: ...

class ListCouponsReply(_message.Message):
    __slots__ = ("result", "coupons")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    COUPONS_FIELD_NUMBER: _ClassVar[int]
    result: Result
    coupons: _containers.RepeatedCompositeFieldContainer[Coupon]
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., coupons: _Optional[_Iterable[_Union[Coupon, _Mapping]]] = ...) -> None: ...

class DefineProgramRequest(_message.Message):
    __slots__ = ("request_id", "owner", "currency", "point_value_micros", "expiry_kind", "expiry_n", "timezone", "vesting_days", "tiers", "clawback")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OWNER_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    POINT_VALUE_MICROS_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_KIND_FIELD_NUMBER: _ClassVar[int]
    EXPIRY_N_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    VESTING_DAYS_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    CLAWBACK_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    owner: str
    currency: str
    point_value_micros: int
    expiry_kind: ExpiryKind
    expiry_n: int
    timezone: str
    vesting_days: int
    tiers: _containers.RepeatedCompositeFieldContainer[TierLevel]
    clawback: ClawbackPolicy
    def __init__(self, request_id: _Optional[str] = ..., owner: _Optional[str] = ..., currency: _Optional[str] = ..., point_value_micros: _Optional[int] = ..., expiry_kind: _Optional[_Union[ExpiryKind, str]] = ..., expiry_n: _Optional[int] = ..., timezone: _Optional[str] = ..., vesting_days: _Optional[int] = ..., tiers: _Optional[_Iterable[_Union[TierLevel, _Mapping]]] = ..., clawback: _Optional[_Union[ClawbackPolicy, str]] = ...) -> None: ...

class TierLevel(_message.Message):
    __slots__ = ("name", "threshold_minor")
    NAME_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    name: str
    threshold_minor: int
    def __init__(self, name: _Optional[str] = ..., threshold_minor: _Optional[int] = ...) -> None: ...

class Rule(_message.Message):
    __slots__ = ("rule_id", "effect", "categories", "skus", "card_classes", "tiers", "weekdays", "minute_from", "minute_to", "rate_num", "rate_den", "rounding", "multiplier_bp", "stacking", "priority", "threshold_minor", "points", "discount_bp", "coupon_campaign", "stamps_needed", "cap_period")
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    EFFECT_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    SKUS_FIELD_NUMBER: _ClassVar[int]
    CARD_CLASSES_FIELD_NUMBER: _ClassVar[int]
    TIERS_FIELD_NUMBER: _ClassVar[int]
    WEEKDAYS_FIELD_NUMBER: _ClassVar[int]
    MINUTE_FROM_FIELD_NUMBER: _ClassVar[int]
    MINUTE_TO_FIELD_NUMBER: _ClassVar[int]
    RATE_NUM_FIELD_NUMBER: _ClassVar[int]
    RATE_DEN_FIELD_NUMBER: _ClassVar[int]
    ROUNDING_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_BP_FIELD_NUMBER: _ClassVar[int]
    STACKING_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_MINOR_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    DISCOUNT_BP_FIELD_NUMBER: _ClassVar[int]
    COUPON_CAMPAIGN_FIELD_NUMBER: _ClassVar[int]
    STAMPS_NEEDED_FIELD_NUMBER: _ClassVar[int]
    CAP_PERIOD_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    effect: RuleEffect
    categories: _containers.RepeatedScalarFieldContainer[str]
    skus: _containers.RepeatedScalarFieldContainer[str]
    card_classes: _containers.RepeatedScalarFieldContainer[str]
    tiers: _containers.RepeatedScalarFieldContainer[str]
    weekdays: _containers.RepeatedScalarFieldContainer[int]
    minute_from: int
    minute_to: int
    rate_num: int
    rate_den: int
    rounding: Rounding
    multiplier_bp: int
    stacking: Stacking
    priority: int
    threshold_minor: int
    points: int
    discount_bp: int
    coupon_campaign: str
    stamps_needed: int
    cap_period: str
    def __init__(self, rule_id: _Optional[str] = ..., effect: _Optional[_Union[RuleEffect, str]] = ..., categories: _Optional[_Iterable[str]] = ..., skus: _Optional[_Iterable[str]] = ..., card_classes: _Optional[_Iterable[str]] = ..., tiers: _Optional[_Iterable[str]] = ..., weekdays: _Optional[_Iterable[int]] = ..., minute_from: _Optional[int] = ..., minute_to: _Optional[int] = ..., rate_num: _Optional[int] = ..., rate_den: _Optional[int] = ..., rounding: _Optional[_Union[Rounding, str]] = ..., multiplier_bp: _Optional[int] = ..., stacking: _Optional[_Union[Stacking, str]] = ..., priority: _Optional[int] = ..., threshold_minor: _Optional[int] = ..., points: _Optional[int] = ..., discount_bp: _Optional[int] = ..., coupon_campaign: _Optional[str] = ..., stamps_needed: _Optional[int] = ..., cap_period: _Optional[str] = ...) -> None: ...

class RuleSet(_message.Message):
    __slots__ = ("rule_set_id", "version", "scope", "valid_from", "valid_to", "rules")
    RULE_SET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    VALID_TO_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    rule_set_id: str
    version: int
    scope: str
    valid_from: str
    valid_to: str
    rules: _containers.RepeatedCompositeFieldContainer[Rule]
    def __init__(self, rule_set_id: _Optional[str] = ..., version: _Optional[int] = ..., scope: _Optional[str] = ..., valid_from: _Optional[str] = ..., valid_to: _Optional[str] = ..., rules: _Optional[_Iterable[_Union[Rule, _Mapping]]] = ...) -> None: ...

class PublishRuleSetRequest(_message.Message):
    __slots__ = ("request_id", "rule_set")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    rule_set: RuleSet
    def __init__(self, request_id: _Optional[str] = ..., rule_set: _Optional[_Union[RuleSet, _Mapping]] = ...) -> None: ...

class GetRuleSetRequest(_message.Message):
    __slots__ = ("rule_set_id", "version")
    RULE_SET_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    rule_set_id: str
    version: int
    def __init__(self, rule_set_id: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class RuleSetReply(_message.Message):
    __slots__ = ("rule_set",)
    RULE_SET_FIELD_NUMBER: _ClassVar[int]
    rule_set: RuleSet
    def __init__(self, rule_set: _Optional[_Union[RuleSet, _Mapping]] = ...) -> None: ...

class ListRuleSetsRequest(_message.Message):
    __slots__ = ("scope",)
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    scope: str
    def __init__(self, scope: _Optional[str] = ...) -> None: ...

class ListRuleSetsReply(_message.Message):
    __slots__ = ("rule_sets",)
    RULE_SETS_FIELD_NUMBER: _ClassVar[int]
    rule_sets: _containers.RepeatedCompositeFieldContainer[RuleSet]
    def __init__(self, rule_sets: _Optional[_Iterable[_Union[RuleSet, _Mapping]]] = ...) -> None: ...

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
    __slots__ = ("terminal_id", "authorize", "capture", "void", "refund", "reverse", "load", "purchase", "purchase_return", "issue")
    TERMINAL_ID_FIELD_NUMBER: _ClassVar[int]
    AUTHORIZE_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_FIELD_NUMBER: _ClassVar[int]
    VOID_FIELD_NUMBER: _ClassVar[int]
    REFUND_FIELD_NUMBER: _ClassVar[int]
    REVERSE_FIELD_NUMBER: _ClassVar[int]
    LOAD_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_RETURN_FIELD_NUMBER: _ClassVar[int]
    ISSUE_FIELD_NUMBER: _ClassVar[int]
    terminal_id: str
    authorize: AuthorizeRequest
    capture: CaptureRequest
    void: VoidRequest
    refund: RefundRequest
    reverse: ReverseRequest
    load: LoadValueRequest
    purchase: PurchaseRequest
    purchase_return: ReturnRequest
    issue: IssueCardRequest
    def __init__(self, terminal_id: _Optional[str] = ..., authorize: _Optional[_Union[AuthorizeRequest, _Mapping]] = ..., capture: _Optional[_Union[CaptureRequest, _Mapping]] = ..., void: _Optional[_Union[VoidRequest, _Mapping]] = ..., refund: _Optional[_Union[RefundRequest, _Mapping]] = ..., reverse: _Optional[_Union[ReverseRequest, _Mapping]] = ..., load: _Optional[_Union[LoadValueRequest, _Mapping]] = ..., purchase: _Optional[_Union[PurchaseRequest, _Mapping]] = ..., purchase_return: _Optional[_Union[ReturnRequest, _Mapping]] = ..., issue: _Optional[_Union[IssueCardRequest, _Mapping]] = ...) -> None: ...

class PosOperationReply(_message.Message):
    __slots__ = ("reply", "error", "purchase", "issue")
    REPLY_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    PURCHASE_FIELD_NUMBER: _ClassVar[int]
    ISSUE_FIELD_NUMBER: _ClassVar[int]
    reply: AuthorizeReply
    error: str
    purchase: PurchaseReply
    issue: CardReply
    def __init__(self, reply: _Optional[_Union[AuthorizeReply, _Mapping]] = ..., error: _Optional[str] = ..., purchase: _Optional[_Union[PurchaseReply, _Mapping]] = ..., issue: _Optional[_Union[CardReply, _Mapping]] = ...) -> None: ...

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

class CloseSettlementPeriodRequest(_message.Message):
    __slots__ = ("request_id", "note")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    note: str
    def __init__(self, request_id: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class CloseSettlementPeriodReply(_message.Message):
    __slots__ = ("result", "period_id", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    period_id: int
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., period_id: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetSettlementStatementRequest(_message.Message):
    __slots__ = ("period_id", "entity_id")
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    period_id: int
    entity_id: str
    def __init__(self, period_id: _Optional[int] = ..., entity_id: _Optional[str] = ...) -> None: ...

class SettlementLine(_message.Message):
    __slots__ = ("counterparty_id", "category", "receivable_minor", "payable_minor")
    COUNTERPARTY_ID_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    RECEIVABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    counterparty_id: str
    category: str
    receivable_minor: int
    payable_minor: int
    def __init__(self, counterparty_id: _Optional[str] = ..., category: _Optional[str] = ..., receivable_minor: _Optional[int] = ..., payable_minor: _Optional[int] = ...) -> None: ...

class BilateralNet(_message.Message):
    __slots__ = ("counterparty_id", "receivable_minor", "payable_minor", "net_minor")
    COUNTERPARTY_ID_FIELD_NUMBER: _ClassVar[int]
    RECEIVABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    NET_MINOR_FIELD_NUMBER: _ClassVar[int]
    counterparty_id: str
    receivable_minor: int
    payable_minor: int
    net_minor: int
    def __init__(self, counterparty_id: _Optional[str] = ..., receivable_minor: _Optional[int] = ..., payable_minor: _Optional[int] = ..., net_minor: _Optional[int] = ...) -> None: ...

class EntityStatement(_message.Message):
    __slots__ = ("currency", "entity_id", "lines", "bilateral", "gross_receivable_minor", "gross_payable_minor", "multilateral_net_minor")
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    LINES_FIELD_NUMBER: _ClassVar[int]
    BILATERAL_FIELD_NUMBER: _ClassVar[int]
    GROSS_RECEIVABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    GROSS_PAYABLE_MINOR_FIELD_NUMBER: _ClassVar[int]
    MULTILATERAL_NET_MINOR_FIELD_NUMBER: _ClassVar[int]
    currency: str
    entity_id: str
    lines: _containers.RepeatedCompositeFieldContainer[SettlementLine]
    bilateral: _containers.RepeatedCompositeFieldContainer[BilateralNet]
    gross_receivable_minor: int
    gross_payable_minor: int
    multilateral_net_minor: int
    def __init__(self, currency: _Optional[str] = ..., entity_id: _Optional[str] = ..., lines: _Optional[_Iterable[_Union[SettlementLine, _Mapping]]] = ..., bilateral: _Optional[_Iterable[_Union[BilateralNet, _Mapping]]] = ..., gross_receivable_minor: _Optional[int] = ..., gross_payable_minor: _Optional[int] = ..., multilateral_net_minor: _Optional[int] = ...) -> None: ...

class SettlementInstruction(_message.Message):
    __slots__ = ("instruction_id", "currency", "payer_id", "payee_id", "instrument", "amount_minor", "paid_minor", "outstanding_minor", "payment_references")
    INSTRUCTION_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PAYER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYEE_ID_FIELD_NUMBER: _ClassVar[int]
    INSTRUMENT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAID_MINOR_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    PAYMENT_REFERENCES_FIELD_NUMBER: _ClassVar[int]
    instruction_id: str
    currency: str
    payer_id: str
    payee_id: str
    instrument: str
    amount_minor: int
    paid_minor: int
    outstanding_minor: int
    payment_references: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, instruction_id: _Optional[str] = ..., currency: _Optional[str] = ..., payer_id: _Optional[str] = ..., payee_id: _Optional[str] = ..., instrument: _Optional[str] = ..., amount_minor: _Optional[int] = ..., paid_minor: _Optional[int] = ..., outstanding_minor: _Optional[int] = ..., payment_references: _Optional[_Iterable[str]] = ...) -> None: ...

class SettlementStatementReply(_message.Message):
    __slots__ = ("period_id", "closed", "digest", "statements", "instructions")
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    CLOSED_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    STATEMENTS_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTIONS_FIELD_NUMBER: _ClassVar[int]
    period_id: int
    closed: bool
    digest: str
    statements: _containers.RepeatedCompositeFieldContainer[EntityStatement]
    instructions: _containers.RepeatedCompositeFieldContainer[SettlementInstruction]
    def __init__(self, period_id: _Optional[int] = ..., closed: _Optional[bool] = ..., digest: _Optional[str] = ..., statements: _Optional[_Iterable[_Union[EntityStatement, _Mapping]]] = ..., instructions: _Optional[_Iterable[_Union[SettlementInstruction, _Mapping]]] = ...) -> None: ...

class RecordSettlementPaymentRequest(_message.Message):
    __slots__ = ("request_id", "period_id", "currency", "payer_id", "payee_id", "amount_minor", "reference")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    PAYER_ID_FIELD_NUMBER: _ClassVar[int]
    PAYEE_ID_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    period_id: int
    currency: str
    payer_id: str
    payee_id: str
    amount_minor: int
    reference: str
    def __init__(self, request_id: _Optional[str] = ..., period_id: _Optional[int] = ..., currency: _Optional[str] = ..., payer_id: _Optional[str] = ..., payee_id: _Optional[str] = ..., amount_minor: _Optional[int] = ..., reference: _Optional[str] = ...) -> None: ...

class RecordSettlementPaymentReply(_message.Message):
    __slots__ = ("result", "paid_minor", "outstanding_minor", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PAID_MINOR_FIELD_NUMBER: _ClassVar[int]
    OUTSTANDING_MINOR_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: Result
    paid_minor: int
    outstanding_minor: int
    replayed: bool
    def __init__(self, result: _Optional[_Union[Result, str]] = ..., paid_minor: _Optional[int] = ..., outstanding_minor: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...
