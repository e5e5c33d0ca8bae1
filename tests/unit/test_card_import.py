"""The card file (ledger/card_import.py): each line checked as IssueCard and LoadValue are on
the wire (one error naming the line and the field), the header checked before anything is
sent, a card number repeated in the file refused on the later line."""

from __future__ import annotations

import pytest

from domain.cards import commands as cc
from domain.common import luhn_complete
from ledger.card_import import (
    CardLine,
    FileFormatError,
    LineError,
    issue_request_id,
    load_request_id,
    parse,
)

A = luhn_complete("700000000000001")
B = luhn_complete("700000000000002")
LUHN_BAD = A[:-1] + str((int(A[-1]) + 1) % 10)
HEADER = "card_number,card_class,currency,customer_ref,amount_minor,payment_ref"


def _parsed(*lines: str, header: str = HEADER, store: str = "") -> list[CardLine | LineError]:
    return list(parse([header, *lines], store))


def test_a_good_file() -> None:
    first, second = _parsed(f"{A},STANDARD,USD,cust-1,5000,psp-42", f"{B},VIP,USD,,,")
    assert first == CardLine(2, cc.IssueCard(A, "STANDARD", "USD", "cust-1", ""),
                             cc.LoadValue(A, 5000, "USD", "psp-42"))
    assert second == CardLine(3, cc.IssueCard(B, "VIP", "USD", "", ""), None)


def test_columns_in_any_order_optional_ones_left_out_and_the_default_store() -> None:
    (line,) = _parsed(f"USD,{A},GOLD", header="currency,card_number,card_class", store="S1")
    assert line == CardLine(2, cc.IssueCard(A, "GOLD", "USD", "", "S1"), None)
    (own,) = _parsed(f"{A},GOLD,USD,S2", header="card_number,card_class,currency,"
                     "issuing_store_id", store="S1")
    assert isinstance(own, CardLine) and own.issue.issuing_store_id == "S2"


def test_blank_lines_are_skipped_and_line_numbers_are_the_file_s() -> None:
    items = _parsed("", f"{A},STANDARD,USD,,,", "", f"{LUHN_BAD},STANDARD,USD,,,")
    assert [item.line for item in items] == [3, 5]


BAD_LINES = [
    (",STANDARD,USD,,,", "card_number: is required"),
    ("1234,STANDARD,USD,,,", "card_number: must be 12..19 digits"),
    (f"{LUHN_BAD},STANDARD,USD,,,", "card_number: fails the Luhn check"),
    (f"{A},standard,USD,,,", "card_class"),
    (f"{A},,USD,,,", "card_class"),
    (f"{A},STANDARD,XXX,,,", "currency"),
    (f"{A},STANDARD,,,,", "currency"),
    (f"{A},STANDARD,USD,{'c' * 65},,", "customer_ref"),
    (f"{A},STANDARD,USD,,ten,psp", "amount_minor: not an integer"),
    (f"{A},STANDARD,USD,,0,psp", "amount_minor"),
    (f"{A},STANDARD,USD,,-5,psp", "amount_minor"),
    (f"{A},STANDARD,USD,,100,", "payment_ref"),
    (f"{A},STANDARD,USD,,,psp", "payment_ref: given without amount_minor"),
    (f"{A},STANDARD,USD", "3 fields where the header has 6"),
    (f"{A},STANDARD,USD,,,,", "7 fields where the header has 6"),
]


@pytest.mark.parametrize(("text", "message"), BAD_LINES)
def test_a_bad_line_is_one_error_naming_the_line_and_the_field(text: str, message: str) -> None:
    before, bad, after = _parsed(f"{B},STANDARD,USD,,,", text,
                                 f"{luhn_complete('700000000000003')},STANDARD,USD,,,")
    assert isinstance(bad, LineError) and bad.line == 3 and message in bad.message, bad
    assert isinstance(before, CardLine) and isinstance(after, CardLine)


def test_a_card_number_repeated_in_the_file_is_an_error_on_the_later_line() -> None:
    first, second, third = _parsed(f"{A},STANDARD,USD,,,", f"{B},STANDARD,USD,,,",
                                   f"{A},VIP,USD,,,")
    assert isinstance(first, CardLine) and isinstance(second, CardLine)
    assert third == LineError(4, "card_number: repeats line 2")


@pytest.mark.parametrize(("header", "message"), [
    ("", "line 1: the file is empty"),
    ("card_number,card_class", "line 1: the header has no currency column"),
    ("card_number,card_class,currency,email", "line 1: unknown column 'email'"),
    ("card_number,card_class,currency,currency", "line 1: column currency appears twice"),
])
def test_a_bad_header_is_refused_before_any_line(header: str, message: str) -> None:
    lines = [header, f"{A},STANDARD,USD"] if header else []
    with pytest.raises(FileFormatError) as raised:
        list(parse(lines))
    assert str(raised.value).startswith(message), raised.value


def test_request_ids_come_from_the_card_number() -> None:
    assert issue_request_id(A) == f"import:{A}" and load_request_id(A) == f"import-load:{A}"
    longest = "9" * 19
    assert len(load_request_id(longest)) <= 64  # the contract's request id bound
