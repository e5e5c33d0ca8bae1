"""The handlers, one module per context, found through one table: command type -> handler.
A handler is a plain function of the handler context (ledger/handlers/context.py) that
returns the reply, or raises a refusal (InvalidInput, Denied, NotFound, Unconfigured) before
it has changed anything. A new context (exchange, settlement) adds a module and its entries
here; the pipeline (ledger/engine.py) knows no particular command.

Besides HANDLERS a module may declare PREPARE (functions run once per batch before any
decision, e.g. evaluating every basket with one kernel call), RELATED_KEYS (request keys a
command depends on besides its own, looked up again after a conflict with another process) and
CARDS (the card numbers a command will read, when not its `card_number`: the pipeline loads a
batch's cold cards together before deciding) and ROUTE (the card whose partition's owner
decides a command, when not the one CARDS names: ledger/routing.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.handlers import (
    cards,
    coupons,
    exchange,
    maintenance,
    purchases,
    recon,
    registry,
    reversal,
)
from ledger.handlers.context import Ctx
from ledger.work import Request

_MODULES = (cards, reversal, registry, purchases, coupons, maintenance, recon, exchange)

HANDLERS: dict[type, Callable[[Ctx], Any]] = {}
for _module in _MODULES:
    for _command, _handler in _module.HANDLERS.items():  # type: ignore[attr-defined]
        assert _command not in HANDLERS, f"{_command.__name__} has two handlers"
        HANDLERS[_command] = _handler

PREPARE: tuple[Callable[..., None], ...] = tuple(
    step for module in _MODULES for step in getattr(module, "PREPARE", ()))

_RELATED: dict[type, Callable[[Request], list[tuple[str, str]]]] = {
    command: lookup for module in _MODULES
    for command, lookup in getattr(module, "RELATED_KEYS", {}).items()}


_CARDS: dict[type, Callable[[Any], str]] = {
    command: card for module in _MODULES
    for command, card in getattr(module, "CARDS", {}).items()}


_ROUTE: dict[type, Callable[[Any], str]] = {
    command: card for module in _MODULES
    for command, card in getattr(module, "ROUTE", {}).items()}


def card_of(command: Any) -> str:
    """The card a command names ("" for none): the first one its batch loads."""
    lookup = _CARDS.get(type(command))
    return lookup(command) if lookup is not None else getattr(command, "card_number", "")


def routed_by(command: Any) -> str:
    """The card whose partition's owner decides the command ("" for none: any process)."""
    lookup = _ROUTE.get(type(command))
    return lookup(command) if lookup is not None else card_of(command)


def cards_of(batch: list[Request]) -> list[str]:
    """The card numbers the batch's commands name (a hint: a handler loads any other card it
    needs on demand)."""
    return [number for request in batch if (number := card_of(request.command))]


def related_keys(request: Request) -> list[tuple[str, str]]:
    lookup = _RELATED.get(type(request.command))
    return lookup(request) if lookup is not None else []
