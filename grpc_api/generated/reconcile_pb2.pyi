from . import pos_pb2 as _pos_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JournalRow(_message.Message):
    __slots__ = ("store_id", "reference", "type", "amount_minor", "currency")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    reference: str
    type: str
    amount_minor: int
    currency: str
    def __init__(self, store_id: _Optional[str] = ..., reference: _Optional[str] = ..., type: _Optional[str] = ..., amount_minor: _Optional[int] = ..., currency: _Optional[str] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("request_id", "partner_id", "period_id", "rows")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partner_id: str
    period_id: int
    rows: _containers.RepeatedCompositeFieldContainer[JournalRow]
    def __init__(self, request_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., period_id: _Optional[int] = ..., rows: _Optional[_Iterable[_Union[JournalRow, _Mapping]]] = ...) -> None: ...

class ReconciliationCounts(_message.Message):
    __slots__ = ("matched", "amount_mismatch", "missing_in_ledger", "missing_in_file", "duplicate_in_file", "duplicate_in_ledger")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MISMATCH_FIELD_NUMBER: _ClassVar[int]
    MISSING_IN_LEDGER_FIELD_NUMBER: _ClassVar[int]
    MISSING_IN_FILE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_IN_FILE_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_IN_LEDGER_FIELD_NUMBER: _ClassVar[int]
    matched: int
    amount_mismatch: int
    missing_in_ledger: int
    missing_in_file: int
    duplicate_in_file: int
    duplicate_in_ledger: int
    def __init__(self, matched: _Optional[int] = ..., amount_mismatch: _Optional[int] = ..., missing_in_ledger: _Optional[int] = ..., missing_in_file: _Optional[int] = ..., duplicate_in_file: _Optional[int] = ..., duplicate_in_ledger: _Optional[int] = ...) -> None: ...

class ReconciliationBreak(_message.Message):
    __slots__ = ("break_id", "match_class", "file_row", "ledger_row", "resolved", "resolution_reason")
    BREAK_ID_FIELD_NUMBER: _ClassVar[int]
    MATCH_CLASS_FIELD_NUMBER: _ClassVar[int]
    FILE_ROW_FIELD_NUMBER: _ClassVar[int]
    LEDGER_ROW_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_FIELD_NUMBER: _ClassVar[int]
    RESOLUTION_REASON_FIELD_NUMBER: _ClassVar[int]
    break_id: str
    match_class: str
    file_row: JournalRow
    ledger_row: JournalRow
    resolved: bool
    resolution_reason: str
    def __init__(self, break_id: _Optional[str] = ..., match_class: _Optional[str] = ..., file_row: _Optional[_Union[JournalRow, _Mapping]] = ..., ledger_row: _Optional[_Union[JournalRow, _Mapping]] = ..., resolved: _Optional[bool] = ..., resolution_reason: _Optional[str] = ...) -> None: ...

class ReconcileReply(_message.Message):
    __slots__ = ("result", "run_id", "repeat_of", "file_digest", "file_rows", "ledger_rows", "counts", "breaks", "breaks_omitted", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    REPEAT_OF_FIELD_NUMBER: _ClassVar[int]
    FILE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FILE_ROWS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_ROWS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    BREAKS_FIELD_NUMBER: _ClassVar[int]
    BREAKS_OMITTED_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: _pos_pb2.Result
    run_id: str
    repeat_of: str
    file_digest: str
    file_rows: int
    ledger_rows: int
    counts: ReconciliationCounts
    breaks: _containers.RepeatedCompositeFieldContainer[ReconciliationBreak]
    breaks_omitted: int
    replayed: bool
    def __init__(self, result: _Optional[_Union[_pos_pb2.Result, str]] = ..., run_id: _Optional[str] = ..., repeat_of: _Optional[str] = ..., file_digest: _Optional[str] = ..., file_rows: _Optional[int] = ..., ledger_rows: _Optional[int] = ..., counts: _Optional[_Union[ReconciliationCounts, _Mapping]] = ..., breaks: _Optional[_Iterable[_Union[ReconciliationBreak, _Mapping]]] = ..., breaks_omitted: _Optional[int] = ..., replayed: _Optional[bool] = ...) -> None: ...

class ResolveBreakRequest(_message.Message):
    __slots__ = ("request_id", "partner_id", "period_id", "break_id", "reason")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    BREAK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    partner_id: str
    period_id: int
    break_id: str
    reason: str
    def __init__(self, request_id: _Optional[str] = ..., partner_id: _Optional[str] = ..., period_id: _Optional[int] = ..., break_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class ResolveBreakReply(_message.Message):
    __slots__ = ("result", "replayed")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    REPLAYED_FIELD_NUMBER: _ClassVar[int]
    result: _pos_pb2.Result
    replayed: bool
    def __init__(self, result: _Optional[_Union[_pos_pb2.Result, str]] = ..., replayed: _Optional[bool] = ...) -> None: ...

class GetReconciliationRequest(_message.Message):
    __slots__ = ("partner_id", "period_id")
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    partner_id: str
    period_id: int
    def __init__(self, partner_id: _Optional[str] = ..., period_id: _Optional[int] = ...) -> None: ...

class ReconciliationRun(_message.Message):
    __slots__ = ("run_id", "file_digest", "file_rows", "ledger_rows", "counts", "repeat_of", "recorded_at", "credential_id")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    FILE_DIGEST_FIELD_NUMBER: _ClassVar[int]
    FILE_ROWS_FIELD_NUMBER: _ClassVar[int]
    LEDGER_ROWS_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    REPEAT_OF_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    file_digest: str
    file_rows: int
    ledger_rows: int
    counts: ReconciliationCounts
    repeat_of: str
    recorded_at: str
    credential_id: str
    def __init__(self, run_id: _Optional[str] = ..., file_digest: _Optional[str] = ..., file_rows: _Optional[int] = ..., ledger_rows: _Optional[int] = ..., counts: _Optional[_Union[ReconciliationCounts, _Mapping]] = ..., repeat_of: _Optional[str] = ..., recorded_at: _Optional[str] = ..., credential_id: _Optional[str] = ...) -> None: ...

class BreakResolution(_message.Message):
    __slots__ = ("break_id", "reason", "resolved_at", "credential_id")
    BREAK_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESOLVED_AT_FIELD_NUMBER: _ClassVar[int]
    CREDENTIAL_ID_FIELD_NUMBER: _ClassVar[int]
    break_id: str
    reason: str
    resolved_at: str
    credential_id: str
    def __init__(self, break_id: _Optional[str] = ..., reason: _Optional[str] = ..., resolved_at: _Optional[str] = ..., credential_id: _Optional[str] = ...) -> None: ...

class ReconciliationReply(_message.Message):
    __slots__ = ("runs", "open_breaks", "resolutions")
    RUNS_FIELD_NUMBER: _ClassVar[int]
    OPEN_BREAKS_FIELD_NUMBER: _ClassVar[int]
    RESOLUTIONS_FIELD_NUMBER: _ClassVar[int]
    runs: _containers.RepeatedCompositeFieldContainer[ReconciliationRun]
    open_breaks: _containers.RepeatedScalarFieldContainer[str]
    resolutions: _containers.RepeatedCompositeFieldContainer[BreakResolution]
    def __init__(self, runs: _Optional[_Iterable[_Union[ReconciliationRun, _Mapping]]] = ..., open_breaks: _Optional[_Iterable[str]] = ..., resolutions: _Optional[_Iterable[_Union[BreakResolution, _Mapping]]] = ...) -> None: ...

class ExportLedgerTotalsRequest(_message.Message):
    __slots__ = ("partner_id", "period_id")
    PARTNER_ID_FIELD_NUMBER: _ClassVar[int]
    PERIOD_ID_FIELD_NUMBER: _ClassVar[int]
    partner_id: str
    period_id: int
    def __init__(self, partner_id: _Optional[str] = ..., period_id: _Optional[int] = ...) -> None: ...

class LedgerDayTotal(_message.Message):
    __slots__ = ("store_id", "day", "type", "currency", "count", "amount_minor")
    STORE_ID_FIELD_NUMBER: _ClassVar[int]
    DAY_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    AMOUNT_MINOR_FIELD_NUMBER: _ClassVar[int]
    store_id: str
    day: str
    type: str
    currency: str
    count: int
    amount_minor: int
    def __init__(self, store_id: _Optional[str] = ..., day: _Optional[str] = ..., type: _Optional[str] = ..., currency: _Optional[str] = ..., count: _Optional[int] = ..., amount_minor: _Optional[int] = ...) -> None: ...

class ExportLedgerTotalsReply(_message.Message):
    __slots__ = ("totals",)
    TOTALS_FIELD_NUMBER: _ClassVar[int]
    totals: _containers.RepeatedCompositeFieldContainer[LedgerDayTotal]
    def __init__(self, totals: _Optional[_Iterable[_Union[LedgerDayTotal, _Mapping]]] = ...) -> None: ...
