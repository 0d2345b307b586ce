"""The weekly funnel chart: a small PNG drawn with matplotlib's Agg canvas (no pyplot, no
display, no global state), deterministic for the same numbers."""

from __future__ import annotations

import io
from collections.abc import Sequence


def funnel_png(title: str, steps: Sequence[tuple[str, int]], *, width_in: float = 7.0,
               dpi: int = 100) -> bytes:
    """Horizontal bars, widest step first, each labelled with its count and the % of the
    step before it."""
    # matplotlib loads with the first chart, not at start-up: it is the heaviest import we have
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    labels = [name for name, _ in steps]
    counts = [int(n) for _, n in steps]
    height = 1.0 + 0.45 * max(len(steps), 1)
    fig = Figure(figsize=(width_in, height), dpi=dpi)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ys = list(range(len(steps)))[::-1]
    top = max(counts, default=0) or 1
    ax.barh(ys, counts, color="#2e6da4", height=0.6)
    for y, n, prev in zip(ys, counts, [None, *counts[:-1]], strict=True):
        label = f"{n}" if prev is None else f"{n} ({conversion(n, prev)})"
        ax.text(n + top * 0.01, y, label, va="center", fontsize=9)
    ax.set_yticks(ys, labels, fontsize=9)
    ax.set_xlim(0, top * 1.25)
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    ax.tick_params(axis="x", labelsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    # no timestamps or version strings in the file: same numbers, same bytes
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def conversion(n: int, prev: int) -> str:
    """`n` as a whole percentage of `prev` ("–" when there was nothing before)."""
    if prev <= 0:
        return "–"
    return f"{round(100 * n / prev)}%"
