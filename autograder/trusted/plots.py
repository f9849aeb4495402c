"""Batch plots: the score histogram and the per-test pass rates, as PNG files.

matplotlib is an optional extra (``pip install autograder[reports]``), imported only here,
only when plots are asked for; without it ``write_plots`` raises ``PlottingUnavailable``
with the command that fixes it. The Gradescope deployment never imports this module.
"""
from __future__ import annotations

from pathlib import Path

from autograder.trusted.batch_model import GRADED, Record
from autograder.trusted.formats.batch_report import pass_rates


class PlottingUnavailable(Exception):
    """matplotlib is not installed."""


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
    out = Path(out)
    scores = [r.result.score for r in records if r.status == GRADED and r.result]
    top = max((r.result.max_score for r in records if r.result), default=1.0) or 1.0
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.hist(scores, bins=min(20, max(5, len(set(scores)))), range=(0, top), color="#4c72b0", edgecolor="white")
    ax.set_xlabel(f"score (out of {top:g})")
    ax.set_ylabel("submissions")
    ax.set_title(f"Scores of {len(scores)} graded submissions")
    fig.tight_layout()
    fig.savefig(out / "scores.png", dpi=100)
    plt.close(fig)

    rates = pass_rates(records)
    labels = [label if len(label) <= 50 else label[:47] + "..." for label in rates]
    fig, ax = plt.subplots(figsize=(8, max(2.5, 0.28 * len(rates) + 1)))
    ax.barh(range(len(rates)), [100 * v for v in rates.values()], color="#55a868")
    ax.set_yticks(range(len(rates)), labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of graded submissions passing")
    ax.set_title("Pass rate per test")
    fig.tight_layout()
    fig.savefig(out / "pass_rates.png", dpi=100)
    plt.close(fig)
    return [out / "scores.png", out / "pass_rates.png"]
