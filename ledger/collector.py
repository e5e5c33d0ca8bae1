"""The garbage collector's setting for a long-running server (limits.SERVER_GC_THRESHOLDS:
why). An import has its own, scoped one: ledger.card_import.collecting_less."""

from __future__ import annotations

import gc

from ledger import limits


def for_serving() -> None:
    """Freeze what the process holds once started (never scanned again) and collect less
    often; call once, when the server is ready to take calls."""
    gc.freeze()
    gc.set_threshold(*limits.SERVER_GC_THRESHOLDS)
