"""Exchange commands and their input checks (INVALID_ARGUMENT naming the field)."""

from __future__ import annotations

import msgspec

from domain.common import InvalidInput, check_card_number
from domain.exchange.quote import check_quote_id
from domain.exchange.rates import POINTS_MAX, check_program


class QuoteExchange(msgspec.Struct, frozen=True, array_like=True, tag="QuoteExchange"):
    """What an exchange would give, signed: writes nothing."""

    card_number: str
    from_program: str
    to_program: str
    points_taken: int  # exactly one of these two: the points to give up (fee included) ...
    points_wanted: int  # ... or the destination points wanted (the fewest taken that give them)

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_program(self.from_program, "from_program")
        check_program(self.to_program, "to_program")
        if self.from_program == self.to_program:
            raise InvalidInput("to_program", "must differ from from_program")
        for field in ("points_taken", "points_wanted"):
            if not 0 <= getattr(self, field) <= POINTS_MAX:
                raise InvalidInput(field, f"must be 0..{POINTS_MAX}")
        if (self.points_taken > 0) == (self.points_wanted > 0):
            raise InvalidInput("points_taken", "exactly one of points_taken and points_wanted "
                               "must be greater than 0")


class ExecuteExchange(msgspec.Struct, frozen=True, array_like=True, tag="ExecuteExchange"):
    card_number: str
    quote_id: str

    def validate(self) -> None:
        check_card_number(self.card_number)
        check_quote_id(self.quote_id)
