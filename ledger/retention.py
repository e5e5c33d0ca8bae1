"""Pruning what the ledger keeps only for a while: request keys older than the retry window.
Runs beside the writer (its own connection, short transactions), in any number of processes
at once: deleting a key twice deletes it once."""

from __future__ import annotations

from ledger import limits
from ledger.store import EventStore


def prune_request_keys(store: EventStore, now_us: int,
                       retention_s: int = limits.REQUEST_KEY_RETENTION_S,
                       chunk: int = limits.KEY_PRUNE_CHUNK) -> int:
    """Delete every request key recorded more than `retention_s` before `now_us`, a chunk at
    a time; returns how many were deleted."""
    cutoff_us = now_us - retention_s * 1_000_000
    deleted = 0
    while True:
        count = store.prune_keys(cutoff_us, chunk)
        deleted += count
        if count < chunk:
            return deleted
