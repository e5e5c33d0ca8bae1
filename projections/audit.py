"""The auditor's replay (`loyalty-ledger audit replay`): read the whole log, rebuild the
registry and every card, evaluate each purchase again with the plain-Python reference
evaluator and the rule-set versions the purchase pinned, and compare.

What is compared:
- every purchase: its member and stamp discounts, its stamps, the points of its lot (plus the
  debt it settled), the versions its lot names, and its explanation rule by rule, against
  the reference evaluator run on the pinned versions and the card as it was before it;
- every card's purse, lot by lot (remainders included) and its written-off points, against
  what the writer held: the card's latest snapshot (written from the writer's memory) with
  the events after it.

A full replay holds every card's state in memory while it reads the log (the purchases'
rules read the card's history); it is not a tracked projection: it always starts at 0.

The split log (ledger/partitioned.py) is read lane after lane, the registry's first, each
from its own position 1 (its own schema's table, projections/audit_read.py); a difference is
named by its lane and position there ("log id 57 in lane 3"), the report in lane order. A
card lane's settlement marks are counted as events and otherwise passed over.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import gc
import heapq
import json
import multiprocessing
import operator
import os
import sys
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TextIO

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent, RuleAward
from domain.postings import Leg
from domain.purchases import stateful
from domain.purchases.evaluation import Evaluation
from domain.registry import decide as registry
from domain.registry.events import RegistryEvent, SettlementPeriodMarked
from domain.rules.model import Basket, RuleSet
from domain.rules.reference import evaluate
from ledger.codec import SNAPSHOT_TOPIC, decode_card_state, decode_event, encode
from ledger.store import EventStore, open_store
from projections.audit_read import Row, Share, read_share, reopenable_url, shown_cards

PAGE_ROWS = 10_000  # log rows per read (and stored replies per query); progress once a page
SNAPSHOT_CHUNK = 500  # cards whose snapshots and later events are read in one query
# Shares of the cards replayed side by side, one process each (this one and the others it
# starts): one per core, at most two (the machine the figures were taken on has two, and the
# database server reading the log needs the rest).
SHARES_MAX = 2
# A shorter log is replayed in this process alone: another one starts with a fresh interpreter
# importing the domain and the store (about a second) and sends its cards back.
PARALLEL_FROM_EVENTS = 100_000

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class AuditReport:
    events: int = 0
    purchases: int = 0
    lots: int = 0  # purchases whose lot was checked
    cards_compared: int = 0  # cards whose snapshot was compared with the replay
    replies_compared: int = 0  # events whose stored reply was compared with the replay
    postings: int = 0  # events with legs, each checked to sum to zero
    differences: list[str] = field(default_factory=list)
    cards: dict[uuid.UUID, cards.CardState] = field(default_factory=dict)
    balances: dict[str, int] = field(default_factory=dict)  # account -> sum of its legs
    as_of_us: int | None = None

    @property
    def ok(self) -> bool:
        return not self.differences


_COUNTS = ("events", "purchases", "lots", "cards_compared", "replies_compared", "postings")


@dataclass
class _ShareReport:
    """One share's replay: its counts (AuditReport's), each difference with the position that
    orders it (its event's; a snapshot's: its card's first event's), its cards by stream in
    the order first seen, with that first position, so that shares merge into log order.
    A position is an int on one log, an `At` (lane, id) on a split one."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_COUNTS, 0))
    found: list[tuple[Any, str]] = field(default_factory=list)  # from the log, in its order
    found_in_snapshots: list[tuple[Any, str]] = field(default_factory=list)
    cards: dict[bytes, cards.CardState] = field(default_factory=dict)  # by stream id
    first_seen: list[Any] = field(default_factory=list)
    balances: dict[str, int] = field(default_factory=dict)


def replay(store: EventStore, progress: Progress | None = None,
           as_of_us: int | None = None, shares: int | None = None) -> AuditReport:
    """The whole log, or with `as_of_us` the events recorded by then: every card and account
    balance rebuilt, every purchase re-evaluated, every posting summed, every stored reply
    (while its request key is kept: the retry window) compared with the card as replayed, and
    without `as_of_us` every card compared with the writer's snapshot.

    `shares` > 1 replays the cards in that many shares side by side (this process and
    others, each opening the database again); by default two on a log of
    PARALLEL_FROM_EVENTS events or more when the machine has two cores. The report is the
    same either way, differences in log order."""
    total = store.max_notification_id()
    url = reopenable_url(store)
    if shares is None:
        shares = (min(SHARES_MAX, os.cpu_count() or 1)
                  if url is not None and total >= PARALLEL_FROM_EVENTS else 1)
    if shares < 1:
        raise ValueError(f"shares must be 1 or more, not {shares}")
    if shares > 1 and url is None:
        raise ValueError(f"{type(store).__name__} cannot be opened by another process: "
                         "replay it in one share")
    collecting = gc.isenabled()
    gc.disable()  # see _replay_share
    try:
        if url is None or shares == 1:
            reports = [_replay_share(store, Share(), as_of_us, total, progress)]
        else:
            reports = _replay_in_processes(store, url, shares, as_of_us, total, progress)
        return _merged(reports, as_of_us)
    finally:
        if collecting:
            gc.enable()


def _merged(shares: Sequence[_ShareReport], as_of_us: int | None) -> AuditReport:
    report = AuditReport(as_of_us=as_of_us)
    for name in _COUNTS:
        setattr(report, name, sum(share.counts[name] for share in shares))
    for share in shares:
        for account, amount in share.balances.items():
            report.balances[account] = report.balances.get(account, 0) + amount
    first = operator.itemgetter(0)
    report.differences = [text for _, text in heapq.merge(*(s.found for s in shares),
                                                          key=first)]
    report.differences += [text for _, text in heapq.merge(
        *(s.found_in_snapshots for s in shares), key=first)]
    report.cards = {uuid.UUID(bytes=stream): card for _, stream, card in heapq.merge(
        *(zip(s.first_seen, s.cards, s.cards.values(), strict=True) for s in shares),
        key=first)}
    return report


def _replay_share(store: EventStore, share: Share, as_of_us: int | None, total: int,
                  progress: Progress | None) -> _ShareReport:
    """The share's cards and every registry event (whose postings and count only share 0
    takes), through the log, then against the writer's snapshots. Run with the cyclic
    collector off: the cards' states only grow, nothing here makes a cycle, and the
    collector would walk them again and again (it took ~40 % of the replay's CPU time)."""
    result = _ShareReport()
    found, balances, folded = result.found, result.balances, result.cards
    first_seen = result.first_seen
    counts = result.counts
    state = registry.RegistryState()
    takes_registry = share.number == 0
    events = purchases = lots = replies = postings = 0
    evolve, purchase_made = cards.evolve, ev.PurchaseMade
    split = store.split
    for lane, rows, events_read, shown_read, done in _pages(store, share, as_of_us):
        for (stream, _, _, lane_position), event, shown in zip(rows, events_read, shown_read,
                                                               strict=True):
            # one log: the position; split: the lane and its position (ordered lane by lane)
            position: Any = At(lane, lane_position) if split else lane_position
            legs = getattr(event, "legs", None)
            if type(event) is SettlementPeriodMarked:  # a split log's close in a card lane
                events += takes_registry
                continue
            if isinstance(event, RegistryEvent):  # (the registry's stream: REGISTRY_ID)
                registry.evolve(state, event)
                if takes_registry:
                    events += 1
                    if legs:
                        postings += 1
                        _post(found, balances, position, event, legs)
                continue
            events += 1
            if legs:
                postings += 1
                _post(found, balances, position, event, legs)
            before = folded.get(stream)
            if isinstance(event, purchase_made):
                purchases += 1
                if before is None:
                    found.append((position, f"log id {position}: a purchase on a card that "
                                            "was never issued"))
                    continue
                lots += event.lot is not None
                found += [(position, f"purchase {event.purchase_id} (log id {position}): {d}")
                          for d in check_purchase(state, before, event)]
            try:
                after = evolve(before, event)
            except Exception as error:  # a tampered event may not apply at all
                found.append((position, f"log id {position}: {type(event).__name__} does "
                                        f"not apply to the card as replayed ({error})"))
                continue
            if before is None:
                first_seen.append(position)
            folded[stream] = after
            if after.balance_minor - after.held_minor < 0:
                found.append((position, f"log id {position}: card {after.card_number} "
                                        f"available {after.balance_minor - after.held_minor}"
                                        " (below zero)"))
            if shown is not None and shown.version == after.version \
                    and shown.card_number == after.card_number:
                replies += 1
                if shown.balance_minor != after.balance_minor \
                        or shown.status != after.status or shown.tier != after.tier:
                    _compare_with_reply(found, position, after, shown)
        if progress is not None:
            progress("log", min(done, total), total)
    if progress is not None:
        progress("log", total, total)
    counts.update(events=events, purchases=purchases, lots=lots, replies_compared=replies,
                  postings=postings)
    if as_of_us is None:
        _compare_with_snapshots(store, result, progress)
    return result


Page = tuple[int, list[Row], list[Any], list[Any], int]
# lane, rows, events, cards shown, rows of the log read so far (progress: over every lane)


class At(NamedTuple):
    """A position of the split log (ledger/partitioned.py): its lane and its notification id
    there. Ordered lane by lane as the replay reads them; written as "57 in lane 3" (on one
    log a position is a plain int)."""

    lane: int
    id: int

    def __format__(self, spec: str) -> str:
        return f"{self.id} in lane {self.lane}"


def _pages(store: EventStore, share: Share, as_of_us: int | None) -> Iterator[Page]:
    """The share's log a page at a time, decoded, each event with the card its stored reply
    showed. Three pages are under way at once: the next one read and decoded on a thread,
    this one's stored replies looked up on another (the two queries wait on the database
    side by side), the one before replayed by the caller. A split log lane after lane, the
    registry's (0) first: every card event then meets the registry as of the log's end (or
    `as_of_us`), which a purchase's pinned rule-set versions are looked up in."""
    sharing = share.of > 1
    lanes = store.lanes()
    heads = store.heads() if len(lanes) > 1 else {0: 0}
    before = {lane: sum(heads.get(other, 0) for other in lanes[:index])
              for index, lane in enumerate(lanes)}  # rows of the lanes read before it

    def read(lane: int, start: int) -> tuple[int, list[Row], list[Any], int] | None:
        fetched = read_share(store, share, start, PAGE_ROWS, lane)
        if fetched is None:
            return None
        rows, next_position = fetched
        kept, events = [], []
        for row in rows:
            event = decode_event(row.state)
            if as_of_us is not None and event.meta.recorded_at_us > as_of_us:
                continue
            if sharing and not (isinstance(event, RegistryEvent)
                                or share.keeps_stream(row.stream)):
                continue  # another share's card, read with the registry's rows
            kept.append(row)
            events.append(event)
        return lane, kept, events, next_position

    def read_on(lane: int, start: int) -> tuple[int, list[Row], list[Any], int] | None:
        """From `start` in `lane`, or the next lane's first page when `lane` has no more."""
        for index in range(lanes.index(lane), len(lanes)):
            page = read(lanes[index], start if lanes[index] == lane else 1)
            if page is not None:
                return page
        return None

    with (concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit-read") as reader,
          concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit-replies") as asker):
        reading = reader.submit(read_on, lanes[0], 1)
        waiting: tuple[Any, int, list[Row], list[Any], int] | None = None
        while True:
            page = reading.result()
            if page is not None:
                lane, rows, events, next_position = page
                reading = reader.submit(read_on, lane, next_position)
                asked = asker.submit(shown_cards, store, events)
            if waiting is not None:
                shown, lane_before, rows_before, events_before, done = waiting
                yield lane_before, rows_before, events_before, shown.result(), done
            if page is None:
                return
            waiting = (asked, lane, rows, events, before[lane] + next_position - 1)


def _post(found: list[tuple[Any, str]], balances: dict[str, int], position: Any,
          event: CardEvent | RegistryEvent, legs: Sequence[Leg]) -> None:
    """Every event's legs sum to zero (double entry), and add up per account."""
    total = 0
    for leg in legs:
        amount = leg.amount_minor
        total += amount
        balances[leg.account] = balances.get(leg.account, 0) + amount
    if total:
        found.append((position, f"log id {position}: {type(event).__name__}'s postings sum "
                                f"to {total}, not 0"))


def _compare_with_reply(found: list[tuple[Any, str]], position: Any, card: cards.CardState,
                        shown: Any) -> None:
    """What the engine told the caller about this card after this event (its stored reply,
    when the reply shows the card at exactly this version) against the card as replayed."""
    for name, said, replayed in (("balance", shown.balance_minor, card.balance_minor),
                                 ("status", shown.status, int(card.status)),
                                 ("tier", shown.tier, card.tier)):
        if said != replayed:
            found.append((position, f"log id {position}: the reply gave card "
                                    f"{card.card_number} {name} {said}, the replay {replayed}"))


def _compare_with_snapshots(store: EventStore, result: _ShareReport,
                            progress: Progress | None) -> None:
    streams = list(result.cards)
    if progress is not None:
        progress("cards", 0, len(streams))
    for start in range(0, len(streams), SNAPSHOT_CHUNK):
        chunk = streams[start:start + SNAPSHOT_CHUNK]
        ids = [uuid.UUID(bytes=stream) for stream in chunk]
        for position, tail in store.load_tails(ids, SNAPSHOT_TOPIC):
            if tail.snapshot is not None:  # cards without one (or an older kind): skipped
                result.counts["cards_compared"] += 1
                found = _compare_with_snapshot(result.cards[chunk[position]], tail)
                result.found_in_snapshots += [(result.first_seen[start + position], text)
                                              for text in found]
        if progress is not None:
            progress("cards", start + len(chunk), len(streams))


def _compare_with_snapshot(card: cards.CardState, tail: Any) -> list[str]:
    held = decode_card_state(tail.snapshot)
    try:
        held = cards.fold([decode_event(e) for e in tail.events],  # type: ignore[arg-type]
                          held)
    except Exception as error:
        return [f"card {card.card_number}: its events do not apply to its snapshot ({error})"]
    assert held is not None
    found = []
    if held.lots != card.lots:
        changed = sorted(k for k in held.lots.keys() | card.lots.keys()
                         if held.lots.get(k) != card.lots.get(k))
        found.append(f"card {card.card_number}: lots {', '.join(changed)} differ from what "
                     "the writer held")
    if held.points_written_off != card.points_written_off:
        found.append(f"card {card.card_number}: {card.points_written_off} points written off "
                     f"in the replay, {held.points_written_off} by the writer")
    return found


# ------------------------------------------------------------------ shares in other processes


def _replay_in_processes(store: EventStore, url: str, count: int, as_of_us: int | None,
                         total: int, progress: Progress | None) -> list[_ShareReport]:
    """Share 0 here, the others each in a process of its own (spawned: this one has threads
    and open connections), which reports its progress in shared memory and sends its result
    back through a pipe; the progress shown is the slowest share's."""
    context = multiprocessing.get_context("spawn")
    slots = context.Array("q", [0, 0, -1] * count, lock=False)  # position, cards done, of
    children = []
    try:
        for index in range(1, count):
            receive, send = context.Pipe(duplex=False)
            child = context.Process(target=_share_process, name=f"audit-share-{index}",
                                    args=(url, Share(index, count), as_of_us, total, slots,
                                          send), daemon=True)
            child.start()
            send.close()
            children.append((child, receive))
        show = _progress_of_all(slots, count, total, progress)
        results = [_replay_share(store, Share(0, count), as_of_us, total,
                                 _progress_in(slots, 0, show))]
        for index, (child, receive) in enumerate(children, start=1):
            while not receive.poll(0.1):
                show("", 0, 0)
            try:
                status, payload = receive.recv()
            except EOFError:
                child.join()
                raise RuntimeError(f"audit replay: share {index} of {count} ended without a "
                                   f"result (exit code {child.exitcode})") from None
            if status != "ok":
                raise RuntimeError(f"audit replay: share {index} of {count} failed:\n{payload}")
            results.append(_unpacked(payload))
            child.join()
        show("", 0, 0)
        return results
    finally:
        for child, receive in children:
            receive.close()
            if child.is_alive():
                child.terminate()
                child.join()


def _share_process(url: str, share: Share, as_of_us: int | None, total: int, slots: Any,
                   send: Any) -> None:
    gc.disable()  # as in the parent: see _replay_share
    try:
        store = open_store(url)
        try:
            result = _replay_share(store, share, as_of_us, total,
                                   _progress_in(slots, share.number, None))
        finally:
            store.close()
        send.send(("ok", _packed(result)))
    except BaseException:
        send.send(("error", traceback.format_exc()))
    finally:
        send.close()


def _packed(result: _ShareReport) -> _ShareReport:
    """The cards as their stored form (msgpack, as snapshots are written): pickling the
    structs field by field costs several times as much."""
    cards_encoded: Any = {stream: encode(card) for stream, card in result.cards.items()}
    return dataclasses.replace(result, cards=cards_encoded)


def _unpacked(result: _ShareReport) -> _ShareReport:
    return dataclasses.replace(result, cards={stream: decode_card_state(data)  # type: ignore[arg-type]
                                              for stream, data in result.cards.items()})


def _progress_in(slots: Any, index: int, then: Progress | None) -> Progress:
    """A share's progress hook: into its slots (and then shown, in this process)."""
    def write(phase: str, done: int, total: int) -> None:
        if phase == "log":
            slots[3 * index] = done
        else:
            slots[3 * index + 1], slots[3 * index + 2] = done, total
        if then is not None:
            then(phase, done, total)
    return write


def _progress_of_all(slots: Any, count: int, total: int,
                     progress: Progress | None) -> Progress:
    """Shows the log phase until every share is through the log (ending at 100 %), then the
    cards of all."""
    through = [False]

    def show(_phase: str, _done: int, _total: int) -> None:
        if progress is None:
            return
        position = min(slots[3 * i] for i in range(count))
        if position < total:
            progress("log", position, total)
            return
        if not through[0]:
            through[0] = True
            progress("log", total, total)
        if all(slots[3 * i + 2] >= 0 for i in range(count)):
            progress("cards", sum(slots[3 * i + 1] for i in range(count)),
                     sum(slots[3 * i + 2] for i in range(count)))
    return show


def check_purchase(state: registry.RegistryState, before: cards.CardState,
                   event: ev.PurchaseMade) -> list[str]:
    """The differences between a recorded purchase and the reference evaluator run on the
    versions it pinned and the card as it was before it (empty when they agree)."""
    pinned: list[RuleSet] = []
    for ref in event.rule_sets:
        rule_set_id, version = ref.rsplit("@", 1)
        versions = state.rule_sets.get(rule_set_id, [])
        if not version.isdigit() or not 1 <= int(version) <= len(versions):
            return [f"pins {ref}, which was never published before it"]
        pinned.append(versions[int(version) - 1])
    merged = RuleSet(rule_set_id="replay", version=1, scope="alliance", valid_from_us=0,
                     valid_to_us=1, rules=tuple(r for s in pinned for r in s.rules))
    basket = Basket(lines=event.lines, card_class=before.card_class, tier=before.tier,
                    weekday=event.weekday, minute_of_day=event.minute_of_day)
    award = evaluate(merged, basket)
    origin = [(ref, r.rule_id) for ref, s in zip(event.rule_sets, pinned, strict=True)
              for r in s.rules]
    awards = tuple(RuleAward(*origin[i], award.by_rule.get(i, 0),
                             award.discount_by_rule.get(i, 0))
                   for i in sorted(set(award.by_rule) | set(award.discount_by_rule)))
    basket_only = Evaluation(award.points, award.eligible_minor, event.rule_sets, awards,
                             award.discount_minor)
    total = sum(line.amount_minor for line in event.lines)
    # the rules on the card's history, from the card as it was before the purchase
    evaluation, stamps = stateful.apply(before, tuple(pinned), basket, event.local_date,
                                        basket_only, total - award.discount_minor)
    found: list[str] = []
    if event.discount_minor != evaluation.discount_minor:
        found.append(f"discount {event.discount_minor}, the reference gives "
                     f"{evaluation.discount_minor}")
    if event.stamps != stamps:
        found.append("stamps differ from the reference's")
    earned = (event.lot.amount if event.lot is not None else 0) + event.debt_settled
    if earned != evaluation.points:
        found.append(f"earns {earned} points, the reference evaluator with the pinned "
                     f"versions gives {evaluation.points}")
    if event.lot is None:
        return found
    if event.lot.rule_set != ",".join(event.rule_sets):
        found.append(f"its lot names {event.lot.rule_set!r}, the purchase pinned "
                     f"{','.join(event.rule_sets)!r}")

    def explained(given: tuple[RuleAward, ...]) -> dict[tuple[str, str], tuple[int, int]]:
        return {(a.rule_set, a.rule_id): (a.points, a.discount_minor) for a in given}
    if explained(event.awards) != explained(evaluation.awards):
        found.append("its explanation differs from the reference's, rule by rule")
    return found


def _as_of(as_of_us: int | None) -> str:
    from domain.common import format_time_us

    return "" if as_of_us is None else f" recorded by {format_time_us(as_of_us)}"


class ProgressBar:
    """`audit replay: log [#######.............] 35% 12,345/35,000` on one line of a
    terminal (stderr), redrawn at most ten times a second."""

    WIDTH = 30

    def __init__(self, out: TextIO, label: str) -> None:
        self.out = out
        self.label = label
        self._drawn_at = 0.0
        self._phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.monotonic()
        if phase == self._phase and done < total and now - self._drawn_at < 0.1:
            return
        if self._phase and phase != self._phase:
            self.out.write("\n")
        self._phase, self._drawn_at = phase, now
        share = done / total if total else 1.0
        filled = int(self.WIDTH * share)
        self.out.write(f"\r{self.label}: {phase:5} [{'#' * filled}{'.' * (self.WIDTH - filled)}]"
                       f" {share:4.0%} {done:,}/{total:,}")
        self.out.flush()

    def end(self) -> None:
        if self._phase:
            self.out.write("\n")
            self.out.flush()


def figures(report: AuditReport) -> dict[str, Any]:
    """Every card's figures and every account's balance, as rebuilt (`audit replay --out`)."""
    return {
        "as_of_us": report.as_of_us,
        "cards": {card.card_number: {
            "status": int(card.status), "currency": card.currency,
            "balance_minor": card.balance_minor, "held_minor": card.held_minor,
            "pending_holds": sum(1 for h in card.holds.values()
                                 if h.status == cards.HoldStatus.PENDING),
            "points_by_program": {program or "own": sum(lot.remaining for lot in lots)
                                  for program, lots in _by_program(card).items()},
            "points_debt": card.points_debt, "tier": card.tier,
            "live_coupons": len(card.coupons), "stamps": dict(card.stamps),
            "version": card.version} for card in report.cards.values()},
        "balances": dict(sorted(report.balances.items())),
    }


def _by_program(card: cards.CardState) -> dict[str, list[Any]]:
    grouped: dict[str, list[Any]] = {}
    for lot in card.lots.values():
        grouped.setdefault(lot.program, []).append(lot)
    return grouped


def audit_replay(store: EventStore, out: TextIO | None = None,
                 err: TextIO | None = None, as_of_us: int | None = None,
                 figures_to: str = "") -> int:
    """The command: 0 when everything equals the replay, 1 with the differences listed."""
    out, err = out or sys.stdout, err or sys.stderr
    bar = ProgressBar(err, "audit replay")
    report = replay(store, bar, as_of_us)
    bar.end()
    if figures_to:
        with open(figures_to, "w") as f:
            json.dump(figures(report), f, indent=1)
    summary = (f"{report.events:,} events{_as_of(as_of_us)}, {report.purchases:,} purchases "
               f"re-evaluated with their pinned rule-set versions, {report.postings:,} "
               f"postings summed to zero, {len(report.cards):,} cards and "
               f"{len(report.balances):,} account balances rebuilt, "
               f"{report.replies_compared:,} compared with the replies the engine gave, "
               f"{report.cards_compared:,} lot by lot with the writer's snapshots")
    if report.ok:
        print(f"audit replay: OK ({summary})", file=out)
        return 0
    print(f"audit replay: {len(report.differences)} differences ({summary}):", file=out)
    for difference in report.differences:
        print(f"  {difference}", file=out)
    return 1
