"""Matching a partner's journal against the ledger's movements of the same partner and period.

Both sides are lists of JournalRow. Rows are grouped by their key (store, reference, type);
within a key, in canonical order (each side sorted, so the order of the file changes nothing):
1. a file row and a ledger row with the same amount and currency are a MATCHED pair;
2. the rows left are paired in order: an AMOUNT_MISMATCH (amount or currency differ);
3. what is left of one side has no counterpart. On the file's side: if the ledger has no row
   of the key at all, the first is MISSING_IN_LEDGER and any further one DUPLICATE_IN_FILE;
   if the ledger's rows were all paired, each one is a DUPLICATE_IN_FILE. The ledger's side
   likewise: MISSING_IN_FILE, then DUPLICATE_IN_LEDGER (a request applied twice: the same
   request id reused by two tills of a store, or a retry after the 7-day window).
So every row of either side lands in exactly one class (a pair puts its two rows in one class).

A break is everything but a MATCHED pair. Its id is 16 hex characters of a blake2b over the
scope (partner and period), its class, its key and its rank among the breaks of that key and
class: the same file against the same (closed, unchanging) period gives the same breaks with
the same ids, run after run, so a break resolved once is known as resolved when it comes back.
"""

from __future__ import annotations

import enum
import hashlib
from collections import defaultdict
from collections.abc import Sequence

import msgspec

from domain.reconcile.journal import JournalRow

DIGEST_DOMAIN = b"loyalty-ledger/reconcile/journal/v1\n"
BREAK_DOMAIN = b"loyalty-ledger/reconcile/break/v1\n"
BREAK_ID_BYTES = 8


class MatchClass(enum.IntEnum):
    """The numbers are stored (counts in a run's event) and never change."""

    MATCHED = 1
    AMOUNT_MISMATCH = 2
    MISSING_IN_LEDGER = 3
    MISSING_IN_FILE = 4
    DUPLICATE_IN_FILE = 5
    DUPLICATE_IN_LEDGER = 6


class Item(msgspec.Struct, frozen=True):
    """A matched pair or a break: the file's row and/or the ledger's row."""

    match_class: MatchClass
    file_row: JournalRow | None
    ledger_row: JournalRow | None
    break_id: str  # "" for MATCHED

    @property
    def key(self) -> tuple[str, str, str]:
        row = self.file_row or self.ledger_row
        assert row is not None
        return row.key


class Matching(msgspec.Struct, frozen=True):
    items: tuple[Item, ...]  # by key, then class, then rank
    file_digest: str  # of the file's rows in canonical order (see journal_digest)
    file_rows: int
    ledger_rows: int

    def counts(self) -> tuple[int, ...]:
        """Items per class, by class number (1..6): a pair counts once."""
        found = [0] * len(MatchClass)
        for item in self.items:
            found[item.match_class - 1] += 1
        return tuple(found)

    def breaks(self) -> tuple[Item, ...]:
        return tuple(i for i in self.items if i.match_class != MatchClass.MATCHED)


def journal_digest(rows: Sequence[JournalRow]) -> str:
    """blake2b-256 of the rows in canonical (sorted) order: the same rows in any order, from a
    CSV file or inline over gRPC, give the same digest."""
    hasher = hashlib.blake2b(DIGEST_DOMAIN, digest_size=32)
    for row in sorted(rows):
        hasher.update(msgspec.msgpack.encode(row))
    return hasher.hexdigest()


def break_id(scope: str, match_class: MatchClass, key: tuple[str, str, str], rank: int) -> str:
    text = "\x1f".join((scope, str(int(match_class)), *key, str(rank)))
    return hashlib.blake2b(BREAK_DOMAIN + text.encode(), digest_size=BREAK_ID_BYTES).hexdigest()


def match(file_rows: Sequence[JournalRow], ledger_rows: Sequence[JournalRow],
          scope: str) -> Matching:
    """Match the partner's rows against the ledger's (see the module's docstring). `scope`
    names the run's partner and period in break ids. O(n log n)."""
    by_key: dict[tuple[str, str, str], tuple[list[JournalRow], list[JournalRow]]] = (
        defaultdict(lambda: ([], [])))
    for row in sorted(file_rows):
        by_key[row.key][0].append(row)
    for row in sorted(ledger_rows):
        by_key[row.key][1].append(row)
    items: list[Item] = []
    for key in sorted(by_key):
        theirs, ours = by_key[key]
        found: list[tuple[MatchClass, JournalRow | None, JournalRow | None]] = []
        left_ours = list(ours)
        left_theirs: list[JournalRow] = []
        for row in theirs:
            twin = next((i for i, o in enumerate(left_ours)
                         if (o.amount_minor, o.currency) == (row.amount_minor, row.currency)),
                        None)
            if twin is None:
                left_theirs.append(row)
            else:
                found.append((MatchClass.MATCHED, row, left_ours.pop(twin)))
        paired = min(len(left_theirs), len(left_ours))
        for row, other in zip(left_theirs[:paired], left_ours[:paired], strict=True):
            found.append((MatchClass.AMOUNT_MISMATCH, row, other))
        for index, row in enumerate(left_theirs[paired:]):
            lone = not ours and index == 0
            found.append((MatchClass.MISSING_IN_LEDGER if lone else MatchClass.DUPLICATE_IN_FILE,
                          row, None))
        for index, row in enumerate(left_ours[paired:]):
            lone = not theirs and index == 0
            found.append((MatchClass.MISSING_IN_FILE if lone else MatchClass.DUPLICATE_IN_LEDGER,
                          None, row))
        ranks: dict[MatchClass, int] = defaultdict(int)
        for match_class, mine, other in sorted(found, key=lambda f: f[0]):
            rank = ranks[match_class]
            ranks[match_class] += 1
            items.append(Item(match_class, mine, other,
                              "" if match_class == MatchClass.MATCHED
                              else break_id(scope, match_class, key, rank)))
    return Matching(tuple(items), journal_digest(file_rows), len(file_rows), len(ledger_rows))
