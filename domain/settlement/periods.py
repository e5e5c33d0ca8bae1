"""Settlement periods: the alliance closes the open period at a cut-off, and every movement
committed before the close belongs to it, every later one to the next.

The close is a marker in the log (`SettlementPeriodClosed`, a registry event): the log orders
commits, so "before" is "at a lower log position" however many server processes write. When
the log is split into card partitions (roadmap stage 5), the close writes one marker per
partition and a period is, per partition, the rows up to its marker. A closed period never
changes: a correction is a new movement in the open period.
"""

from __future__ import annotations

import msgspec

from domain.common import check_text

LOG_PARTITION = 0  # the log is one partition until it is split by card (roadmap stage 5)


class CloseSettlementPeriod(msgspec.Struct, frozen=True, array_like=True,
                            tag="CloseSettlementPeriod"):
    note: str  # why now, for the record (e.g. "month end 2026-11")

    def validate(self) -> None:
        check_text(self.note, "note")
