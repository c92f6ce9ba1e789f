"""``percalign trust``: which model to trust when models disagree (the paper's RQ4)."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from percalign.cli._console import err, inversion_progress, out
from percalign.cli.invert import add_inversion_options, inversion_config, layer_list
from percalign.errors import ConfigError


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trust",
        help="which model to trust when models disagree",
        description="On labelled inputs where the models predict different labels, trust the "
        "model whose IRIs of the input are most aligned (per judge, and per people with "
        "--study); report that rule's accuracy against baselines.",
    )
    p.add_argument("--models", required=True, help="two or more model names, comma-separated")
    p.add_argument("--images", default="digits", help="labelled images (default: digits)")
    p.add_argument("--split", default="test", help="all | train | test (default: test)")
    p.add_argument("--n-images", type=int, default=None, help="inputs (default: the split)")
    p.add_argument("--judges", default="ssim", help="judges, as in `percalign judge`")
    p.add_argument(
        "--metric",
        default="other_2afc",
        help="other_2afc (IRI vs target and another target) | seed_2afc (vs its seed)",
    )
    p.add_argument("--seeds", default="image:2", help="seed types of the IRIs (default: image:2)")
    p.add_argument("--study", type=Path, default=None, help="a study folder with human answers")
    p.add_argument(
        "--select",
        type=int,
        default=None,
        metavar="N",
        help="build a survey (OUT/survey) of the N inputs the judges are least certain about",
    )
    p.add_argument("--trials-per-participant", type=int, default=40, help="with --select")
    p.add_argument("--judgments-per-item", type=int, default=5, help="with --select")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples")
    p.add_argument("--device", default="auto", help="cpu, cuda... (default: auto)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace an existing --out")
    add_inversion_options(p)
    p.set_defaults(run=run)


def _pct(value: float) -> str:
    return "-" if value != value else f"{100 * value:5.1f}"


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
    layers = layer_list(args)
    if len(layers) != 1:
        raise ConfigError(f"Trust inverts one layer objective; got {layers}.")
    config = inversion_config(args)
    device = resolve_device(args.device)
    models = [load(n, device=device) for n in names]
    judges = get_judges(args.judges, device=device) if args.judges.strip() else []
    with inversion_progress("invert") as progress:
        result = analyze(
            args.out,
            models,
            images=args.images,
            split=args.split,
            n_images=args.n_images,
            judges=judges,
            metric=args.metric,
            seeds=args.seeds,
            layer=layers[0],
            config=config,
            study=args.study,
            select=args.select,
            survey={
                "trials_per_participant": args.trials_per_participant,
                "judgments_per_item": args.judgments_per_item,
            },
            n_boot=args.bootstrap,
            overwrite=args.overwrite,
            progress=progress,
            log=err.print,
        )
    table = Table(
        title=f"Trust on {len(result.per_input)} disputed inputs: accuracy (%) with 95% CI"
    )
    for col in ("method", "inputs", "accuracy", "95% CI", "rule - random", "rule - best model"):
        table.add_column(col)
    for _, row in result.summary.iterrows():
        diff = ["", ""]
        if row["method"].startswith("rule:"):
            diff = [
                f"{100 * row[f'vs {b}']:+.1f} [{100 * row[f'vs {b} lo']:+.1f}, "
                f"{100 * row[f'vs {b} hi']:+.1f}]"
                for b in ("random", "best-on-average")
            ]
        label = row["method"]
        if label == "best-on-average":
            label += f" ({row['detail'].removeprefix('model ')})"
        table.add_row(
            label,
            str(row["inputs"]),
            _pct(row["accuracy"]),
            f"[{_pct(row['lo']).strip()}, {_pct(row['hi']).strip()}]",
            *diff,
        )
    out.print(table)
    out.print(
        "rule:SOURCE trusts the model whose IRIs SOURCE finds most aligned; differences are "
        "paired over inputs (bootstrap CI)."
    )
    out.print(
        f"Wrote {args.out}/per_input.csv (one row per disputed input), summary.csv, "
        "scores.csv, predictions.csv, runs/ and trust.json"
    )
    if result.survey is not None:
        out.print(
            f"Survey of the {len(result.selected or [])} least certain inputs: {result.survey}; "
            f"serve it with `percalign survey serve {result.survey}`, then rerun with "
            f"`--study {result.survey}`."
        )
    return 0
