"""The handlers, one module per context, found through one table: command type -> handler.
A handler is a plain function of the handler context (ledger/handlers/context.py) that
returns the reply, or raises a refusal (InvalidInput, Denied, NotFound, Unconfigured) before
it has changed anything. A new context (exchange, settlement) adds a module and its entries
here; the pipeline (ledger/engine.py) knows no particular command.

Besides HANDLERS a module may declare PREPARE (functions run once per batch before any
decision, e.g. evaluating every basket with one kernel call) and RELATED_KEYS (request keys a
command depends on besides its own, looked up again after a conflict with another process).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ledger.handlers import cards, coupons, maintenance, purchases, registry, reversal
from ledger.handlers.context import Ctx
from ledger.work import Request

_MODULES = (cards, reversal, registry, purchases, coupons, maintenance)

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


def related_keys(request: Request) -> list[tuple[str, str]]:
    lookup = _RELATED.get(type(request.command))
    return lookup(request) if lookup is not None else []
