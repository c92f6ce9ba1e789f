"""The report's trust section: the verdict, the test bed, every rule against every baseline,
and whether alignment adds to confidence."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path

import pandas as pd

__all__ = ["trust_section"]


MINUS = "\u2212"


def _signed(x: float, digits: int) -> str:
    """``x`` with its sign (a real minus); exactly 0 unsigned, and a value that rounds to 0
    with two more decimals, so the reader sees on which side of 0 it lies."""
    if x == 0:
        return f"{0:.{digits}f}"
    if round(x, digits) == 0:
        digits += 2
    return f"{x:+.{digits}f}".replace("-", MINUS)


def _ci(value: float, lo: float, hi: float, signed: bool = False, scale: float = 100) -> str:
    if value != value:
        return "-"
    digits = 1 if scale == 100 else 3
    if signed:
        f = [_signed(scale * v, digits) for v in (value, lo, hi)]
    else:
        f = [f"{scale * v:.{digits}f}".replace("-", MINUS) for v in (value, lo, hi)]
    return f"{f[0]} [{f[1]}, {f[2]}]"


def _preset(config: dict[str, object]) -> str:
    """The preset the trust inversions started from (the one they share most settings with)
    and the settings they changed."""
    from percalign.inversion.config import PRESETS
    from percalign.report.presets import preset_text

    def shared(name: str) -> int:
        return sum(config.get(k) == v for k, v in PRESETS[name].settings.items())

    return preset_text(dict(config), max(PRESETS, key=shared))


def _rules_table(summary: pd.DataFrame) -> pd.DataFrame:
    from percalign.trust import BASELINES

    rows = []
    for _, r in summary.iterrows():
        source = r["source"] if isinstance(r["source"], str) else ""
        row = {
            "method": r["rule"] if "rule" in r else r["method"],
            "source": r["source_label"] if source else "baseline",
            "inputs": int(r["inputs"]),
            "accuracy % [95% CI]": _ci(r["accuracy"], r["lo"], r["hi"]),
            "CI": {"wilson": "Wilson", "bootstrap": "bootstrap"}.get(str(r.get("ci")), ""),
        }
        for base in BASELINES:
            key = f"vs {base}"
            row[f"rule {MINUS} {base}, points"] = (
                _ci(r[key], r[f"{key} lo"], r[f"{key} hi"], signed=True)
                if source and key in r
                else ""
            )
        if r["method"] == "best-on-average":
            row["method"] += f" ({str(r['detail']).removeprefix('model ')})"
        rows.append(row)
    return pd.DataFrame(rows)


def _confidence_table(confidence: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, r in confidence.iterrows():

        def auc(name: str, signed: bool = False, row: pd.Series = r) -> str:
            return _ci(row[name], row[f"{name}_lo"], row[f"{name}_hi"], signed, scale=1)

        def acc(name: str, signed: bool = False, row: pd.Series = r) -> str:
            return _ci(row[name], row[f"{name}_lo"], row[f"{name}_hi"], signed)

        rows.append(
            {
                "source": r["source_label"],
                "inputs": int(r["inputs"]),
                "AUC confidence": auc("auc_confidence"),
                "AUC confidence + alignment": auc("auc_combined"),
                "AUC gain": auc("auc_gain", True),
                "pick accuracy, confidence (%)": acc("accuracy_confidence"),
                "pick accuracy, + alignment (%)": acc("accuracy_combined"),
                "gain (points)": acc("accuracy_gain", True),
            }
        )
    return pd.DataFrame(rows)


def _worse(summary: pd.DataFrame) -> str:
    """The rules whose whole CI against trusting the best model on average lies below 0."""
    key = "vs best-on-average"
    if f"{key} hi" not in summary:
        return ""
    ruled = summary[(summary["source"] != "") & (summary[f"{key} hi"] < 0)]
    if ruled.empty:
        return ""
    cases = "; ".join(
        f"{r.method} ({_ci(r[key], r[f'{key} lo'], r[f'{key} hi'], signed=True)})"
        for _, r in ruled.iterrows()
    )
    return (
        f" Worse than trusting the model best on average (points, 95% CI wholly below 0): "
        f"{html.escape(cases)}."
    )


def trust_section(
    folder: Path, table: Callable[[pd.DataFrame], str], figure: Callable[[pd.DataFrame], str]
) -> str:
    """The HTML body of the trust section for the trust output ``folder``.

    ``table`` renders a DataFrame as HTML; ``figure`` turns the summary into an ``<img>``.
    """
    summary_path = Path(folder) / "summary.csv"
    if not summary_path.is_file():
        return "<p>Not run (set [trust] enabled = true).</p>"
    meta = json.loads((folder / "trust.json").read_text())
    # baselines have no source: an empty string, not a float NaN
    summary = pd.read_csv(summary_path, dtype={"source": str})
    summary["source"] = summary["source"].fillna("")
    confidence = (
        pd.read_csv(folder / "confidence.csv")
        if (folder / "confidence.csv").stat().st_size > 1
        else pd.DataFrame()
    )
    models = pd.read_csv(folder / "models.csv")
    names = ", ".join(m["name"] for m in meta["models"])
    sample = (
        f"all {meta['used']}"
        if meta["used"] == meta["disputed"]
        else f"a sample of {meta['used']} (drawn with the seed)"
    )
    # real minus signs in the verdict's numbers
    verdict = re.sub(r"(?<![\w.])-(?=\d)", MINUS, meta["verdict"])
    body = f"<p><b>Verdict.</b> {html.escape(verdict)}{_worse(summary)}</p>"
    body += (
        f"<p>{meta['disputed']} of {meta['images']['inputs']} {meta['images']['split']} "
        f"inputs get different labels from {html.escape(names)}; {sample} were inverted "
        f"(seeds {html.escape(meta['seeds'])}, {html.escape(_preset(meta['inversion']))})."
        " Only valid IRIs "
        f"are scored: {meta['dropped_invalid']} of {meta['iris']} were dropped. A CI "
        "half-width of 10 points on the best rule's accuracy needs about "
        f"{meta['inputs_for_10_point_ci']} scored inputs.</p>"
    )
    models["accuracy % [95% CI]"] = [
        _ci(a, lo, hi)
        for a, lo, hi in zip(models["accuracy"], models["lo"], models["hi"], strict=True)
    ]
    models["on the used inputs %"] = [f"{100 * v:.1f}" for v in models["accuracy_on_used"]]
    body += "<h3>Models</h3>" + table(
        models[["model", "inputs", "accuracy % [95% CI]", "on the used inputs %"]]
    )
    body += figure(summary)
    body += "<h3>Every rule against every baseline</h3>" + table(_rules_table(summary))
    body += (
        '<p class="note">Accuracy on the disputed inputs each source scored, with a 95% CI: '
        "Wilson (a share of inputs) for the rules and the fixed baselines, a bootstrap for the "
        "random and majority baselines (column CI). A rule minus a baseline is paired over "
        "those inputs (percentile bootstrap CI, points); a bound shown as 0.0 is exactly 0. "
        "In the figure, blue bars are rules, grey the baselines, light grey the oracle (the "
        "best any rule could do); error bars are the same 95% CIs. absolute: "
        "the model whose IRIs of the input are most aligned; standardized: most aligned "
        "relative to that model's own alignment over the inputs (z-score); "
        "confidence+alignment: the model a cross-validated logistic model of confidence and "
        "standardized alignment finds most likely right."
        + (
            " Sources marked simulated participants (bots) are bots, not people."
            if "bots" in set(summary["source"].fillna(""))
            else ""
        )
        + "</p>"
    )
    if len(confidence):
        body += "<h3>Does alignment add to confidence?</h3>" + table(_confidence_table(confidence))
        body += (
            '<p class="note">Logistic models of "this model is right" on each disputed input x '
            f"model, fit with {meta['folds']}-fold cross-validation grouped by input: from the "
            "logit of the max-softmax alone, and with the input's standardized alignment "
            "added. AUC for telling right from wrong predictions, and the accuracy of picking "
            "the model most likely right; 95% CIs from a bootstrap over inputs that reruns the "
            "whole cross-validation (z-scores, folds and both fits) on every resample, so "
            "that they include how much the fitted models vary.</p>"
        )
    return body
