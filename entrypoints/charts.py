"""Charts for the reports (`--chart FILE`, and the report page's inline SVG), with matplotlib
on its non-interactive backend: a PNG or SVG file, or SVG text to inline in a page (text as
paths: the page needs no font and no network)."""

from __future__ import annotations

import io
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")
matplotlib.rcParams["svg.fonttype"] = "path"
matplotlib.rcParams["svg.hashsalt"] = "loyalty-ledger"  # the same data, the same bytes

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

COLOURS = ("#2a6f97", "#e07a5f", "#81b29a", "#f2cc8f", "#6d597a", "#3d405b")


def bars(title: str, labels: Sequence[str], series: dict[str, Sequence[float]],
         unit: str = "") -> Figure:
    """Grouped vertical bars: one group per label, one bar per series."""
    figure, axes = plt.subplots(figsize=(7.5, 3.4), dpi=100)
    count = max(1, len(series))
    width = 0.8 / count
    for index, (name, values) in enumerate(series.items()):
        offsets = [i - 0.4 + width * (index + 0.5) for i in range(len(labels))]
        axes.bar(offsets, list(values), width, label=name, color=COLOURS[index % len(COLOURS)])
    axes.set_xticks(range(len(labels)), list(labels), rotation=0 if len(labels) < 8 else 45)
    axes.set_title(title, loc="left", fontsize=11)
    if unit:
        axes.set_ylabel(unit)
    axes.axhline(0, color="#333", linewidth=0.6)
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axes.spines[["top", "right"]].set_visible(False)
    if len(series) > 1:
        axes.legend(frameon=False, fontsize=8)
    figure.tight_layout()
    return figure


def svg(figure: Figure) -> str:
    """The figure as an inline <svg> element (no XML prolog), closed afterwards."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(figure)
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def save(figure: Figure, path: str) -> None:
    """PNG or SVG by the file's extension."""
    if not path.lower().endswith((".png", ".svg")):
        plt.close(figure)
        raise ValueError(f"--chart {path}: the file must end in .png or .svg")
    figure.savefig(path, metadata={"Date": None} if path.lower().endswith(".svg") else None)
    plt.close(figure)


def heatmap(title: str, rows: Sequence[str], columns: Sequence[str],
            values: Sequence[Sequence[float]], unit: str = "") -> Figure:
    """A grid of values (rows x columns), darker for more, with a colour bar."""
    figure, axes = plt.subplots(figsize=(7.5, 2.9), dpi=100)
    image = axes.imshow(values, aspect="auto", cmap="Blues")
    axes.set_yticks(range(len(rows)), list(rows))
    axes.set_xticks(range(len(columns)), list(columns), fontsize=7)
    axes.set_title(title, loc="left", fontsize=11)
    bar = figure.colorbar(image, ax=axes, fraction=0.03, pad=0.02)
    if unit:
        bar.set_label(unit)
    figure.tight_layout()
    return figure
