"""Settlement as a read model on the projection runner: every movement's legs summed into what
one entity owes another, per settlement period, currency and category, and the statements and
instructions of a closed period computed from those sums (domain.settlement).

A movement belongs to the period that was open when it was committed: the runner applies the
log in order and the close is a row of the log (`SettlementPeriodClosed`), so each row lands in
exactly one period whatever the number of server processes. Rows and the position are written
in one transaction (projections/runner.py), so a period's sums are exact once its marker has
been applied.

Tables (plain SQL, for a finance team's own tools too; dropped and rebuilt from the log by
`ProjectionRunner.rebuild`):
- `proj_settlement_totals(period_id, currency, payer, payee, category, amount_minor)`: signed
  sums of the flows of `domain.settlement.legs` (category numbers: `domain.settlement.model`);
- `proj_settlement_periods(period_id, closed_at_us, position, note)`: one row per close;
- `proj_settlement_cards(stream_id, currency)`: each card's currency (legs carry none);
- `proj_settlement_commission(period_id, currency, issuer, acquirer, agreement_id, version,
  bps, paid_by, base_minor)`: stored value spent across per pair and agreement version in
  force when it was spent (its rate and payer copied, so a statement needs nothing else); the
  commission is computed on each row's sum, rounded half up (`agreements.commission`);
- `proj_settlement_payments(position, part, period_id, currency, payer, payee, instruction_id,
  amount_minor, reference, recorded_at_us)`: each payment recorded against an instruction of a
  closed period (domain/settlement/payments.py), one row per instruction it paid.

Agreements (domain.settlement.agreements) are read from the registry rows of the log as they
come; they are never back-dated, so a movement meets the terms in force when it was recorded,
live or on a rebuild. The voucher share of each payer is the one in force at the period's
close (for the open period: now).
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import msgspec

from domain import postings
from domain.cards import events as ev
from domain.common import InvalidInput
from domain.registry.events import (
    AgreementPublished,
    ProgramDefined,
    SettlementPaymentRecorded,
    SettlementPeriodClosed,
    SettlementPeriodMarked,
)
from domain.settlement import legs as settlement_legs
from domain.settlement.agreements import BPS, Agreement, Agreements, Payer, commission
from domain.settlement.instructions import Instruction, Payment, instructions
from domain.settlement.model import Category
from domain.settlement.statements import StatementSet, statements
from ledger import limits
from ledger.codec import REGISTRY_ID, decode_event
from ledger.refusals import StillWriting
from ledger.store import EventStore, LogRow, Session
from projections.runner import ProjectionRunner, SharedLog, bulk

Key = tuple[int, str, str, str, int]  # (period, currency, payer, payee, category)


class Period(msgspec.Struct, frozen=True):
    period_id: int
    closed_at_us: int  # 0: still open
    position: int  # the close's log position (0: still open)
    note: str


def _tag(event_type: type) -> str:
    return event_type.__struct_config__.tag  # type: ignore[attr-defined, no-any-return]


# Card events whose legs may cross entities, and the rest this model reads.
_FLOWS = settlement_legs.FLOW_TOPICS
_MARKED = _tag(SettlementPeriodMarked)
_TOPICS = _FLOWS | {_tag(ev.CardIssued), _tag(ev.CardIssuedAsReplacement),
                    _tag(SettlementPeriodClosed), _tag(AgreementPublished),
                    _tag(SettlementPaymentRecorded), _MARKED}
CommissionKey = tuple[int, str, str, str, str, int, int, int]
CARDS_KEPT = 200_000  # card currencies kept in memory (~100 bytes each)
MICROS = 1_000_000


class SettlementModel:
    name = "settlement"

    def __init__(self) -> None:
        # Every published version (read whole from the registry on first use: versions are
        # never back-dated, so one published later never applies to an earlier movement),
        # and each program's currency (its owner -> currency; a program's currency is set
        # when it is defined: exchanges settle in it).
        self.agreements: Agreements | None = None
        self.program_currency: dict[str, str] = {}
        # Each card's currency (by its stream id as an int), a fact that never changes: read
        # from proj_settlement_cards once, not for every batch that meets the card.
        self.currencies: dict[int, str] = {}

    def create(self, session: Session) -> None:
        blob = "BLOB" if session.dialect == "sqlite" else "BYTEA"
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_totals (period_id BIGINT NOT NULL, "
            "currency TEXT NOT NULL, payer TEXT NOT NULL, payee TEXT NOT NULL, "
            "category INTEGER NOT NULL, amount_minor BIGINT NOT NULL, "
            "PRIMARY KEY (period_id, currency, payer, payee, category))")
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_periods (period_id BIGINT PRIMARY KEY,"
            " closed_at_us BIGINT NOT NULL, position BIGINT NOT NULL, note TEXT NOT NULL)")
        session.execute(
            f"CREATE TABLE IF NOT EXISTS proj_settlement_cards (stream_id {blob} PRIMARY KEY, "
            "currency TEXT NOT NULL)")
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_point_rates (period_id BIGINT NOT NULL,"
            " currency TEXT NOT NULL, payer TEXT NOT NULL, payee TEXT NOT NULL, "
            "category INTEGER NOT NULL, agreement_id TEXT NOT NULL, version INTEGER NOT NULL, "
            "micros INTEGER NOT NULL, bps INTEGER NOT NULL, points BIGINT NOT NULL, "
            "value_minor BIGINT NOT NULL, PRIMARY KEY (period_id, currency, payer, payee, "
            "category, agreement_id, version))")
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_commission (period_id BIGINT NOT NULL, "
            "currency TEXT NOT NULL, issuer TEXT NOT NULL, acquirer TEXT NOT NULL, "
            "agreement_id TEXT NOT NULL, version INTEGER NOT NULL, bps INTEGER NOT NULL, "
            "paid_by INTEGER NOT NULL, base_minor BIGINT NOT NULL, PRIMARY KEY (period_id, "
            "currency, issuer, acquirer, agreement_id, version))")
        session.execute(
            "CREATE TABLE IF NOT EXISTS proj_settlement_payments (position BIGINT NOT NULL, "
            "part INTEGER NOT NULL, period_id BIGINT NOT NULL, currency TEXT NOT NULL, "
            "payer TEXT NOT NULL, payee TEXT NOT NULL, instruction_id TEXT NOT NULL, "
            "amount_minor BIGINT NOT NULL, reference TEXT NOT NULL, "
            "recorded_at_us BIGINT NOT NULL, PRIMARY KEY (position, part))")
        # The split log: each card lane's open period (1 + its last mark applied).
        session.execute("CREATE TABLE IF NOT EXISTS proj_settlement_lanes (lane INTEGER "
                        "PRIMARY KEY, period_id BIGINT NOT NULL)")

    def drop(self, session: Session) -> None:
        for table in ("proj_settlement_totals", "proj_settlement_periods",
                      "proj_settlement_cards", "proj_settlement_commission",
                      "proj_settlement_point_rates",
                      "proj_settlement_payments", "proj_settlement_lanes"):
            session.execute(f"DROP TABLE IF EXISTS {table}")
        self.agreements = None

    def prepare(self, store: EventStore, rows: Sequence[LogRow]) -> Any:
        # Only the kinds that can owe something, open a card or close a period are decoded
        # (an authorization's legs stay on its card): half the log or more is passed over.
        relevant = [row for row in rows if row.topic in _TOPICS]
        currencies = self.currencies
        if len(currencies) > CARDS_KEPT:
            currencies.clear()
        unknown = {row.originator_id.int for row in relevant if row.topic in _FLOWS}
        unknown.difference_update(currencies.keys())
        # With the log split, a card lane's rows are in the period its marks say (a batch is
        # one lane's rows); the registry's lane, or the one log, counts the closes.
        lane = store.lane_of(rows[0].originator_id) if store.split and rows else 0
        with store.session(commit=False) as session:
            if lane:
                found = session.query("SELECT period_id FROM proj_settlement_lanes "
                                      "WHERE lane = ?", (lane,))
                period = int(found[0][0]) if found else 1
            else:
                found = session.query("SELECT max(period_id) FROM proj_settlement_periods")
                period = int(found[0][0] or 0) + 1
            currencies.update(_card_currencies(session, unknown))
        lane_period = period
        registry = REGISTRY_ID.int
        sums: dict[Key, int] = defaultdict(int)
        bases: dict[CommissionKey, int] = defaultdict(int)
        rates: dict[tuple[Any, ...], tuple[int, int]] = defaultdict(lambda: (0, 0))
        closes: list[tuple[int, int, int, str]] = []
        new_cards: list[tuple[bytes, str]] = []
        paid: list[tuple[Any, ...]] = []
        if self.agreements is None:
            self.agreements, self.program_currency = registry_terms(store)
        agreements = self.agreements
        for row in relevant:
            event = decode_event(row.state)
            stream = row.originator_id.int
            if stream == registry:
                if isinstance(event, AgreementPublished | ProgramDefined):
                    _learn(agreements, self.program_currency, event)
                elif isinstance(event, SettlementPeriodClosed):
                    assert event.period_id == period, (event.period_id, period)
                    closes.append((period, event.meta.recorded_at_us, row.id, event.note))
                    period += 1
                elif isinstance(event, SettlementPaymentRecorded):
                    paid += [(row.id, index, event.period_id, event.currency, event.payer_id,
                              event.payee_id, part.instruction_id, part.amount_minor,
                              event.reference, event.meta.recorded_at_us)
                             for index, part in enumerate(event.parts)]
                continue
            if row.topic == _MARKED:  # the split log's close, in this card lane
                assert isinstance(event, SettlementPeriodMarked)
                period = max(period, event.period_id + 1)
                continue
            if isinstance(event, ev.CardIssued | ev.CardIssuedAsReplacement):
                currencies[stream] = event.currency
                new_cards.append((row.originator_id.bytes, event.currency))
                continue
            legs = getattr(event, "legs", ())
            if not legs:
                continue
            currency = settlement_legs.flow_currency(
                event, currencies[stream], self.program_currency)  # type: ignore[arg-type]
            at_us = event.meta.recorded_at_us  # type: ignore[union-attr]
            for payer, payee, category, amount in settlement_legs.flows(legs):
                sums[(period, currency, payer, payee, category)] += amount
                if not agreements.versions:
                    continue
                terms = agreements.for_pair(payer, payee, at_us)
                if terms is None:
                    continue
                if category == Category.SV_SPENT_ACROSS and terms.sv_commission_bps:
                    bases[(period, currency, payer, payee, terms.agreement_id,
                           terms.version, terms.sv_commission_bps,
                           terms.commission_paid_by)] += amount
                rate = point_rate(category, terms)
                if rate is not None:
                    key = (period, currency, payer, payee, category, terms.agreement_id,
                           terms.version, *rate)
                    points = settlement_legs.points_of(event, category)  # type: ignore[arg-type]
                    rates[key] = (rates[key][0] + points, rates[key][1] + amount)
            if type(event) is ev.PointsExchanged and agreements.versions:
                # the exchange fee stays with the source program's owner unless the two
                # owners' agreement names another earner: then the owner pays it over
                terms = agreements.for_pair(event.from_program, event.to_program, at_us)
                earner = terms.exchange_fee_earner if terms is not None else ""
                if earner and earner != event.from_program:
                    fee_account = postings.exchange_fee(event.from_program)
                    fee = sum(leg.amount_minor for leg in legs if leg.account == fee_account)
                    if fee:
                        sums[(period, currency, event.from_program, earner,
                              Category.FEE)] += fee
        return ([(*key, amount) for key, amount in sums.items() if amount], closes, new_cards,
                [(*key, amount) for key, amount in bases.items() if amount], paid,
                [(*key, *figures) for key, figures in rates.items() if any(figures)],
                (lane, period) if lane and period != lane_period else None)

    def write(self, session: Session, prepared: Any) -> None:
        totals, closes, new_cards, bases, paid, rates, lane_period = prepared
        if lane_period is not None:
            session.execute("INSERT INTO proj_settlement_lanes (lane, period_id) VALUES (?, ?)"
                            " ON CONFLICT (lane) DO UPDATE SET period_id = excluded.period_id",
                            lane_period)
        session.executemany(
            "INSERT INTO proj_settlement_point_rates (period_id, currency, payer, payee, "
            "category, agreement_id, version, micros, bps, points, value_minor) VALUES (?, ?, "
            "?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (period_id, currency, payer, payee, "
            "category, agreement_id, version) DO UPDATE SET points = "
            "proj_settlement_point_rates.points + excluded.points, value_minor = "
            "proj_settlement_point_rates.value_minor + excluded.value_minor", rates)
        session.executemany(
            "INSERT INTO proj_settlement_payments (position, part, period_id, currency, payer, "
            "payee, instruction_id, amount_minor, reference, recorded_at_us) VALUES "
            "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", paid)
        session.executemany(
            "INSERT INTO proj_settlement_commission (period_id, currency, issuer, acquirer, "
            "agreement_id, version, bps, paid_by, base_minor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
            "?) ON CONFLICT (period_id, currency, issuer, acquirer, agreement_id, version) DO "
            "UPDATE SET base_minor = proj_settlement_commission.base_minor + "
            "excluded.base_minor", bases)
        bulk(session, "INSERT INTO proj_settlement_cards (stream_id, currency)",
             ("bytea", "text"), new_cards, "ON CONFLICT (stream_id) DO NOTHING")
        session.executemany(
            "INSERT INTO proj_settlement_totals (period_id, currency, payer, payee, category, "
            "amount_minor) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (period_id, currency, payer, "
            "payee, category) DO UPDATE SET amount_minor = "
            "proj_settlement_totals.amount_minor + excluded.amount_minor", totals)
        session.executemany(
            "INSERT INTO proj_settlement_periods (period_id, closed_at_us, position, note) "
            "VALUES (?, ?, ?, ?)", closes)


def point_rate(category: int, terms: Agreement) -> tuple[int, int] | None:
    """(micro-minor units per point, billed basis points) an agreement sets for a points flow,
    or None: then the points settle at the program's point value, as their legs say."""
    if category == Category.POINTS_REDEEMED_ACROSS and terms.points_reimbursement_micros:
        return terms.points_reimbursement_micros, BPS
    if category == Category.POINTS_ISSUED_ACROSS and terms.points_price_micros:
        return terms.points_price_micros, terms.points_billing_bps
    return None


def agreed_value(points: int, micros: int, bps: int) -> int:
    """`points` at `micros` each, `bps` of it billed, rounded half up once (on the period's
    sum per pair and agreement version)."""
    scale = MICROS * BPS
    return (2 * points * micros * bps + scale) // (2 * scale)


def _learn(agreements: Agreements, program_currency: dict[str, str],
           event: AgreementPublished | ProgramDefined) -> None:
    """Learn an agreement version (once: a model restarted mid-log learns the registry first)
    or a program's currency (its first definition's)."""
    if isinstance(event, ProgramDefined):
        program_currency.setdefault(event.program.owner, event.program.currency)
        return
    known = agreements.versions.get(event.agreement.agreement_id, [])
    if not known or known[-1].version < event.agreement.version:
        agreements.add(event.agreement)


def _currencies(session: Session, stream_ids: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """The currencies of these cards, by stream id (projections/reconcile.py)."""
    found = _card_currencies(session, {i.int for i in stream_ids})
    return {uuid.UUID(int=i): currency for i, currency in found.items()}


def _card_currencies(session: Session, stream_ids: set[int]) -> dict[int, str]:
    """The currencies of these cards, by stream id as an int."""
    found: dict[int, str] = {}
    ids = sorted(stream_ids)
    for start in range(0, len(ids), limits.PROJECTION_STATES_PER_QUERY):
        chunk = [i.to_bytes(16, "big")
                 for i in ids[start:start + limits.PROJECTION_STATES_PER_QUERY]]
        marks = ", ".join("?" * len(chunk))
        for stream_id, currency in session.query(
                "SELECT stream_id, currency FROM proj_settlement_cards "
                f"WHERE stream_id IN ({marks})", chunk):
            found[int.from_bytes(bytes(stream_id), "big")] = currency
    return found


def settlement_runner(store: EventStore, log: SharedLog | None = None) -> ProjectionRunner:
    return ProjectionRunner(store, SettlementModel(), log=log)


# ------------------------------------------------------------------------------ reads


def periods(runner: ProjectionRunner) -> list[Period]:
    """Every closed period, oldest first, then the open one."""
    runner.catch_up()
    with runner.store.session(commit=False) as session:
        rows = session.query("SELECT period_id, closed_at_us, position, note "
                             "FROM proj_settlement_periods ORDER BY period_id")
    closed = [Period(int(p), int(at), int(pos), note) for p, at, pos, note in rows]
    return [*closed, Period(len(closed) + 1, 0, 0, "")]


def lanes_behind(runner: ProjectionRunner, period_id: int) -> list[int]:
    """The split log: the card lanes whose mark of closed period `period_id` the model has not
    applied (the period's sums are complete once there is none); [] for one log."""
    store = runner.store
    if not store.split:
        return []
    with store.session(commit=False) as session:
        at = dict(session.query("SELECT lane, period_id FROM proj_settlement_lanes"))
    return [lane for lane in store.lanes()[1:] if int(at.get(lane, 1)) <= period_id]


def period_statements(runner: ProjectionRunner, period_id: int,
                      ) -> tuple[StatementSet, tuple[Instruction, ...]]:
    """The statements and settlement instructions of a period (the open one: so far), from the
    read model brought up to the log's end. Recomputed at any time from the same rows, a closed
    period gives the same statements (the same digest)."""
    known = periods(runner)
    if not 1 <= period_id <= len(known):
        raise InvalidInput("period_id", f"must be 1..{len(known)} (period {len(known)} is "
                           "open)")
    behind = lanes_behind(runner, period_id) if period_id < len(known) else []
    if behind:
        raise StillWriting(f"period {period_id} is closed but its marks have not reached "
                           f"card partitions {', '.join(str(lane - 1) for lane in behind)} "
                           "yet (the ledger writes them after the close); retry shortly")
    with runner.store.session(commit=False) as session:
        rows = session.query("SELECT currency, payer, payee, category, amount_minor FROM "
                             "proj_settlement_totals WHERE period_id = ?", (period_id,))
        bases = session.query("SELECT currency, issuer, acquirer, bps, paid_by, base_minor "
                              "FROM proj_settlement_commission WHERE period_id = ?",
                              (period_id,))
        point_rates = session.query(
            "SELECT currency, payer, payee, category, micros, bps, points, value_minor FROM "
            "proj_settlement_point_rates WHERE period_id = ?", (period_id,))
    by_currency: dict[str, dict[tuple[str, str, int], int]] = defaultdict(dict)
    for currency, payer, payee, category, amount in rows:
        by_currency[currency][(payer, payee, int(category))] = int(amount)
    for currency, payer, payee, category, micros, bps, points, value in point_rates:
        # what the agreement says the period's points are worth, in place of their value
        totals = by_currency[currency]
        key = (payer, payee, int(category))
        totals[key] = totals.get(key, 0) + agreed_value(int(points), int(micros),
                                                        int(bps)) - int(value)
    for currency, issuer, acquirer, bps, paid_by, base in bases:
        fee = commission(int(base), int(bps))
        pair = (issuer, acquirer) if int(paid_by) == Payer.ISSUER else (acquirer, issuer)
        totals = by_currency[currency]
        key = (*pair, int(Category.COMMISSION))
        totals[key] = totals.get(key, 0) + fee
    owed = [o for currency, totals in sorted(by_currency.items())
            for o in settlement_legs.obligations(currency, totals)]
    found = statements(owed, str(period_id))
    period = known[period_id - 1]
    at_us = period.closed_at_us or time.time_ns() // 1000
    agreements, _ = registry_terms(runner.store)
    shares = {entity: terms.voucher_share_bps for entity in
              {s.entity_id for s in found.statements}
              if (terms := agreements.for_entity(entity, at_us)) is not None
              and terms.voucher_share_bps}
    return found, instructions(found, shares)


def registry_terms(store: EventStore) -> tuple[Agreements, dict[str, str]]:
    """Every published agreement version and each program's currency, from the registry
    stream (small: read whole)."""
    found: Agreements = Agreements()
    programs: dict[str, str] = {}
    for stored in store.stream(REGISTRY_ID):
        if stored.topic in (_tag(AgreementPublished), _tag(ProgramDefined)):
            event = decode_event(stored.state)
            assert isinstance(event, AgreementPublished | ProgramDefined)
            _learn(found, programs, event)
    return found, programs


def period_payments(runner: ProjectionRunner, period_id: int) -> list[Payment]:
    """The payments recorded against a period's instructions, in the order recorded (the read
    model as it is: callers catch it up first, as period_statements does)."""
    with runner.store.session(commit=False) as session:
        rows = session.query("SELECT instruction_id, reference, amount_minor FROM "
                             "proj_settlement_payments WHERE period_id = ? "
                             "ORDER BY position, part", (period_id,))
    return [Payment(instruction_id, reference, int(amount))
            for instruction_id, reference, amount in rows]
