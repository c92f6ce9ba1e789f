"""``percalign trust``: which model to trust when models disagree (the paper's RQ4)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.table import Table

from percalign._settings import add_options, options_from
from percalign.cli._console import err, inversion_progress, out
from percalign.cli.invert import add_inversion_options, inversion_config, layer_list
from percalign.cli.options import add_device, add_output
from percalign.errors import ConfigError
from percalign.survey.settings import SurveyDesign
from percalign.trust.settings import TrustSettings

if TYPE_CHECKING:
    import pandas as pd

    from percalign.inversion import InversionConfig
    from percalign.trust import TrustResult


#: the TrustSettings fields given as options of their own (the rest come from the inversion's)
_OPTIONS = ("images", "split", "n_images", "metric", "seeds", "folds", "n_boot")
#: the SurveyDesign fields of the survey --select builds
_SURVEY = ("trials_per_participant", "judgments_per_item")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trust",
        help="which model to trust when models disagree",
        description="On labelled inputs where the models predict different labels, trust the "
        "model whose IRIs of the input are most aligned: absolutely, relative to the model's "
        "usual alignment, or combined with confidence in a cross-validated logistic model "
        "(per judge, and per people or simulated participants with --study); report every "
        "rule's accuracy against baselines, and whether alignment adds to confidence. "
        f"Inversions: the {TrustSettings.preset} preset capped at {TrustSettings.steps} steps, "
        f"each image stopped at valid:{TrustSettings.stop_at_valid:g}, a model's IRIs in "
        f"batches of {TrustSettings.batch_size} (options override).",
    )
    p.add_argument("--models", required=True, help="two or more model names, comma-separated")
    add_options(p, TrustSettings, only=("images", "split", "n_images"))
    p.add_argument(
        "--max-inputs",
        type=int,
        default=TrustSettings.max_inputs,
        metavar="N",
        help="invert at most N of the disputed inputs, drawn with --seed (0: all, which a "
        f"study cannot say; default: {TrustSettings.max_inputs})",
    )
    p.add_argument(
        "--judges",
        default="ssim",
        help="judges, as in `percalign judge` (default: ssim alone, not [judges] names: every "
        "judge is a source whose rules are refit on each bootstrap resample)",
    )
    add_options(p, TrustSettings, only=("metric", "seeds", "folds", "n_boot"))  # in _OPTIONS
    p.add_argument(
        "--study",
        type=Path,
        default=None,
        help="a survey folder with answers: people's become the source humans, simulated "
        "participants' the source bots",
    )
    p.add_argument(
        "--select",
        type=int,
        default=None,
        metavar="N",
        help="build a survey (OUT/survey) of the N inputs the judges are least certain about",
    )
    add_options(
        p.add_argument_group("the survey of --select"),
        SurveyDesign,
        only=_SURVEY,
    )
    add_device(p)
    add_output(p)
    add_inversion_options(p, preset=TrustSettings.preset)
    # the trust inversions' own defaults, not the preset's (see the description)
    p.set_defaults(
        steps=TrustSettings.steps,
        batch_size=TrustSettings.batch_size,
        stop_at=f"valid:{TrustSettings.stop_at_valid:g}",
        seed=TrustSettings.seed,
    )
    p.set_defaults(run=run)


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:5.1f}"


def _ci(value: float, lo: float, hi: float, signed: bool = False) -> str:
    if value != value:
        return "-"
    f = "{:+.1f}" if signed else "{:.1f}"
    return f"{f.format(100 * value)} [{f.format(100 * lo)}, {f.format(100 * hi)}]"


def _models_table(folder: Path) -> Table:
    import pandas as pd

    meta = json.loads((folder / "trust.json").read_text())
    table = Table(
        title=f"{meta['disputed']} of {meta['images']['inputs']} inputs disputed, "
        f"{meta['used']} used; {meta['dropped_invalid']} of {meta['iris']} IRIs invalid "
        "(dropped)"
    )
    for col in ("model", "accuracy on the split (%)", "on the used inputs (%)"):
        table.add_column(col)
    for _, r in pd.read_csv(folder / "models.csv").iterrows():
        table.add_row(r["model"], _ci(r["accuracy"], r["lo"], r["hi"]), _pct(r["accuracy_on_used"]))
    return table


def _summary_table(result: TrustResult) -> Table:
    from percalign.trust import BASELINES

    summary = result.summary
    table = Table(title="Accuracy (%) on the used disputed inputs, 95% CI; rule - baseline")
    table.add_column("method", no_wrap=True)  # rule:source names stay whole
    for col in ("inputs", "accuracy", *(f"- {b}" for b in BASELINES)):
        table.add_column(col)
    for _, row in summary.iterrows():
        label = row["method"]
        if label == "best-on-average":
            label += f" ({row['detail'].removeprefix('model ')})"
        diffs = [
            _ci(row[f"vs {b}"], row[f"vs {b} lo"], row[f"vs {b} hi"], signed=True)
            if f"vs {b}" in row and row[f"vs {b}"] == row[f"vs {b}"]
            else ""
            for b in BASELINES
        ]
        table.add_row(label, str(row["inputs"]), _ci(row["accuracy"], row["lo"], row["hi"]), *diffs)
    return table


def _confidence_table(confidence: pd.DataFrame) -> Table:
    table = Table(
        title="Does alignment add to confidence? (cross-validated logistic models; 95% CIs "
        "refit the cross-validation on every bootstrap resample of inputs)"
    )
    for col in (
        "source",
        "AUC confidence",
        "AUC + alignment",
        "AUC gain",
        "pick acc. confidence (%)",
        "pick acc. + alignment (%)",
        "gain (points)",
    ):
        table.add_column(col)
    for _, r in confidence.iterrows():
        auc = {
            n: f"{r[n]:.3f} [{r[n + '_lo']:.3f}, {r[n + '_hi']:.3f}]"
            for n in ("auc_confidence", "auc_combined", "auc_gain")
        }
        table.add_row(
            r["source_label"],
            auc["auc_confidence"],
            auc["auc_combined"],
            auc["auc_gain"],
            _ci(r["accuracy_confidence"], r["accuracy_confidence_lo"], r["accuracy_confidence_hi"]),
            _ci(r["accuracy_combined"], r["accuracy_combined_lo"], r["accuracy_combined_hi"]),
            _ci(r["accuracy_gain"], r["accuracy_gain_lo"], r["accuracy_gain_hi"], signed=True),
        )
    return table


def trust_settings(args: argparse.Namespace) -> tuple[TrustSettings, InversionConfig]:
    """The :class:`TrustSettings` of the options, and the inversions' config (the options of
    ``--preset`` and the inversion options, on the trust defaults)."""
    layers = layer_list(args) if args.layer else [TrustSettings.layer]
    if len(layers) != 1:
        raise ConfigError(f"Trust inverts one layer objective; got {layers}.")
    if args.max_inputs < 0:
        raise ConfigError(f"--max-inputs must be 0 (all) or a count; got {args.max_inputs}.")
    config = inversion_config(args)
    settings = TrustSettings(
        **options_from(TrustSettings, args, only=_OPTIONS),
        max_inputs=args.max_inputs or None,
        layer=layers[0],
        preset=args.preset,
        steps=config.steps,
        stop_at_valid=config.stop_at_valid,
        batch_size=config.batch_size,
        seed=config.seed,
    )
    return settings, config


def run(args: argparse.Namespace) -> int:
    from percalign._device import resolve_device
    from percalign.judges import get_judges
    from percalign.models import load
    from percalign.store import check_output
    from percalign.trust import analyze

    check_output(args.out, args.overwrite)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    if len(names) < 2:
        raise ConfigError(f"--models needs two or more names, comma-separated; got {names}.")
    settings, config = trust_settings(args)
    device = resolve_device(args.device)
    models = [load(n, device=device) for n in names]
    judges = get_judges(args.judges, device=device) if args.judges.strip() else []
    with inversion_progress(f"invert {len(models)} models") as progress:
        result = analyze(
            args.out,
            models,
            settings,
            judges=judges,
            config=config,
            study=args.study,
            select=args.select,
            survey=SurveyDesign(**options_from(SurveyDesign, args, only=_SURVEY)),
            overwrite=args.overwrite,
            progress=progress,
            log=err.print,
        )
    out.print(_models_table(result.folder))
    out.print(_summary_table(result))
    if len(result.confidence):
        out.print(_confidence_table(result.confidence))
    out.print(
        "RULE:SOURCE trusts the model SOURCE finds most aligned (absolute), most aligned "
        "relative to its usual alignment (standardized), or most likely right with confidence "
        "(confidence+alignment); differences are paired over inputs (bootstrap CI)."
    )
    out.print(f"Verdict: {result.verdict}")
    out.print(
        f"Wrote {args.out}/summary.csv, confidence.csv, per_input.csv (one row per used input), "
        "scores.csv, validity.csv, models.csv, predictions.csv, runs/ and trust.json"
    )
    if result.survey is not None:
        out.print(
            f"Survey of the {len(result.selected or [])} least certain inputs: {result.survey}; "
            f"serve it with `percalign survey serve {result.survey}`, then rerun with "
            f"`--study {result.survey}`."
        )
    return 0
