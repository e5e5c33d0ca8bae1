"""Where a server's time goes: a py-spy raw profile cut into the parts of a request's path.

    python -m benchmarks.profile_shares PROFILE.txt [PROFILE.txt ...]

PROFILE.txt is `py-spy record --format raw --threads` output (one line per distinct stack,
"thread (tid): name;frame;frame;... count"), as `LEDGER_BENCH_PROFILE=DIR loyalty-ledger bench`
writes for each measured window. Every sample goes to the first part whose rule matches its
stack (rules are tried in the order below), and the table gives each part's share of the
samples. py-spy without `--idle` records only threads that were running, so the shares are
of the CPU the server used, not of wall time.
"""

from __future__ import annotations

import argparse
import collections
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

# (part, thread-name pattern, stack pattern). First match wins: put narrow rules first.
RULES: tuple[tuple[str, str, str], ...] = (
    # The committer: one transaction per group of decided batches.
    ("committer: BEGIN/COMMIT round trips", "ledger-committer",
     r"Connection\.transaction \(psycopg|Transaction\.__(enter|exit)__"),
    ("committer: statements' round trip (sync)", "ledger-committer",
     r"Pipeline\.(sync|__exit__)|_PostgresEvents\.write \(ledger/store\.py"
     r"[^;]*;[^;]*Connection\.wait"),
    ("committer: sending statements", "ledger-committer", r"Cursor\.execute \(psycopg"),
    ("committer: connection pool", "ledger-committer", r"ConnectionPool|get_connection"),
    ("committer: replies to callers", "ledger-committer", r"Ledger\._reply"),
    ("committer: other", "ledger-committer", r""),
    # The decider: follows the log, decides each request, encodes what it writes.
    ("decider: follow the log, load cards", "ledger-writer",
     r"follow_log|prefetch|load_tails|_load"),
    ("decider: payload hash", "ledger-writer", r"payload_hash"),
    ("decider: encode events, snapshots, replies", "ledger-writer",
     r"encode \(ledger/codec|Encoder"),
    ("decider: snapshot interval", "ledger-writer", r"snapshot_every"),
    ("decider: request-key cache", "ledger-writer", r"KeyCache|State\.speculate|known_key"),
    ("decider: evolve (state changes)", "ledger-writer",
     r"evolve \(domain|_authorized \(|_pending \(|retention\.py|expire_holds"),
    ("decider: decide + handlers", "ledger-writer",
     r"domain/|ledger/handlers/"),
    ("decider: replies to callers", "ledger-writer", r"Ledger\._reply|Ledger\._answer"),
    ("decider: queue and hand-over", "ledger-writer", r"Queue\.|_hand_over"),
    ("decider: other", "ledger-writer", r""),
    # The event loop thread: gRPC, asyncio and the servicers.
    ("servicer: authenticate", "MainThread", r"authenticate \("),
    ("servicer: validation", "MainThread",
     r"_validated|\.validate \(|check_[a-z_]+ \(|luhn_valid"),
    ("servicer: translate to a command", "MainThread",
     r"pos_command|grpc_api/translate\.py|issue_command"),
    ("servicer: submit to the ledger", "MainThread", r"submit(_all)? \("),
    ("servicer: reply building", "MainThread",
     r"_reply \(grpc_api|_fill_[a-z_]+ \(grpc_api|card_message|_operation_error|"
     r"_status_message"),
    ("servicer: deliver replies", "MainThread", r"Gateway\._drain"),
    ("servicer: other (Batch loop, glue)", "MainThread", r"\((grpc_api|ledger|domain)/"),
    ("gRPC + asyncio machinery", "MainThread", r""),
    ("gRPC poller thread", r"_poll_wrapper", r""),
    ("log watch (LISTEN)", "ledger-log-watch", r""),
    ("other threads", r"", r""),
)
_COMPILED = [(part, re.compile(thread), re.compile(stack)) for part, thread, stack in RULES]
_THREAD = re.compile(r"^thread \(\d+\): ([^;]*)")


def classify(stack: str, extra: Sequence[tuple[str, re.Pattern[str], re.Pattern[str]]] = ()
             ) -> str:
    match = _THREAD.match(stack)
    thread = match.group(1) if match else ""
    for part, thread_rule, stack_rule in (*extra, *_COMPILED):
        if thread_rule.search(thread) and stack_rule.search(stack):
            return part
    return "other threads"


def shares(lines: Iterable[str], extra: Sequence[tuple[str, re.Pattern[str], re.Pattern[str]]]
           = ()) -> tuple[collections.Counter[str], int]:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if not stack or not count.isdigit():
            continue
        counts[classify(stack, extra)] += int(count)
        total += int(count)
    return counts, total


def render(names: list[str], results: list[tuple[collections.Counter[str], int]]) -> str:
    width = max(len(part) for part, _, _ in RULES)
    lines = [f"{'part':<{width}}  " + "  ".join(f"{n:>12}" for n in names),
             f"{'samples':<{width}}  " + "  ".join(f"{t:>12,}" for _, t in results)]
    for part in dict.fromkeys(part for part, _, _ in RULES):
        if not any(c[part] for c, _ in results):
            continue
        cells = [f"{100 * c[part] / t:11.1f}%" if t else f"{'-':>12}" for c, t in results]
        lines.append(f"{part:<{width}}  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--rule", action="append", default=[], metavar="PART=REGEX",
                        help="an extra rule tried first, on every thread: for code laid out "
                             "differently, e.g. an older commit whose reply building was a line "
                             "of a function that now does something else")
    ns = parser.parse_args(argv)
    extra = []
    for rule in ns.rule:
        part, _, pattern = rule.partition("=")
        if part not in {p for p, _, _ in RULES} or not pattern:
            parser.error(f"--rule {rule!r}: PART must be one of the table's parts")
        extra.append((part, re.compile(""), re.compile(pattern)))
    results = [shares(path.read_text().splitlines(), extra) for path in ns.profiles]
    print(render([p.stem for p in ns.profiles], results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
