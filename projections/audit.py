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
"""

from __future__ import annotations

import concurrent.futures
import json
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgspec

from domain.cards import decide as cards
from domain.cards import events as ev
from domain.cards.events import CardEvent, RuleAward
from domain.common import Meta, Role
from domain.postings import Leg
from domain.purchases import stateful
from domain.purchases.evaluation import Evaluation
from domain.registry import decide as registry
from domain.registry.events import RegistryEvent
from domain.rules.model import Basket, RuleSet
from domain.rules.reference import evaluate
from ledger.codec import (
    SNAPSHOT_TOPIC,
    Outcome,
    decode_card_state,
    decode_event,
    decode_outcome,
)
from ledger.store import EventStore

PAGE_ROWS = 2_000  # log rows per read; progress is shown once per page at most

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


def replay(store: EventStore, progress: Progress | None = None,
           as_of_us: int | None = None) -> AuditReport:
    """The whole log, or with `as_of_us` the events recorded by then: every card and account
    balance rebuilt, every purchase re-evaluated, every posting summed, every stored reply
    (while its request key is kept: the retry window) compared with the card as replayed, and
    without `as_of_us` every card compared with the writer's snapshot."""
    report = AuditReport(as_of_us=as_of_us)
    state = registry.RegistryState()
    total = store.max_notification_id()
    position = 0
    for page, decoded, replies in _pages(store, as_of_us):
        for row, event in decoded:
            report.events += 1
            legs = getattr(event, "legs", None)
            if legs:
                _post(report, row.id, event, legs)
            if isinstance(event, RegistryEvent):  # (the registry's stream: REGISTRY_ID)
                registry.evolve(state, event)
                continue
            before = report.cards.get(row.originator_id)
            if isinstance(event, ev.PurchaseMade):
                report.purchases += 1
                if before is None:
                    report.differences.append(f"log id {row.id}: a purchase on a card that "
                                              "was never issued")
                    continue
                found = check_purchase(state, before, event)
                report.lots += event.lot is not None
                report.differences += [f"purchase {event.purchase_id} (log id {row.id}): {d}"
                                       for d in found]
            try:
                after = report.cards[row.originator_id] = cards.evolve(before, event)
            except Exception as error:  # a tampered event may not apply at all
                report.differences.append(f"log id {row.id}: {type(event).__name__} does not "
                                          f"apply to the card as replayed ({error})")
                continue
            if after.balance_minor - after.held_minor < 0:
                report.differences.append(f"log id {row.id}: card {after.card_number} "
                                          f"available {after.balance_minor - after.held_minor}"
                                          " (below zero)")
            if replies:
                _compare_with_reply(report, row.id, after, replies.get(_key_of(event.meta)))
        position = page[-1].id
        if progress is not None:
            progress("log", min(position, total), total)
    if as_of_us is None:
        _compare_with_snapshots(store, report, progress)
    return report


Page = tuple[Sequence[Any], list[tuple[Any, Any]], dict[tuple[str, str], Outcome]]


def _pages(store: EventStore, as_of_us: int | None) -> Iterator[Page]:
    """The log a page at a time, decoded, with the stored replies of its requests; the next
    page is read (rows and replies: two queries) on a thread while this one is replayed."""

    def fetch(start: int) -> Page | None:
        page = store.read_log(start, PAGE_ROWS)
        if not page:
            return None
        decoded = [(row, decode_event(row.state)) for row in page]
        if as_of_us is not None:
            decoded = [(r, e) for r, e in decoded if e.meta.recorded_at_us <= as_of_us]
        return page, decoded, _stored_replies(store, [e for _, e in decoded])

    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="audit-read") as pool:
        pending = pool.submit(fetch, 1)
        while (fetched := pending.result()) is not None:
            pending = pool.submit(fetch, fetched[0][-1].id + 1)
            yield fetched


def _post(report: AuditReport, position: int, event: CardEvent | RegistryEvent,
          legs: Sequence[Leg]) -> None:
    """Every event's legs sum to zero (double entry), and add up per account."""
    report.postings += 1
    balances = report.balances
    total = 0
    for leg in legs:
        amount = leg.amount_minor
        total += amount
        balances[leg.account] = balances.get(leg.account, 0) + amount
    if total:
        report.differences.append(f"log id {position}: {type(event).__name__}'s postings sum "
                                  f"to {total}, not 0")


def _key_of(meta: Meta) -> tuple[str, str]:
    """The request key an event's request was stored under (ledger.work.key_space_of)."""
    if meta.role == Role.TERMINAL or (meta.role == Role.GATEWAY and meta.terminal_id):
        return "t:" + meta.terminal_id, meta.request_id
    return "c:" + meta.credential_id, meta.request_id


def _stored_replies(store: EventStore,
                    events: list[CardEvent | RegistryEvent]) -> dict[tuple[str, str], Outcome]:
    """The replies the engine gave for a page's requests, where their keys are still kept."""
    found = store.find_keys(_key_of(e.meta) for e in events
                            if isinstance(e, CardEvent) and e.meta.request_id)
    replies = {}
    for pair, key in found.items():
        if key.payload_hash and key.outcome:
            try:
                replies[pair] = decode_outcome(key.outcome)
            except (msgspec.DecodeError, msgspec.ValidationError):
                continue
    return replies


def _compare_with_reply(report: AuditReport, position: int, card: cards.CardState,
                        reply: Outcome | None) -> None:
    """What the engine told the caller about this card after this event (its stored reply,
    when the reply shows the card at exactly this version) against the card as replayed."""
    shown = reply.card if reply is not None else None
    if shown is None or shown.card_number != card.card_number or shown.version != card.version:
        return
    report.replies_compared += 1
    for name, said, replayed in (("balance", shown.balance_minor, card.balance_minor),
                                 ("status", shown.status, int(card.status)),
                                 ("tier", shown.tier, card.tier)):
        if said != replayed:
            report.differences.append(f"log id {position}: the reply gave card "
                                      f"{card.card_number} {name} {said}, the replay {replayed}")
    if card.balance_minor - card.held_minor < 0:
        report.differences.append(f"log id {position}: card {card.card_number} available "
                                  f"{card.balance_minor - card.held_minor} (below zero)")


SNAPSHOT_CHUNK = 500  # cards whose snapshots and later events are read in one query


def _compare_with_snapshots(store: EventStore, report: AuditReport,
                            progress: Progress | None) -> None:
    streams = list(report.cards)
    done = 0
    for start in range(0, len(streams), SNAPSHOT_CHUNK):
        chunk = streams[start:start + SNAPSHOT_CHUNK]
        for position, tail in store.load_tails(chunk, SNAPSHOT_TOPIC):
            if tail.snapshot is not None:  # cards without one (or an older kind): skipped
                _compare_with_snapshot(report, report.cards[chunk[position]], tail)
        done += len(chunk)
        if progress is not None:
            progress("cards", done, len(streams))


def _compare_with_snapshot(report: AuditReport, card: cards.CardState, tail: Any) -> None:
    report.cards_compared += 1
    held = decode_card_state(tail.snapshot)
    try:
        held = cards.fold([decode_event(e) for e in tail.events],  # type: ignore[arg-type]
                          held)
    except Exception as error:
        report.differences.append(f"card {card.card_number}: its events do not apply to its "
                                  f"snapshot ({error})")
        return
    assert held is not None
    if held.lots != card.lots:
        changed = sorted(k for k in held.lots.keys() | card.lots.keys()
                         if held.lots.get(k) != card.lots.get(k))
        report.differences.append(f"card {card.card_number}: lots {', '.join(changed)} "
                                  "differ from what the writer held")
    if held.points_written_off != card.points_written_off:
        report.differences.append(
            f"card {card.card_number}: {card.points_written_off} points written off in "
            f"the replay, {held.points_written_off} by the writer")


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
