"""The per-request input checks of domain/common.py, against plain reference versions: the
Luhn check sums bytes in C and the control-character check is a regex, and neither may
answer differently from the obvious loop over characters."""

from __future__ import annotations

import random

import pytest

from domain.common import InvalidInput, check_card_number, check_text, luhn_complete, luhn_valid


def luhn_by_hand(number: str) -> bool:
    """The textbook Luhn check, one character at a time, from the right."""
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2 == 1:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def test_luhn_agrees_with_the_textbook_check_on_every_length_and_digit() -> None:
    rng = random.Random(14)
    for length in range(1, 21):
        for _ in range(300):
            number = "".join(rng.choice("0123456789") for _ in range(length))
            assert luhn_valid(number) == luhn_by_hand(number), number


@pytest.mark.parametrize("number", ["79927398713", "4111111111111111", "0", "00"])
def test_known_valid_numbers(number: str) -> None:
    assert luhn_by_hand(number) and luhn_valid(number)


@pytest.mark.parametrize("number", ["79927398710", "4111111111111112", "1"])
def test_known_invalid_numbers(number: str) -> None:
    assert not luhn_valid(number)


@pytest.mark.parametrize("text", ["", "12a4", "4111 1111", "٤١١١١١١١١١١١١١١١", "²"])
def test_anything_but_ascii_digits_fails_the_luhn_check(text: str) -> None:
    assert not luhn_valid(text)


def test_luhn_complete_appends_the_one_check_digit() -> None:
    for prefix in ("627700000000001", "12345678901", "9" * 18):
        number = luhn_complete(prefix)
        assert number[:-1] == prefix and luhn_valid(number)
        assert [luhn_valid(prefix + d) for d in "0123456789"].count(True) == 1


def test_card_number_errors_name_the_problem() -> None:
    with pytest.raises(InvalidInput, match="card_number: fails the Luhn check"):
        check_card_number("4111111111111112")
    with pytest.raises(InvalidInput, match=r"card_number: must be 12\.\.19 digits"):
        check_card_number("4111 1111 1111 1111")


@pytest.mark.parametrize("code", range(0x20))
def test_every_control_character_is_refused(code: int) -> None:
    with pytest.raises(InvalidInput, match="stan: contains control characters"):
        check_text(f"ab{chr(code)}cd", "stan", limit=32)


@pytest.mark.parametrize("text", ["", "till 4", "\x7f", "é ü 漢字", " " * 32, "~!@#$%^&*()"])
def test_text_without_control_characters_passes(text: str) -> None:
    assert check_text(text, "stan", limit=32) == text
