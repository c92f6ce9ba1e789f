"""The report's figures (matplotlib, no display): each saved as PNG and PDF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["alignment_bars", "save", "trust_bars"]

HUMAN_COLOR = "#222222"
PALETTE = ["#4477aa", "#ee6677", "#228833", "#ccbb44", "#66ccee", "#aa3377", "#bbbbbb"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save(fig, folder: Path, stem: str) -> Path:
    """Write ``stem.png`` (for the HTML) and ``stem.pdf`` (for papers); return the PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    png = folder / f"{stem}.png"
    fig.savefig(png, dpi=150, bbox_inches="tight")
    fig.savefig(folder / f"{stem}.pdf", bbox_inches="tight")
    _pyplot().close(fig)
    return png


def alignment_bars(
    judges: pd.DataFrame, humans: pd.DataFrame | None, human_label: str, chance: float, metric: str
):
    """Alignment per model: one bar per source (people first, then each judge), 95% CIs.

    Args:
        judges: ``model``, ``judge``, ``alignment``, ``lo``, ``hi`` in percent.
        humans: ``model``, ``alignment``, ``ci_low``, ``ci_high`` as fractions, or None.
        human_label: legend label of the people's bars (says "simulated" for bots).
        chance: chance level in percent (drawn as a line).
        metric: the judges' metric, for the axis label.
    """
    plt = _pyplot()
    models = list(dict.fromkeys(judges["model"]))
    sources: list[tuple[str, pd.DataFrame]] = []
    if humans is not None and len(humans):
        h = humans.assign(
            alignment=100 * humans["alignment"],
            lo=100 * humans["ci_low"],
            hi=100 * humans["ci_high"],
        )
        sources.append((human_label, h))
    for judge in dict.fromkeys(judges["judge"]):
        sources.append((f"judge: {judge}", judges[judges["judge"] == judge]))
    width = 0.8 / len(sources)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(models) + 2), 3.6))
    x = np.arange(len(models))
    for k, (label, frame) in enumerate(sources):
        rows = frame.set_index("model").reindex(models)
        values = rows["alignment"].to_numpy(dtype=float)
        err = np.vstack(
            [values - rows["lo"].to_numpy(dtype=float), rows["hi"].to_numpy(dtype=float) - values]
        )
        color = HUMAN_COLOR if k == 0 and humans is not None else PALETTE[k % len(PALETTE)]
        ax.bar(
            x - 0.4 + width * (k + 0.5),
            values,
            width,
            yerr=np.nan_to_num(err),
            capsize=2,
            label=label,
            color=color,
        )
    ax.axhline(chance, color="#888888", linestyle="--", linewidth=1, label=f"chance ({chance:g}%)")
    ax.set_xticks(x, models, rotation=20, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel(f"alignment (%)\njudges: {metric}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    return fig


def trust_bars(summary: pd.DataFrame):
    """Accuracy of each trust rule and baseline with its 95% CI."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.0, 0.35 * len(summary) + 1.0))
    y = np.arange(len(summary))[::-1]
    acc = 100 * summary["accuracy"].to_numpy(dtype=float)
    err = np.vstack(
        [
            acc - 100 * summary["lo"].to_numpy(dtype=float),
            100 * summary["hi"].to_numpy(dtype=float) - acc,
        ]
    )
    ruled = summary["source"].fillna("").astype(str).ne("").tolist()
    colors = [
        PALETTE[0] if r else ("#999999" if m != "oracle" else "#dddddd")
        for m, r in zip(summary["method"], ruled, strict=True)
    ]
    # a percentile interval can sit a rounding error inside its estimate
    ax.barh(y, acc, xerr=np.clip(np.nan_to_num(err), 0, None), color=colors, capsize=2)
    ax.set_yticks(y, summary["method"])
    ax.set_xlim(0, 100)
    ax.set_xlabel("accuracy on the inputs where the models disagree (%)")
    ax.spines[["top", "right"]].set_visible(False)
    return fig
