"""What reconciliation and settlement payments read (issue 9, sections 3 and 4): the ledger's
side of a partner's period, its export, and the instructions a payment settles.

The ledger's side is read from the log between the period's close markers, not from the
movements read model: a period is a range of log positions (after the previous close, up to
its own), and `proj_movements` keeps no log position (it is keyed by card and version for
ListMovements' pages) nor an index by store; choosing its rows by their time would put the
movements committed around a close in the wrong period when several processes write. The log
range is exact and never changes once the period is closed, so a run is repeatable. On the
split log (ledger/partitioned.py) the period is a range in each card lane, between that lane's
marks of the close (`closed_ranges`); a run waits (StillWriting) until every lane has its
mark. Only the
kinds a journal records are decoded (the row's topic is looked at first). Cost: one pass over
the period's rows, in a batch job off the authorization path. Each card's currency comes from
the settlement read model (`proj_settlement_cards`), caught up with the periods.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping

from domain.cards import events as ev
from domain.common import InvalidInput, shown
from domain.reconcile.journal import TYPES, JournalRow, check_rows
from domain.reconcile.matching import Matching, match
from domain.registry import decide as registry
from domain.settlement.payments import Due
from ledger import limits
from ledger.codec import REGISTRY_ID, decode_event
from ledger.refusals import StillWriting
from ledger.store import EventStore
from projections.movements import movement_kind
from projections.runner import ProjectionRunner, log_rows
from projections.settlement import _currencies, lanes_behind, period_statements, periods


class TooLarge(Exception):
    """More movements in the partner's period than one run may hold."""


def _tag(event_type: type) -> str:
    return event_type.__struct_config__.tag  # type: ignore[attr-defined, no-any-return]


# The card events whose movement kinds a journal records (journal.TYPES; a test keeps them
# equal through projections.movements.KINDS).
JOURNAL_EVENTS = (ev.ValueLoaded, ev.LoadReversed, ev.AuthorizationCaptured,
                  ev.CaptureReversed, ev.ValueRefunded, ev.PurchaseMade, ev.PurchaseReturned)
_TOPICS = frozenset(_tag(t) for t in JOURNAL_EVENTS)


def registry_now(store: EventStore) -> registry.RegistryState:
    """The registry as the log holds it now (for readers without a running writer)."""
    state = registry.RegistryState()
    for stored in store.stream(REGISTRY_ID):
        registry.evolve(state, decode_event(stored.state))  # type: ignore[arg-type]
    return state


def closed_range(runner: ProjectionRunner, period_id: int) -> tuple[int, int]:
    """(first, last) log position of a closed period; InvalidInput `period_id` otherwise.
    One log only: a split log's period is a range per card lane (`closed_ranges`)."""
    known = periods(runner)  # caught up to the log's end
    open_id = known[-1].period_id
    if not 1 <= period_id < open_id:
        raise InvalidInput("period_id", f"period {period_id} is not a closed period (closed: "
                           f"1..{open_id - 1}; period {open_id} is open)" if open_id > 1 else
                           f"period {period_id} is not a closed period (none is closed yet)")
    first = known[period_id - 2].position + 1 if period_id > 1 else 1
    return first, known[period_id - 1].position


def closed_ranges(runner: ProjectionRunner, period_id: int) -> dict[int, tuple[int, int]]:
    """lane -> (first, last) notification id of a closed period in that lane. One log: lane 0,
    between the registry's close markers (`closed_range`). The split log: each card lane
    between its own marks (`SettlementPeriodMarked`, its marks stream at version = period id,
    projections/settlement.py): the card rows of a period are the lane's rows after the
    previous period's mark up to this one's; the registry's lane holds no card rows.
    StillWriting while a lane's mark of the period is not written and applied yet (the
    ledger writes the marks after the close)."""
    whole = closed_range(runner, period_id)  # a closed period; the settlement model caught up
    store = runner.store
    if not store.split:
        return {0: whole}
    if lanes_behind(runner, period_id):
        runner.catch_up()  # marks written since the catch-up above
    behind = lanes_behind(runner, period_id)
    if behind:
        raise StillWriting(f"period {period_id} is closed but its marks have not reached "
                           f"card partitions {', '.join(str(lane - 1) for lane in behind)} "
                           "yet (the ledger writes them after the close); retry shortly")
    ranges: dict[int, tuple[int, int]] = {}
    for lane in store.lanes()[1:]:
        marks = store.marks_stream(lane)  # type: ignore[attr-defined]
        last = store.position_of(marks, period_id)
        first = store.position_of(marks, period_id - 1) + 1 if period_id > 1 else 1
        assert last > 0, (lane, period_id)  # applied by the model, so written
        ranges[lane] = (first, last)
    return ranges


def ledger_rows(runner: ProjectionRunner, partner_id: str, period_id: int,
                stores: Mapping[str, object],
                rows_max: int | None = None) -> list[tuple[JournalRow, int]]:
    """(movement, recorded_at_us) of every journal kind at `stores` (the partner's) in the
    closed period, in log order (a split log: lane after lane, each in its order). TooLarge
    past `rows_max` (default limits.RECONCILE_LEDGER_ROWS_MAX)."""
    if rows_max is None:
        rows_max = limits.RECONCILE_LEDGER_ROWS_MAX
    store = runner.store
    found: list[tuple[uuid.UUID, str, str, str, int, int]] = []
    for lane, (first, last) in closed_ranges(runner, period_id).items():
        for row in log_rows(store, _TOPICS, limits.PROJECTION_BATCH_ROWS, first=first,
                            last=last, lane=lane):
            event = decode_event(row.state)
            meta = event.meta
            if meta.store_id not in stores:
                continue
            kind, amount = movement_kind(event)  # type: ignore[arg-type]
            assert kind in TYPES, kind
            found.append((row.originator_id, meta.store_id, meta.request_id, kind, amount,
                          meta.recorded_at_us))
            if len(found) > rows_max:
                raise TooLarge(f"partner {partner_id} has more than {rows_max} movements in "
                               f"period {period_id}: more than one run may hold")
    with store.session(commit=False) as session:
        currencies = _currencies(session, {f[0] for f in found})
    return [(JournalRow(store_id, reference, kind, amount, currencies[card]), at_us)
            for card, store_id, reference, kind, amount, at_us in found]


def partner_stores(state: registry.RegistryState, partner_id: str) -> dict[str, str]:
    """store id -> time zone of the partner's stores; InvalidInput for an unknown partner."""
    if partner_id not in state.partners:
        raise InvalidInput("partner_id", f"unknown partner {shown(partner_id)}")
    return {s.store_id: s.timezone for s in state.stores.values() if s.partner_id == partner_id}


def transfer_due(runner: ProjectionRunner, period_id: int, currency: str, payer_id: str,
                 payee_id: str) -> tuple[Due, ...]:
    """The instructions of the transfer payer -> payee in a closed period (CASH, then VOUCHER;
    empty when there is none)."""
    closed_range(runner, period_id)
    _, found = period_statements(runner, period_id)
    return tuple(Due(i.instruction_id, i.amount_minor) for i in found
                 if (i.currency, i.payer_id, i.payee_id) == (currency, payer_id, payee_id))


def run_matching(runner: ProjectionRunner, partner_id: str, period_id: int,
                 rows: list[JournalRow], prefix: str = "rows") -> Matching:
    """Check the rows (InvalidInput `rows[i].column`; a store not the partner's included) and
    match them against the ledger's side of the partner's closed period."""
    stores = partner_stores(registry_now(runner.store), partner_id)
    checked = check_rows(rows, stores, partner_id, prefix)
    ours = [row for row, _ in ledger_rows(runner, partner_id, period_id, stores)]
    return match(checked, ours, f"{partner_id}/{period_id}")
