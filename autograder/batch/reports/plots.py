"""Batch plots: the score histogram and the per-test pass rates, as PNG files.

matplotlib is an optional extra (``pip install autograder[reports]``), imported only here,
only when plots are asked for; without it ``write_plots`` raises ``PlottingUnavailable``
with the command that fixes it. The Gradescope deployment never imports this module.

What is drawn comes from ``plot_data`` (plain numbers, tested on their own): one bin per
point of score (a bin ``[k - 0.5, k + 0.5)`` counts the scores that round to ``k``), integer
counts, the mean and the median marked, hidden and visible tests told apart, and the number
of graded submissions in every title.
"""
from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from autograder.batch.model import GRADED, Record
from autograder.batch.reports.text import pass_rates
from autograder.batch.reports.csv_grades import column

VISIBLE_COLOUR, HIDDEN_COLOUR = "#55a868", "#8172b2"


class PlottingUnavailable(Exception):
    """matplotlib is not installed."""


@dataclass
class PlotData:
    graded: int                                   # graded submissions behind both plots
    top: float                                    # the maximum score
    edges: list[float] = field(default_factory=list)    # histogram bin edges, one bin per point
    counts: list[int] = field(default_factory=list)     # submissions per bin
    mean: float | None = None
    median: float | None = None
    tests: list[tuple[str, float, bool]] = field(default_factory=list)   # (label, pass rate, hidden)


def plot_data(records: list[Record]) -> PlotData:
    """The numbers both plots draw, from the batch's records."""
    graded = [r for r in records if r.status == GRADED and r.result]
    scores = [r.result.score for r in graded]
    top = max((r.result.max_score for r in records if r.result), default=1.0) or 1.0
    points = int(math.ceil(top))
    edges = [k - 0.5 for k in range(points + 2)]
    counts = [0] * (points + 1)
    for s in scores:
        counts[min(max(int(math.floor(s + 0.5)), 0), points)] += 1
    hidden = {column(t): t.visibility != "visible" for r in graded for t in r.result.tests}
    tests = [(label, rate, hidden.get(label, False)) for label, rate in pass_rates(records).items()]
    return PlotData(len(graded), top, edges, counts, statistics.mean(scores) if scores else None,
                    statistics.median(scores) if scores else None, tests)


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlottingUnavailable("matplotlib is not installed; pip install 'autograder[reports]' "
                                  "(or pip install matplotlib) to get scores.png and pass_rates.png") from None
    matplotlib.use("Agg")                  # files only, no display
    import matplotlib.pyplot as plt
    return plt


def write_plots(records: list[Record], out: Path) -> list[Path]:
    """Write ``scores.png`` and ``pass_rates.png`` into ``out``; returns their paths."""
    plt = _pyplot()
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator
    out = Path(out)
    data = plot_data(records)

    fig, ax = plt.subplots(figsize=(7, 4))
    ax.bar([k for k in range(len(data.counts))], data.counts, width=1.0, color="#4c72b0", edgecolor="white")
    if data.mean is not None:
        ax.axvline(data.mean, color="#c44e52", linestyle="--", label=f"mean {data.mean:.2f}")
        ax.axvline(data.median, color="#dd8452", linestyle=":", linewidth=2, label=f"median {data.median:g}")
        ax.legend(loc="upper left")
    ax.set_xlim(data.edges[0], data.edges[-1])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(f"score (points, out of {data.top:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"Scores of {data.graded} graded submission{'s' if data.graded != 1 else ''}")
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=100)
    plt.close(fig)

    labels = [label if len(label) <= 50 else label[:47] + "..." for label, _, _ in data.tests]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(labels) + 1.2)))
    ax.barh(range(len(labels)), [100 * rate for _, rate, _ in data.tests],
            color=[HIDDEN_COLOUR if hidden else VISIBLE_COLOUR for _, _, hidden in data.tests])
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel(f"% of the {data.graded} graded submissions passing")
    ax.set_title("Pass rate per test", loc="left")
    ax.legend(handles=[Patch(color=VISIBLE_COLOUR, label="visible test"),
                       Patch(color=HIDDEN_COLOUR, label="hidden test")],
              loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=2, fontsize=7, frameon=False)
    fig.tight_layout()
    fig.savefig(out / "pass_rates.png", dpi=100)
    plt.close(fig)
    return [out / "scores.png", out / "pass_rates.png"]
