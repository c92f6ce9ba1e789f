"""``percalign score TABLE.csv --by model,layer``: alignment with honest uncertainty.

The command runs the score step's computation on the answers
(:func:`~percalign.study.steps.score_answers.score_answers`) and writes the same files; on a
study folder, under the study's declared analysis with the flags given on top.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from percalign._checks import check_float
from percalign._settings import add_options
from percalign.cli._console import out
from percalign.cli.options import add_bootstrap, add_output, add_seed
from percalign.errors import ConfigError, MissingFileError
from percalign.execution.answers import declared_exclusions, study_root
from percalign.scoring import Exclusions, check_table
from percalign.store.runs import atomic_folder
from percalign.study.spec import Scoring, StudySpec, load_spec
from percalign.study.steps.models import model_labels
from percalign.study.steps.score import answer_analysis, with_labels
from percalign.study.steps.score_answers import (
    AnswerAnalysis,
    AnswerScores,
    score_answers,
    stand_in,
)

EXCLUSION_FIELDS = tuple(f.name for f in dataclasses.fields(Exclusions))


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "score",
        help="alignment per group, with CIs, from an answer table",
        description="Score a long answer table (one row per answer: participant, "
        "item, correct, and condition columns).",
    )
    p.add_argument(
        "source", type=Path, help="a study folder, or an answer table (.csv or .parquet)"
    )
    p.add_argument(
        "--by",
        default=None,
        help="comma-separated grouping columns, e.g. model,layer (a study folder: its "
        "declared scoring.by; a survey folder: model,layer,seed_type)",
    )
    p.add_argument(
        "--compare", default=None, help="column whose levels are compared pairwise (e.g. model)"
    )
    p.add_argument(
        "--table",
        default=None,
        metavar="ROWS,COLUMNS",
        help="also lay alignment out as a ROWS x COLUMNS table (e.g. "
        "training,architecture), like the paper's",
    )
    p.add_argument(
        "--halfwidth",
        type=float,
        default=None,
        help="plan from these data as a pilot: the participants each group needs for a 95%% "
        "CI of +- this at its IRIs, or, when no number of participants can reach it, the IRIs "
        "it needs",
    )
    p.add_argument(
        "--plan-difference",
        type=float,
        default=None,
        metavar="D",
        help="with --compare: plan the participants (or IRIs) each pair of levels needs to "
        "detect a difference of D in alignment (share correct) at --power",
    )
    p.add_argument(
        "--power",
        type=float,
        default=0.8,
        help="power of --plan-difference's comparison at alpha 0.05 (default 0.8)",
    )
    g = p.add_argument_group(
        "exclusions (applied when the table has the columns; results are shown with and "
        "without them). A study folder's declared rules apply; a flag here overrides one, "
        "and the override is printed and recorded in summary.json"
    )
    add_options(g, Exclusions)
    g.set_defaults(**dict.fromkeys(EXCLUSION_FIELDS))
    p.add_argument(
        "--judges",
        default=None,
        help="study folders only: judges to compare with the people, e.g. pixel,ssim,lpips-alex "
        "(a study folder: its declared judges)",
    )
    add_bootstrap(
        p, default=None, shown=f"a study's declared scoring.n_boot, else {Scoring.n_boot}"
    )
    add_seed(p, help="resampling seed", default=None, shown="a study's seed, else 0")
    add_output(
        p,
        help="folder for the score CSVs and summary.json (a study folder: its survey/scores)",
        required=False,
    )
    p.set_defaults(run=run)


def _read(path: Path) -> pd.DataFrame:
    if path.is_dir():
        from percalign.store.study import read_answers

        table = read_answers(path)
        if table.empty:
            raise ConfigError(f"Study {path} has no answers yet; nothing to score.")
        return table
    if not path.is_file():
        raise MissingFileError(f"No answer table at {str(path)!r}.")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # EmptyDataError included
        raise ConfigError(f"Cannot read an answer table from {path}: {exc}") from exc
    if table.empty:
        raise ConfigError(f"{path} holds no answers yet; nothing to score.")
    return table


def _survey(folder: Path) -> Path:
    """The survey folder of a study folder (or the folder itself when it is one)."""
    return folder / "survey" if (folder / "survey" / "survey.json").is_file() else folder


def _declared(
    args: argparse.Namespace, columns: Sequence[str]
) -> tuple[AnswerAnalysis, StudySpec | None]:
    """The analysis declared for the source (a study's, a survey's rules, or the defaults),
    and the study's spec when a study declared it."""
    if not args.source.is_dir():
        return AnswerAnalysis(by=[], n_boot=Scoring.n_boot), None
    root = study_root(args.source)
    if root is not None:
        spec = load_spec(root / "study.toml")
        return answer_analysis(spec, root), spec
    return AnswerAnalysis(
        by=[c for c in ("model", "layer", "seed_type") if c in columns],
        rules=declared_exclusions(_survey(args.source)),
        n_boot=Scoring.n_boot,
        stimuli=_survey(args.source),
    ), None


def _analysis(
    args: argparse.Namespace,
    columns: Sequence[str],
    declared: AnswerAnalysis,
    spec: StudySpec | None,
) -> tuple[AnswerAnalysis, dict[str, Any]]:
    """The analysis to run, the ``declared`` one (of :func:`_declared`) with the flags given
    on top, and where it came from: ``declared_by``, and ``overrides``: each flag that changed
    a study's declared value, as ``{name: {"declared": ..., "used": ...}}``."""
    by_study = spec is not None
    rules = dataclasses.asdict(declared.rules)
    given: dict[str, Any] = {
        "seed": args.seed,
        "n_boot": args.bootstrap,
        "by": None if args.by is None else [c for c in args.by.split(",") if c],
        "compare": [args.compare] if args.compare else None,
        "table": _table_option(args.table, columns),
        "judges": None if args.judges is None else [j for j in args.judges.split(",") if j],
    }
    given = {k: v for k, v in given.items() if v is not None}
    flags = {k: getattr(args, k) for k in EXCLUSION_FIELDS if getattr(args, k) is not None}
    used = dataclasses.replace(
        declared,
        **given,
        rules=Exclusions(**{**rules, **flags}),
        before_exclusions=True,
        halfwidth=args.halfwidth,
        plan_difference=args.plan_difference,
        power=args.power,
    )
    changed = {**given, **flags}
    before = {**{k: getattr(declared, k) for k in given}, **{k: rules[k] for k in flags}}
    overrides = {
        ("bootstrap" if k == "n_boot" else k): {"declared": before[k], "used": v}
        for k, v in changed.items()
        if by_study and v != before[k]
    }
    provenance = {
        "source": str(args.source),
        "declared_by": "study.toml" if by_study else None,
        "overrides": overrides,
    }
    return used, provenance


def _table_option(text: str | None, columns: Sequence[str]) -> tuple[str, str] | None:
    """``--table ROWS,COLUMNS``, both columns of the answer table."""
    if text is None:
        return None
    rows, _, cols = text.partition(",")
    if not rows or not cols:
        raise ConfigError(f"--table takes ROWS,COLUMNS, e.g. training,architecture; got {text!r}.")
    check_table(pd.DataFrame(columns=list(columns)), [rows, cols])
    return rows, cols


def _check_plans(args: argparse.Namespace) -> None:
    """Refuse bad planning flags before any work."""
    if args.halfwidth is not None:
        check_float("score", "--halfwidth", args.halfwidth, 0.0, 0.5, low_open=True)
    if args.plan_difference is not None:
        if not args.compare:
            raise ConfigError(
                "--plan-difference needs --compare COLUMN: the levels whose difference to plan."
            )
        check_float("score", "--plan-difference", args.plan_difference, 0.0, 1.0, low_open=True)
        check_float("score", "--power", args.power, 0.05, 1.0, low_open=True)


def _alignment_view(scores: pd.DataFrame, by: Sequence[str], title: str) -> Table:
    view = Table(title=title)
    for col in (
        *by,
        "answers",
        "participants",
        "items",
        "alignment [95% CI, crossed bootstrap]",
        "design effect",
        "chance",
        "p vs chance",
        "p (Holm)",
    ):
        view.add_column(col)
    for _, r in scores.iterrows():
        view.add_row(
            *(str(r[c]) for c in by),
            str(r["answers"]),
            str(r["participants"]),
            str(r["items"]),
            f"{r['alignment']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]",
            f"{r['design_effect']:.2f}",
            f"{r['chance']:.2f}",
            f"{r['p_chance']:.2g}",
            f"{r['p_chance_holm']:.2g}",
        )
    return view


def _comparison_view(pairs: pd.DataFrame) -> Table:
    view = Table(title=f"Pairwise differences in alignment ({', '.join(pairs['column'].unique())})")
    for col in ("column", "a", "b", "difference [95% CI]", "p (crossed bootstrap)", "p (Holm)"):
        view.add_column(col)
    for _, r in pairs.iterrows():
        view.add_row(
            str(r["column"]),
            str(r["a"]),
            str(r["b"]),
            f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
            f"{r['p']:.3g}",
            f"{r['p_holm']:.3g}",
        )
    return view


def _show(scores: AnswerScores, source: Path) -> None:
    """Print what ``scores`` found, table by table."""
    by = scores.analysis.by
    if scores.unexcluded is not None:
        out.print(_alignment_view(scores.unexcluded, by, f"Without exclusions: {source}"))
        for _, r in scores.exclusions.iterrows():
            out.print(
                f"Excluded by '{r['rule']}': {r['participants']} participants, "
                f"{r['answers']} answers"
            )
        out.print(_alignment_view(scores.humans, by, f"After exclusions: {source}"))
    else:
        out.print(_alignment_view(scores.humans, by, f"Alignment: {source} (no exclusions)"))
    if scores.table is not None:
        out.print(scores.table.to_string())
    agreement, fleiss = scores.agreement, scores.agreement["fleiss_kappa"]
    out.print(
        f"Agreement between participants: Krippendorff's alpha "
        f"{agreement['krippendorff_alpha']:.3f}"
        + (
            f", Fleiss' kappa {fleiss:.3f}"
            if fleiss is not None
            else " (Fleiss' kappa needs the same number of answers per item)"
        )
    )
    ceiling = agreement["noise_ceiling"]
    out.print(
        f"Split-half reliability (Spearman-Brown), the noise ceiling: "
        f"{ceiling['reliability']:.3f} (middle 95% of {ceiling['splits']} random splits: "
        f"{ceiling['low']:.3f} to {ceiling['high']:.3f}; a spread, not a CI)"
    )
    if scores.comparisons is not None:
        out.print(_comparison_view(scores.comparisons))
    for line in (line for lines in scores.plans.values() for line in lines):
        out.print(line)
    if scores.versus is not None:
        versus = scores.versus
        out.print(versus.drop(columns=["participants"]).to_string(index=False))
        bots = scores.analysis.bots_judge
        if "note" in versus.columns and bots in set(versus.loc[versus["note"] != "", "judge"]):
            out.print(
                f"{bots} decides the simulated participants: its agreement with them is not "
                "evidence, and it is not recommended."
            )
        best = stand_in(versus)
        out.print(
            "Recommended stand-in for people on these stimuli: "
            + (best or "none (no judge agrees with the human majority on 80% of the items)")
        )


def run(args: argparse.Namespace) -> int:
    _check_plans(args)
    study = args.source.is_dir()
    if args.judges and not study:
        raise ConfigError("--judges needs a study folder (the judges look at its stimuli).")
    raw = _read(_survey(args.source) if study else args.source)
    declared, spec = _declared(args, list(raw.columns))
    if spec is not None:  # the labels of the study's paper-style tables, as its score step
        raw = with_labels(raw, model_labels(spec.models))
    analysis, provenance = _analysis(args, list(raw.columns), declared, spec)
    for name, change in provenance["overrides"].items():
        out.print(
            f"Overrides the study's declared {name}: {change['declared']} -> {change['used']}"
        )
    if study and args.out is None:
        args.out, args.overwrite = _survey(args.source) / "scores", True
    scores = score_answers(raw, analysis)
    _show(scores, args.source)
    if args.out is not None:
        with atomic_folder(args.out, args.overwrite) as tmp:
            scores.write(tmp)
            summary = {**scores.summary(), **provenance}
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str) + "\n")
        out.print(f"Wrote {args.out}/humans.csv, the other tables and summary.json")
    return 0
