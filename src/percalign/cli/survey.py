"""``percalign survey build``: a study folder from inversion runs (serving comes next)."""

from __future__ import annotations

import argparse
from pathlib import Path

from percalign.cli._console import out
from percalign.survey.build import build_survey


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("survey", help="build human surveys from inversion runs")
    cmds = p.add_subparsers(metavar="ACTION", required=True)
    b = cmds.add_parser(
        "build",
        help="make a study folder: stimuli, plan, database",
        description="Turn inversion run folders into a study: content-addressed "
        "stimuli, the trial plan, and the database answers go to.",
    )
    b.add_argument("study", type=Path, help="study folder to create")
    b.add_argument(
        "--runs", type=Path, nargs="+", required=True, help="percalign invert output folders"
    )
    b.add_argument("--design", default="2afc", help="2afc | matching")
    b.add_argument(
        "--foil", default="other-target", help="2AFC's wrong candidate: other-target | seed"
    )
    b.add_argument("--k", type=int, default=4, help="candidates per matching trial")
    b.add_argument("--trials-per-participant", type=int, default=40)
    b.add_argument("--judgments-per-item", type=int, default=5)
    b.add_argument("--catch-rate", type=float, default=0.1)
    b.add_argument("--repeat-rate", type=float, default=0.05)
    b.add_argument(
        "--include-invalid",
        action="store_true",
        help="also ask about IRIs that failed the validity gate",
    )
    b.add_argument("--seed", type=int, default=0)
    b.add_argument(
        "--database",
        default=None,
        help="SQLAlchemy URL (e.g. postgresql+psycopg://...); default: a SQLite "
        "file in the study folder",
    )
    b.add_argument("--overwrite", action="store_true")
    b.set_defaults(run=_build)


def _build(args: argparse.Namespace) -> int:
    plan = build_survey(
        args.study,
        args.runs,
        database=args.database,
        overwrite=args.overwrite,
        design=args.design,
        foil=args.foil,
        k=args.k,
        trials_per_participant=args.trials_per_participant,
        judgments_per_item=args.judgments_per_item,
        catch_rate=args.catch_rate,
        repeat_rate=args.repeat_rate,
        include_invalid=args.include_invalid,
        seed=args.seed,
    )
    s = plan.settings
    out.print(
        f"Built {args.study}: {s['items']} items ({s['excluded_invalid']} invalid IRIs "
        f"left out), {s['slots']} participant slots of {s['trials_per_participant']} "
        f"trials, each item judged at least {s['judgments_per_item']} times."
    )
    return 0
