"""``percalign judge OUT``: the paper's automated alignment metric over an inversion run;
``percalign judge --validate FILE``: the judges against people's 2AFC choices on an external set."""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from rich.table import Table

from percalign._device import resolve_device
from percalign._settings import add_options, options_from
from percalign.cli._console import err, out
from percalign.cli.options import add_bootstrap, add_device, add_seed
from percalign.errors import ConfigError
from percalign.execution.run_folders import JUDGMENTS, judge_folder
from percalign.judges import METRICS, Ensemble, summarize
from percalign.judges.metric import held_out_judge
from percalign.judges.settings import JudgeSettings
from percalign.judges.validation import read_triplets, validate_judges
from percalign.store import read_manifest
from percalign.study.steps.score import over_judges


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "judge",
        help="score an inversion run with automated judges",
        description="Ask automated judges whether each IRI looks like its "
        "target; writes OUT/judgments.csv and prints alignment. With --validate FILE instead "
        "of OUT: how often each judge picks what people picked on a human 2AFC set.",
    )
    p.add_argument(
        "folder",
        metavar="OUT",
        type=Path,
        nargs="?",
        help="an inversion output folder (percalign invert --out)",
    )
    p.add_argument(
        "--validate",
        metavar="FILE",
        type=Path,
        help="a human 2AFC CSV with columns reference, a, b, votes_a, votes_b (image paths "
        "relative to --image-root): print each judge's agreement with people instead",
    )
    p.add_argument(
        "--image-root",
        type=Path,
        help="with --validate: the folder the CSV's image paths start from (default: its folder)",
    )
    p.add_argument(
        "--size",
        type=int,
        help="with --validate: resize every image to SIZE x SIZE first (default: as stored; "
        "the three images of a row must then match)",
    )
    p.add_argument(
        "--picks",
        type=Path,
        help="with --validate: also write each judge's pick per row to this CSV",
    )
    add_options(
        p, JudgeSettings, only=("names", "k"), shown={"names": ",".join(JudgeSettings().names)}
    )
    p.add_argument("--ensemble", action="store_true", help="also judge by majority vote")
    add_bootstrap(p)
    add_seed(p, help="seed of the other targets and positions the judges see, and of the CIs")
    add_device(p)
    p.set_defaults(run=run)


def judge_settings(args: argparse.Namespace) -> JudgeSettings:
    """The :class:`JudgeSettings` of the options."""
    return JudgeSettings(**options_from(JudgeSettings, args, only=("names", "k")))


def _pct(row, metric: str) -> str:
    value = row[metric]
    if value != value:  # NaN: the metric does not apply
        return "-"
    return f"{value:5.1f} [{row[metric + '_lo']:.1f}, {row[metric + '_hi']:.1f}]"


def run(args: argparse.Namespace) -> int:
    if (args.folder is None) == (args.validate is None):
        raise ConfigError(
            "percalign judge needs either an inversion folder OUT or --validate FILE (not both)."
        )
    if args.validate is not None:
        return _validate(args)
    for flag in ("image_root", "size", "picks"):
        if getattr(args, flag) is not None:
            raise ConfigError(f"--{flag.replace('_', '-')} applies only with --validate FILE.")
    manifest = read_manifest(args.folder)  # a bad folder fails before judges load
    iris = manifest["iris"]
    settings = judge_settings(args)
    held = held_out_judge(manifest)
    if held in settings.names:
        err.print(f"{held} held out: it is the adversary of this run's adversarial loss")
        if settings.names == [held]:
            raise ConfigError(
                f"The only judge given, {held}, is this run's adversary; judge it with others "
                "(for example --judges pixel,ssim,ms-ssim)."
            )
        settings = replace(settings, names=[n for n in settings.names if n != held])
    judges = settings.judges(resolve_device(args.device))
    if args.ensemble:
        judges.append(Ensemble(list(judges)))
    names = ", ".join(j.name for j in judges)
    err.print(f"Judging {len(iris)} IRIs of {args.folder} with {names}")
    table = judge_folder(args.folder, judges, k=settings.k, seed=args.seed)
    path = args.folder / JUDGMENTS
    summary = summarize(table, n_boot=args.bootstrap, seed=args.seed)
    view = Table(title=f"Alignment (%) with 95% bootstrap CI over IRIs: {args.folder}")
    for col in (
        "judge",
        "layer",
        "seed",
        "IRIs",
        "vs seed (paper)",
        "vs other target",
        f"{table['k'].iloc[0]}-way match",
    ):
        view.add_column(col)
    for _, row in summary.iterrows():
        view.add_row(
            row["judge"],
            row["layer"],
            row["seed_type"],
            str(row["iris"]),
            *(_pct(row, m) for m in METRICS),
        )
    out.print(view)
    single = summary[~summary["judge"].str.startswith("ensemble(")]
    if single["judge"].nunique() > 1:
        for (layer, seed), group in single.groupby(["layer", "seed_type"], sort=False):
            vals = group["seed_2afc"]
            out.print(
                f"{layer}, {seed}: paper metric over {len(vals)} judges {over_judges(vals)} %"
            )
    out.print(f"Wrote {path} ({len(table)} rows: one per IRI and judge)")
    return 0


def _share(row, metric: str) -> str:
    lo, hi = 100 * row[metric + "_lo"], 100 * row[metric + "_hi"]
    return f"{100 * row[metric]:.1f} [{lo:.1f}, {hi:.1f}]"


def _validate(args: argparse.Namespace) -> int:
    if args.ensemble:
        raise ConfigError("--ensemble applies to inversion runs; drop it with --validate.")
    triplets = read_triplets(args.validate, args.image_root, args.size, seed=args.seed)
    judges = judge_settings(args).judges(resolve_device(args.device))
    rows = len(triplets.table)
    err.print(f"Judging {rows} rows of {args.validate} with {', '.join(j.name for j in judges)}")
    summary, picks = validate_judges(judges, triplets, n_boot=args.bootstrap, seed=args.seed)
    first = summary.iloc[0]
    view = Table(
        title=f"Judges against people on {args.validate} ({rows} rows; sides randomized; "
        "95% bootstrap CI over references, then rows)"
    )
    for col in ("judge", "agrees with majority (%)", "share of people agreeing (%)"):
        view.add_column(col)
    for _, r in summary.iterrows():
        view.add_row(r["judge"], *(_share(r, m) for m in ("majority", "votes")))
    view.add_row(
        "people (ceiling)",
        f"{100 * first['ceiling_majority']:.1f} (split halves: {100 * first['ceiling_low']:.1f}"
        f" to {100 * first['ceiling_high']:.1f}, a range, not a CI)",
        f"{100 * first['ceiling_votes']:.1f} (two people of a row)",
    )
    out.print(view)
    out.print(
        "The majority ceiling compares half-size groups of people, so a judge can exceed it; "
        "rows with one vote have no two-people ceiling."
    )
    if args.picks is not None:
        args.picks.parent.mkdir(parents=True, exist_ok=True)
        picks.to_csv(args.picks, index=False)
        out.print(f"Wrote {args.picks} ({len(picks)} rows: one per CSV row and judge)")
    return 0
