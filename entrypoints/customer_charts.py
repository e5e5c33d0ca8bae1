"""A chart for each customer view (`report pyramid|matrix|rfm|churn|visits|affinity --chart
FILE`, and the report page's customer sections), drawn from the same plain struct the table
is (projections.customers.view)."""

from __future__ import annotations

from typing import Any

from domain.customers.visits import WEEKDAYS
from entrypoints import charts


def chart(name: str, data: Any) -> Any:
    """The figure of view `name` (entrypoints.charts: save or inline it)."""
    if name == "pyramid":
        return charts.bars(
            f"Customer pyramid {data.first_day}..{data.last_day}: share of customers and of "
            "net spend, %", [level.level for level in data.levels],
            {"customers": [100 * level.customers / max(1, data.customers)
                           for level in data.levels],
             "net spend": [level.share_bps / 100 for level in data.levels]}, "%")
    if name == "matrix":
        return charts.bars(
            f"Value matrix {data.first_day}..{data.last_day}: customers per quadrant",
            [q.quadrant.replace("_", " ") for q in data.quadrants],
            {"customers": [q.customers for q in data.quadrants]})
    if name == "rfm":
        return charts.bars(f"RFM segments {data.first_day}..{data.last_day}: customers",
                           [s.segment for s in data.segments],
                           {"customers": [s.customers for s in data.segments]})
    if name == "churn":
        return charts.bars(f"Lifecycle as of {data.as_of}: customers",
                           [st.status.replace("_", " ").lower() for st in data.statuses],
                           {"customers": [st.customers for st in data.statuses]})
    if name == "visits":
        grid = [[0] * 24 for _ in WEEKDAYS]
        for cell in data.cells:
            grid[cell.weekday][cell.hour] = cell.visits
        return charts.heatmap(f"Visits by weekday and hour (store's local time), "
                              f"{data.first_day}..{data.last_day}", list(WEEKDAYS),
                              [str(h) for h in range(24)], grid, "visits")
    if name == "affinity":
        partners = [p for p in data.places if p.kind == "partner"]
        return charts.bars(
            f"Store affinity {data.first_day}..{data.last_day}: customers and those also "
            "seen at another partner",
            [p.id for p in partners] + ["2+ partners"],
            {"customers": [p.customers for p in partners] + [data.multi_partner_customers]})
    raise ValueError(name)
