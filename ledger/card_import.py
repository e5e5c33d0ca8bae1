"""Bulk import of cards from a card file (issue 12), in process, through the writer: the same
IssueCard and LoadValue commands, checks, events and request keys as the gRPC calls, decided
in batches. `loyalty-ledger import-cards` (entrypoints/cli.py) is the command around it.

The card file: CSV, UTF-8, a header line naming the columns (any order):

    card_number     required  12..19 digits, Luhn-valid: a token, never a PAN or personal data
    card_class      required  1..32 of [A-Z0-9_], e.g. STANDARD
    currency        required  ISO 4217, e.g. USD
    customer_ref    optional  pseudonymous customer id (no personal data), up to 64 characters
    issuing_store_id optional the store issuing the card (default: the command's --store, else
                              the importing credential's store)
    amount_minor    optional  an initial load in minor units (empty = no load)
    payment_ref     with amount_minor: the external payment that funded the load

Idempotent when run again: each line's requests carry ids derived from its card number
(`import:<card number>` for the issue, `import-load:<card number>` for its load), in the
importing credential's key space, so a rerun after a crash replays what was done (nothing is
applied twice) and does the rest. A card number repeated in the file is an error on the later
line; a line changed between runs gets DUPLICATE_REQUEST_MISMATCH. A line's load is sent only
once its issue is approved (now or by an earlier run): a card that already existed (issued by
someone else) is never loaded by the file.
"""

from __future__ import annotations

import collections
import contextlib
import csv
import gc
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from domain.cards import commands as cc
from domain.common import InvalidInput, Result, shown
from ledger import limits
from ledger.codec import Outcome
from ledger.engine import Ledger
from ledger.refusals import Failure
from ledger.work import Request

COLUMNS = ("card_number", "card_class", "currency", "customer_ref", "issuing_store_id",
           "amount_minor", "payment_ref")
REQUIRED = ("card_number", "card_class", "currency")


class FileFormatError(ValueError):
    """The file as a whole cannot be read (its header): nothing is imported."""


@dataclass(slots=True)
class CardLine:
    line: int
    issue: cc.IssueCard
    load: cc.LoadValue | None


@dataclass(slots=True)
class LineError:
    line: int
    message: str  # "field: problem", or what the ledger refused


def issue_request_id(card_number: str) -> str:
    return "import:" + card_number


def load_request_id(card_number: str) -> str:
    return "import-load:" + card_number


def parse(lines: Iterable[str], default_store: str = "") -> Iterator[CardLine | LineError]:
    """The file's lines, checked as the gRPC servicers check IssueCard and LoadValue (the
    message names the field). Raises FileFormatError for a bad header."""
    reader = csv.reader(iter(lines), strict=True)
    try:
        header = [name.strip() for name in next(reader)]
    except StopIteration:
        raise FileFormatError("line 1: the file is empty (a header line is required: "
                              f"{','.join(COLUMNS)})") from None
    except csv.Error as error:
        raise FileFormatError(f"line 1: {error}") from None
    unknown = [name for name in header if name not in COLUMNS]
    if unknown:
        raise FileFormatError(f"line 1: unknown column {shown(unknown[0])} (columns: "
                              f"{', '.join(COLUMNS)})")
    missing = [name for name in REQUIRED if name not in header]
    if missing:
        raise FileFormatError(f"line 1: the header has no {missing[0]} column")
    repeated = [name for name in header if header.count(name) > 1]
    if repeated:
        raise FileFormatError(f"line 1: column {repeated[0]} appears twice")
    position = {name: header.index(name) for name in header}
    seen: dict[str, int] = {}
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            yield LineError(start, f"not CSV: {error}")
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # a blank line
        if len(row) != len(header):
            yield LineError(start, f"{len(row)} fields where the header has {len(header)}")
            continue
        parsed = _line(start, row, position, default_store)
        if isinstance(parsed, CardLine):
            earlier = seen.setdefault(parsed.issue.card_number, start)
            if earlier != start:
                parsed = LineError(start, f"card_number: repeats line {earlier}")
        yield parsed


def _line(line: int, row: list[str], position: dict[str, int],
          default_store: str) -> CardLine | LineError:
    def value(name: str) -> str:
        index = position.get(name)
        return row[index].strip() if index is not None else ""

    try:
        number = value("card_number")
        if not number:
            raise InvalidInput("card_number", "is required")
        issue = cc.IssueCard(number, value("card_class"), value("currency"),
                             value("customer_ref"), value("issuing_store_id") or default_store)
        issue.validate()
        load = None
        amount = value("amount_minor")
        if amount:
            try:
                amount_minor = int(amount)
            except ValueError:
                raise InvalidInput("amount_minor", f"not an integer: {shown(amount)}") from None
            load = cc.LoadValue(number, amount_minor, issue.currency, value("payment_ref"))
            load.validate()
        elif value("payment_ref"):
            raise InvalidInput("payment_ref", "given without amount_minor")
    except InvalidInput as error:
        return LineError(line, str(error))
    return CardLine(line, issue, load)


@dataclass
class Summary:
    lines: int = 0  # card lines read (not the header, not blank lines)
    issued: int = 0  # issued by this run
    issued_before: int = 0  # issued by an earlier run of this file (replayed)
    loaded: int = 0
    loaded_before: int = 0
    loaded_minor: int = 0  # what this run loaded, in minor units of each card's currency
    already_existed: list[int] = field(default_factory=list)  # line numbers
    declined: list[tuple[int, str]] = field(default_factory=list)  # (line, result)
    errors: list[LineError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.already_existed or self.declined or self.errors)


class _Replies:
    """Replies of one chunk's requests, filled by the writer's threads."""

    def __init__(self, count: int) -> None:
        self.replies: list[Outcome | Failure | None] = [None] * count
        self._left = count
        self._lock = threading.Lock()
        self._done = threading.Event()
        if count == 0:
            self._done.set()

    def callback(self, index: int) -> Callable[[Outcome | Failure], None]:
        def done(reply: Outcome | Failure) -> None:
            self.replies[index] = reply
            with self._lock:
                self._left -= 1
                last = self._left == 0
            if last:
                self._done.set()
        return done

    def wait(self, timeout_s: float) -> list[Outcome | Failure | None]:
        if not self._done.wait(timeout_s):
            raise TimeoutError(f"the writer did not answer within {timeout_s:g} s")
        return self.replies


@dataclass
class _Chunk:
    lines: list[CardLine]
    issues: _Replies
    loads: list[CardLine] = field(default_factory=list)
    load_replies: _Replies | None = None


class Importer:
    """Feeds the writer chunk after chunk, a few chunks in flight so that the writer decides
    one while the previous one commits; each chunk's loads follow its issues' replies."""

    def __init__(self, ledger: Ledger, credential_id: str,
                 progress: Callable[[int], None] | None = None,  # the file line reached
                 chunk_lines: int = limits.IMPORT_CHUNK_LINES,
                 chunks_in_flight: int = limits.IMPORT_CHUNKS_IN_FLIGHT) -> None:
        self.ledger = ledger
        self.credential_id = credential_id
        self.progress = progress
        self.chunk_lines = chunk_lines
        self.chunks_in_flight = chunks_in_flight
        self.summary = Summary()

    def run(self, items: Iterable[CardLine | LineError]) -> Summary:
        in_flight: collections.deque[_Chunk] = collections.deque()
        pending: list[CardLine] = []
        for item in items:
            self.summary.lines += 1
            if isinstance(item, LineError):
                self.summary.errors.append(item)
                continue
            pending.append(item)
            if len(pending) >= self.chunk_lines:
                in_flight.append(self._submit_issues(pending))
                pending = []
                while len(in_flight) > self.chunks_in_flight:
                    self._advance(in_flight)
        if pending:
            in_flight.append(self._submit_issues(pending))
        while in_flight:
            self._advance(in_flight)
        self.summary.errors.sort(key=lambda e: e.line)
        self.summary.declined.sort()
        self.summary.already_existed.sort()
        return self.summary

    def _submit(self, commands: list[tuple[Any, str]]) -> _Replies:
        replies = _Replies(len(commands))
        deadline = time.monotonic() + limits.IMPORT_REPLY_WAIT_S
        for index, (command, request_id) in enumerate(commands):
            self.ledger.submit(Request(self.credential_id, command, replies.callback(index),
                                       "", request_id, "", deadline))
        return replies

    def _submit_issues(self, lines: list[CardLine]) -> _Chunk:
        return _Chunk(lines, self._submit(
            [(line.issue, issue_request_id(line.issue.card_number)) for line in lines]))

    def _advance(self, in_flight: collections.deque[_Chunk]) -> None:
        """Move the oldest chunk on: its issues answered, its loads sent; or its loads
        answered, and it is done."""
        chunk = in_flight[0]
        if chunk.load_replies is None:
            replies = chunk.issues.wait(limits.IMPORT_REPLY_WAIT_S + 5)
            for line, reply in zip(chunk.lines, replies, strict=True):
                if self._issued(line, reply) and line.load is not None:
                    chunk.loads.append(line)
            chunk.load_replies = self._submit(
                [(line.load, load_request_id(line.issue.card_number)) for line in chunk.loads])
            if chunk.loads:
                return  # answered later, while the next chunks' issues are decided
        replies = chunk.load_replies.wait(limits.IMPORT_REPLY_WAIT_S + 5)
        for line, reply in zip(chunk.loads, replies, strict=True):
            self._loaded(line, reply)
        in_flight.popleft()
        if self.progress is not None:
            self.progress(chunk.lines[-1].line)

    def _issued(self, line: CardLine, reply: Outcome | Failure | None) -> bool:
        summary = self.summary
        if not isinstance(reply, Outcome):
            summary.errors.append(_refused(line.line, "issue", reply))
            return False
        if reply.result == Result.APPROVED:
            if reply.replayed:
                summary.issued_before += 1
            else:
                summary.issued += 1
            return True
        if reply.result == Result.DECLINED_CARD_EXISTS:
            summary.already_existed.append(line.line)
        else:
            summary.declined.append((line.line, f"issue {Result(reply.result).name}"))
        return False

    def _loaded(self, line: CardLine, reply: Outcome | Failure | None) -> None:
        summary = self.summary
        if not isinstance(reply, Outcome):
            summary.errors.append(_refused(line.line, "load", reply))
        elif reply.result != Result.APPROVED:
            summary.declined.append((line.line, f"load {Result(reply.result).name}"))
        elif reply.replayed:
            summary.loaded_before += 1
        else:
            summary.loaded += 1
            summary.loaded_minor += line.load.amount_minor if line.load else 0


def _refused(line: int, what: str, reply: Failure | None) -> LineError:
    if reply is None:
        return LineError(line, f"{what}: no reply")
    return LineError(line, f"{what} refused ({reply.code.name}): {reply.message}")


def import_cards(ledger: Ledger, credential_id: str, lines: Iterable[str],
                 default_store: str = "",
                 progress: Callable[[int], None] | None = None) -> Summary:
    """Parse and import a card file's lines (raises FileFormatError for a bad header)."""
    items = parse(lines, default_store)
    first = next(items, None)  # the header is checked before anything is sent
    chained: Iterable[CardLine | LineError] = (
        () if first is None else _prepend(first, items))
    return Importer(ledger, credential_id, progress).run(chained)


def _prepend(first: CardLine | LineError,
             rest: Iterator[CardLine | LineError]) -> Iterator[CardLine | LineError]:
    yield first
    yield from rest


@contextlib.contextmanager
def collecting_less() -> Iterator[None]:
    """The import's garbage-collector setting (limits.IMPORT_GC_THRESHOLDS: why), restored on
    exit: what exists at the start is frozen (never scanned again), and the collector runs
    far less often."""
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*limits.IMPORT_GC_THRESHOLDS)
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
