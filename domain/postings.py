"""Double-entry postings: every movement of value is a set of legs that sums to zero.

Accounts (signed balances; the sum over all accounts is always zero):
- `card:{n}:available`, `card:{n}:held`: the card holder's stored value, split into free and held.
  Their sum is the issuer's liability to the card holder.
- `partner:{p}:sv_funding`: money received by issuer p for loads (negative = funded liability).
- `clearing:{i}:{a}`: value issued by partner i and redeemed at a store of partner a. When
  i != a this is what i owes a at settlement; stage 3 settlement reads these accounts.
- `coupons:{f}:funding`, `coupons:{a}:given`: coupon discounts funded by f (a partner or a
  supplier) and given at the stores of partner a.
"""

from __future__ import annotations

import msgspec


class Leg(msgspec.Struct, frozen=True, array_like=True):
    account: str
    amount_minor: int


def available(card_number: str) -> str:
    return f"card:{card_number}:available"


def held(card_number: str) -> str:
    return f"card:{card_number}:held"


def funding(partner_id: str) -> str:
    return f"partner:{partner_id}:sv_funding"


def clearing(issuer_id: str, acquirer_id: str) -> str:
    return f"clearing:{issuer_id}:{acquirer_id}"


def coupon_funding(funded_by: str) -> str:
    """What a coupon's funder (a partner or a supplier) owes for the discounts it funds."""
    return f"coupons:{funded_by}:funding"


def coupon_given(acquirer_id: str) -> str:
    """Coupon discounts given at the stores of partner `acquirer_id`: owed to it."""
    return f"coupons:{acquirer_id}:given"


def move(source: str, target: str, amount_minor: int) -> tuple[Leg, Leg]:
    """Value moves from `source` to `target`: the pair sums to zero by construction."""
    return (Leg(source, -amount_minor), Leg(target, amount_minor))


def is_balanced(legs: tuple[Leg, ...]) -> bool:
    total = 0
    for leg in legs:  # a plain loop: this runs for every event the writer decides
        total += leg.amount_minor
    return total == 0


# Points exchange (domain/exchange): liability moves between program owners at each program's
# point value. An exchange from program s to program d posts, in minor units:
#   points:{s}:outstanding  -taken     holders' claim on s's points (what left the purse)
#   exchange_fee:{s}        +fee       s's fee income (fee points at the lots' value)
#   exchange_difference:{s}:{d}  +rest  s's gain (loss if negative) from the rate and rounding
#   exchange:{s}:{d}        +given     what s owes d for taking the liability over (settlement)
#   points:{d}:funding      -given     d's liability, funded by s (like partner:{p}:sv_funding)
#   points:{d}:outstanding  +given     holders' claim on d's points (the lot that arrived)
# where taken = fee + rest + given. Only exchanges post to points:* today (earning and
# redeeming do not post points legs yet), so points:{p}:outstanding is the net value exchanged
# into program p.


# Points bought and redeemed at the stores (domain/purchases), valued at the program's point
# value (micro-minor units per point, rounded down once per figure):
#   a purchase earning points of program o at a store of entity a:
#     points_sold:{a}:{o}      -v    a owes o for the points its sale handed out
#     points:{o}:outstanding   +v
#   a purchase redeeming them:
#     points:{o}:outstanding   -v
#     points_redeemed:{o}:{a}  +v    o owes a for the goods the points paid for
#   a return reverses both in proportion (telescoping, so a purchase returned in parts ends
#   exactly where it began); points that could not be taken back because they were spent go
#   to points_written_off:{o} (the program's loss) or stay owed as the card's points debt.


def points_sold(acquirer_id: str, program: str) -> str:
    return f"points_sold:{acquirer_id}:{program}"


def points_redeemed(program: str, acquirer_id: str) -> str:
    return f"points_redeemed:{program}:{acquirer_id}"


def points_breakage(program: str) -> str:
    """Points of program p that expired unspent, at their value: p's breakage."""
    return f"points_breakage:{program}"


def points_written_off(program: str) -> str:
    return f"points_written_off:{program}"


def points_outstanding(program: str) -> str:
    return f"points:{program}:outstanding"


def points_funding(program: str) -> str:
    return f"points:{program}:funding"


def exchange_clearing(from_program: str, to_program: str) -> str:
    """What the source program's owner owes the destination's: settlement reads these."""
    return f"exchange:{from_program}:{to_program}"


def exchange_fee(program: str) -> str:
    return f"exchange_fee:{program}"


def exchange_difference(from_program: str, to_program: str) -> str:
    return f"exchange_difference:{from_program}:{to_program}"
