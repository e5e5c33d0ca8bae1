"""A partner's POS journal: the rows it hands in for a settlement period, and their checks.

The file is CSV, UTF-8, with a header line naming these columns, in any order, and no others:

    store_id      the partner's store (an id of the registry: 1..32 of [A-Za-z0-9_-])
    reference     the request id the till sent the ledger for the movement (1..64 printable
                  ASCII characters, no spaces): the ledger records no receipt number, and a
                  till that keeps its request id on the receipt has both
    type          a movement kind that settles value at a till (TYPES below, the names
                  ListMovements shows); holds (AUTHORIZED, VOIDED, REVERSED, EXPIRED) move no
                  settled value and are not reconciled
    amount_minor  the stored value moved, an integer number of minor units >= 0, no sign, no
                  decimal point (a refund is a REFUNDED row of a positive amount)
    currency      ISO 4217 (the card's currency)

Blank lines are skipped. Every bad value is an InvalidInput naming the line and the column
(`line 7: amount_minor: must not be negative, not '-5'`), or over gRPC the row and the field
(`rows[6].amount_minor: ...`).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Iterable

import msgspec

from domain.common import AMOUNT_MAX_MINOR, ID_PATTERN, REQUEST_ID_PATTERN, InvalidInput, shown
from domain.currency import EXPONENTS

COLUMNS = ("store_id", "reference", "type", "amount_minor", "currency")
# The movement kinds (projections/movements.py::KINDS) that change a card's balance at a till:
# what a POS journal records and settlement sums.
TYPES = ("LOADED", "LOAD_REVERSED", "CAPTURED", "CAPTURE_REVERSED", "REFUNDED", "PURCHASE",
         "RETURN")
HOLD_KINDS = ("AUTHORIZED", "VOIDED", "REVERSED", "EXPIRED")
FILE_BYTES_MAX = 64 * 1024 * 1024  # 1,000,000 rows of ~60 bytes fit; a larger file is refused


class JournalRow(msgspec.Struct, frozen=True, array_like=True, order=True):
    """One movement as the partner recorded it, or as the ledger recorded it. Ordered (for a
    canonical order) by its fields in this order."""

    store_id: str
    reference: str
    type: str
    amount_minor: int
    currency: str

    @property
    def key(self) -> tuple[str, str, str]:
        """What identifies the movement on both sides; amount and currency are compared."""
        return (self.store_id, self.reference, self.type)


def check_row(row: JournalRow, field: Callable[[str], str],
              stores: Collection[str] | None = None, partner_id: str = "") -> JournalRow:
    """`row` if every value is valid, else InvalidInput naming `field(column)`. `stores`: the
    partner's stores (None: not checked)."""
    if not isinstance(row.store_id, str) or not ID_PATTERN.fullmatch(row.store_id):
        raise InvalidInput(field("store_id"), f"must be 1..32 of [A-Za-z0-9_-], not "
                           f"{shown(row.store_id)}")
    if stores is not None and row.store_id not in stores:
        raise InvalidInput(field("store_id"), f"{shown(row.store_id)} is not a store of "
                           f"partner {shown(partner_id)}")
    if not isinstance(row.reference, str) or not REQUEST_ID_PATTERN.fullmatch(row.reference):
        raise InvalidInput(field("reference"), "must be 1..64 printable ASCII characters "
                           f"without spaces, not {shown(row.reference)}")
    if row.type not in TYPES:
        why = (" (a hold: it settles nothing)" if row.type in HOLD_KINDS else "")
        raise InvalidInput(field("type"), f"{shown(row.type)} is not one of "
                           f"{', '.join(TYPES)}{why}")
    amount = row.amount_minor
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise InvalidInput(field("amount_minor"), f"must be an integer, not {shown(amount)}")
    if amount < 0:
        raise InvalidInput(field("amount_minor"), f"must not be negative, not {amount}")
    if amount > AMOUNT_MAX_MINOR:
        raise InvalidInput(field("amount_minor"), f"must be at most {AMOUNT_MAX_MINOR}")
    if row.currency not in EXPONENTS:
        raise InvalidInput(field("currency"), f"unknown ISO 4217 currency code "
                           f"{shown(row.currency)}")
    return row


def check_rows(rows: Iterable[JournalRow], stores: Collection[str] | None = None,
               partner_id: str = "", prefix: str = "rows") -> list[JournalRow]:
    """Rows given as messages (gRPC): a bad value names `rows[i].column`."""
    return [check_row(row, lambda column, i=i: f"{prefix}[{i}].{column}", stores, partner_id)
            for i, row in enumerate(rows)]


def _amount(text: str, field: str) -> int:
    stripped = text.strip()
    if stripped.startswith("-") and stripped[1:].isdigit():
        raise InvalidInput(field, f"must not be negative, not {shown(stripped)}")
    if not stripped.isascii() or not stripped.isdigit():
        raise InvalidInput(field, "must be an integer number of minor units (no sign, no "
                           f"decimal point), not {shown(stripped)}")
    if len(stripped) > 16:
        raise InvalidInput(field, f"must be at most {AMOUNT_MAX_MINOR}")
    return int(stripped)


def read_csv(text: str, stores: Collection[str] | None = None, partner_id: str = "",
             rows_max: int | None = None) -> tuple[list[JournalRow], list[InvalidInput]]:
    """(good rows, one InvalidInput per bad line naming `line N: column`) of a journal file.
    A bad header, or more than `rows_max` rows, is an InvalidInput raised at once (nothing
    of such a file is usable)."""
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise InvalidInput("line 1", "the file is empty: a header line is required "
                           f"({','.join(COLUMNS)})") from None
    except csv.Error as error:
        raise InvalidInput("line 1", f"not CSV: {error}") from None
    names = [name.strip() for name in header]
    unknown = [name for name in names if name not in COLUMNS]
    missing = [name for name in COLUMNS if name not in names]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if unknown or missing or repeated:
        parts = ([f"unknown column {shown(unknown[0])}"] if unknown else []) + (
            [f"missing {', '.join(missing)}"] if missing else []) + (
            [f"{repeated[0]} twice"] if repeated else [])
        raise InvalidInput("line 1", f"{'; '.join(parts)} (the header names exactly "
                           f"{','.join(COLUMNS)}, in any order)")
    where = {name: names.index(name) for name in COLUMNS}
    good: list[JournalRow] = []
    bad: list[InvalidInput] = []
    try:
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue
            if rows_max is not None and len(good) + len(bad) >= rows_max:
                raise InvalidInput(f"line {line}", f"more than {rows_max} rows in one file")
            try:
                if len(cells) != len(names):
                    raise InvalidInput(f"line {line}", f"has {len(cells)} columns, the header "
                                       f"{len(names)}")
                values = {name: cells[index].strip() for name, index in where.items()}
                row = JournalRow(values["store_id"], values["reference"], values["type"],
                                 _amount(values["amount_minor"], f"line {line}: amount_minor"),
                                 values["currency"])
                good.append(check_row(row, lambda column, line=line: f"line {line}: {column}",
                                      stores, partner_id))
            except InvalidInput as error:
                bad.append(error)
    except csv.Error as error:
        raise InvalidInput(f"line {reader.line_num}", f"not CSV: {error}") from None
    return good, bad


def write_csv(rows: Iterable[JournalRow]) -> str:
    """Rows in the journal's own format (what read_csv reads back)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow((row.store_id, row.reference, row.type, row.amount_minor, row.currency))
    return out.getvalue()
