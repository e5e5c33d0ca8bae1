from . import pos_pb2 as _pos_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CommissionPayer(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMMISSION_PAYER_UNSPECIFIED: _ClassVar[CommissionPayer]
    ISSUER: _ClassVar[CommissionPayer]
    ACQUIRER: _ClassVar[CommissionPayer]
COMMISSION_PAYER_UNSPECIFIED: CommissionPayer
ISSUER: CommissionPayer
ACQUIRER: CommissionPayer

class Agreement(_message.Message):
    __slots__ = ("agreement_id", "version", "valid_from", "entity_a", "entity_b", "sv_commission_bps", "commission_paid_by", "points_reimbursement_micros", "points_price_micros", "points_billing_bps", "exchange_fee_bps", "exchange_fee_earner", "voucher_share_bps", "net_debit_cap_minor", "cap_currency")
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    VALID_FROM_FIELD_NUMBER: _ClassVar[int]
    ENTITY_A_FIELD_NUMBER: _ClassVar[int]
    ENTITY_B_FIELD_NUMBER: _ClassVar[int]
    SV_COMMISSION_BPS_FIELD_NUMBER: _ClassVar[int]
    COMMISSION_PAID_BY_FIELD_NUMBER: _ClassVar[int]
    POINTS_REIMBURSEMENT_MICROS_FIELD_NUMBER: _ClassVar[int]
    POINTS_PRICE_MICROS_FIELD_NUMBER: _ClassVar[int]
    POINTS_BILLING_BPS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FEE_EARNER_FIELD_NUMBER: _ClassVar[int]
    VOUCHER_SHARE_BPS_FIELD_NUMBER: _ClassVar[int]
    NET_DEBIT_CAP_MINOR_FIELD_NUMBER: _ClassVar[int]
    CAP_CURRENCY_FIELD_NUMBER: _ClassVar[int]
    agreement_id: str
    version: int
    valid_from: str
    entity_a: str
    entity_b: str
    sv_commission_bps: int
    commission_paid_by: CommissionPayer
    points_reimbursement_micros: int
    points_price_micros: int
    points_billing_bps: int
    exchange_fee_bps: int
    exchange_fee_earner: str
    voucher_share_bps: int
    net_debit_cap_minor: int
    cap_currency: str
    def __init__(self, agreement_id: _Optional[str] = ..., version: _Optional[int] = ..., valid_from: _Optional[str] = ..., entity_a: _Optional[str] = ..., entity_b: _Optional[str] = ..., sv_commission_bps: _Optional[int] = ..., commission_paid_by: _Optional[_Union[CommissionPayer, str]] = ..., points_reimbursement_micros: _Optional[int] = ..., points_price_micros: _Optional[int] = ..., points_billing_bps: _Optional[int] = ..., exchange_fee_bps: _Optional[int] = ..., exchange_fee_earner: _Optional[str] = ..., voucher_share_bps: _Optional[int] = ..., net_debit_cap_minor: _Optional[int] = ..., cap_currency: _Optional[str] = ...) -> None: ...

class PublishAgreementRequest(_message.Message):
    __slots__ = ("request_id", "agreement")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    AGREEMENT_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    agreement: Agreement
    def __init__(self, request_id: _Optional[str] = ..., agreement: _Optional[_Union[Agreement, _Mapping]] = ...) -> None: ...

class RegisterStoreEntityRequest(_message.Message):
    __slots__ = ("request_id", "store_id")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    store_id: str
    def __init__(self, request_id: _Optional[str] = ..., store_id: _Optional[str] = ...) -> None: ...

class ListAgreementsRequest(_message.Message):
    __slots__ = ("agreement_id",)
    AGREEMENT_ID_FIELD_NUMBER: _ClassVar[int]
    agreement_id: str
    def __init__(self, agreement_id: _Optional[str] = ...) -> None: ...

class AccountingEntity(_message.Message):
    __slots__ = ("entity_id", "kind")
    ENTITY_ID_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    entity_id: str
    kind: str
    def __init__(self, entity_id: _Optional[str] = ..., kind: _Optional[str] = ...) -> None: ...

class ListAgreementsReply(_message.Message):
    __slots__ = ("agreements", "entities")
    AGREEMENTS_FIELD_NUMBER: _ClassVar[int]
    ENTITIES_FIELD_NUMBER: _ClassVar[int]
    agreements: _containers.RepeatedCompositeFieldContainer[Agreement]
    entities: _containers.RepeatedCompositeFieldContainer[AccountingEntity]
    def __init__(self, agreements: _Optional[_Iterable[_Union[Agreement, _Mapping]]] = ..., entities: _Optional[_Iterable[_Union[AccountingEntity, _Mapping]]] = ...) -> None: ...
