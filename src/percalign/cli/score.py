"""``percalign score TABLE.csv --by model,layer``: alignment with honest uncertainty."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd
from rich.table import Table

from percalign._settings import add_options, options_from
from percalign.cli._console import out
from percalign.errors import ConfigError, MissingFileError
from percalign.scoring import (
    Exclusions,
    alignment,
    answers_for_halfwidth,
    compare,
    design_effect,
    fleiss_kappa,
    krippendorff_alpha,
    noise_ceiling,
    paper_table,
)
from percalign.store.runs import atomic_folder
from percalign.study.scores import human_scores, study_answers
from percalign.study.spec import Scoring


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
        default="",
        help="comma-separated grouping columns, e.g. model,layer (a study folder: "
        "model,layer,seed_type)",
    )
    p.add_argument(
        "--compare", default=None, help="column whose levels are compared pairwise (e.g. model)"
    )
    p.add_argument(
        "--table",
        default=None,
        metavar="ROWS,COLUMNS",
        help="also lay alignment out as a ROWS x COLUMNS table (e.g. "
        "training,arch), like the paper's",
    )
    p.add_argument(
        "--halfwidth",
        type=float,
        default=None,
        help="answers needed per group for a CI of +- this (these data as a pilot)",
    )
    g = p.add_argument_group(
        "exclusions (applied when the table has the columns; results are "
        "shown with and without them)"
    )
    add_options(g, Exclusions)
    p.add_argument(
        "--judges",
        default=None,
        help="study folders only: judges to compare with the people, e.g. pixel,ssim,lpips-alex",
    )
    p.add_argument("--bootstrap", type=int, default=Scoring.n_boot, help="bootstrap resamples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="folder for the score CSVs and JSON")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(run=run)


def _read(path: Path) -> pd.DataFrame:
    if path.is_dir():
        from percalign.store.study import read_answers

        table = read_answers(path)
        if table.empty:
            raise ConfigError(f"Study {path} has no answers yet; nothing to score.")
        return study_answers(table)
    if not path.is_file():
        raise MissingFileError(f"No answer table at {str(path)!r}.")
    try:
        table = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    except (ValueError, OSError, pd.errors.ParserError) as exc:  # EmptyDataError included
        raise ConfigError(f"Cannot read an answer table from {path}: {exc}") from exc
    if table.empty:
        raise ConfigError(f"{path} holds no answers yet; nothing to score.")
    return table


def _alignment_view(scores: pd.DataFrame, by: list[str], title: str) -> Table:
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


def run(args: argparse.Namespace) -> int:
    raw = _read(args.source)
    study = args.source.is_dir()
    by = [c for c in args.by.split(",") if c] or (
        [c for c in ("model", "layer", "seed_type") if c in raw.columns] if study else []
    )
    if study:
        from percalign.store.study import read_meta, study_url

        threshold = read_meta(study_url(args.source)).get("min_catch_accuracy")
        if threshold is not None and args.min_catch_accuracy == Exclusions().min_catch_accuracy:
            args.min_catch_accuracy = float(threshold)  # the study's declared rule
        if args.out is None:
            args.out, args.overwrite = args.source / "scores", True
    rules = Exclusions(**options_from(Exclusions, args))
    table, report, scores = human_scores(raw, rules, by, args.bootstrap, args.seed)
    if int(report["participants"].sum()):
        unexcluded = alignment(raw, by, n_boot=args.bootstrap, seed=args.seed)
        out.print(_alignment_view(unexcluded, by, f"Without exclusions: {args.source}"))
        for _, r in report.iterrows():
            out.print(
                f"Excluded by '{r['rule']}': {r['participants']} participants, "
                f"{r['answers']} answers"
            )
        out.print(_alignment_view(scores, by, f"After exclusions: {args.source}"))
    else:
        out.print(_alignment_view(scores, by, f"Alignment: {args.source} (no exclusions)"))
    if args.table:
        rows, _, cols = args.table.partition(",")
        if rows not in by or cols not in by:
            raise ConfigError(f"--table {args.table} needs both of its columns in --by.")
        out.print(paper_table(scores, rows, cols).to_string())
    if args.halfwidth:
        for _, r in scores.iterrows():
            effect = design_effect(r, int(r["answers"]))
            need = answers_for_halfwidth(float(r["alignment"]), args.halfwidth, effect)
            label = ", ".join(str(r[c]) for c in by) or "all"
            out.print(
                f"{label}: {need} answers for +-{args.halfwidth:g} (design effect "
                f"{effect:.2f}; {need / max(int(r['participants']), 1):.0f} per "
                "participant at this many participants)"
            )
    ceiling = noise_ceiling(table, seed=args.seed)
    answers = table.assign(choice=table["correct"])
    try:
        fleiss: float | None = fleiss_kappa(answers)
    except ValueError:  # items answered by different numbers of people
        fleiss = None
    alpha = krippendorff_alpha(answers)
    out.print(
        f"Agreement between participants: Krippendorff's alpha {alpha:.3f}"
        + (
            f", Fleiss' kappa {fleiss:.3f}"
            if fleiss is not None
            else " (Fleiss' kappa needs the same number of answers per item)"
        )
    )
    out.print(
        f"Split-half reliability (Spearman-Brown), the noise ceiling: "
        f"{ceiling['reliability']:.3f} [{ceiling['low']:.3f}, {ceiling['high']:.3f}]"
    )
    pairs = None
    if args.compare:
        pairs = compare(table, args.compare, n_boot=args.bootstrap, seed=args.seed)
        cmp_view = Table(title=f"Pairwise differences in alignment ({args.compare})")
        for col in ("a", "b", "difference [95% CI]", "p (crossed bootstrap)", "p (Holm)"):
            cmp_view.add_column(col)
        for _, r in pairs.iterrows():
            cmp_view.add_row(
                str(r["a"]),
                str(r["b"]),
                f"{r['difference']:+.3f} [{r['ci_low']:+.3f}, {r['ci_high']:+.3f}]",
                f"{r['p']:.3g}",
                f"{r['p_holm']:.3g}",
            )
        out.print(cmp_view)
    versus = None
    if args.judges:
        if not study:
            raise ConfigError("--judges needs a study folder (the judges look at its stimuli).")
        from percalign.judges import get_judges
        from percalign.study.scores import judges_vs_humans

        versus = judges_vs_humans(args.source, table, get_judges(args.judges), by, args.seed)
        out.print(versus.to_string(index=False))
        best = versus[versus["majority"] >= 0.8].sort_values("expected", ascending=False)
        out.print(
            "Recommended stand-in for people on these stimuli: "
            + (
                best.iloc[0]["judge"]
                if len(best)
                else "none (no judge agrees with the human majority on 80% of the items)"
            )
        )
    if args.out is not None:
        with atomic_folder(args.out, args.overwrite) as tmp:
            if versus is not None:
                versus.to_csv(tmp / "judges_vs_humans.csv", index=False)
            scores.to_csv(tmp / "alignment.csv", index=False)
            if pairs is not None:
                pairs.to_csv(tmp / "comparisons.csv", index=False)
            report.to_csv(tmp / "exclusions.csv", index=False)
            summary = {
                "agreement": {"krippendorff_alpha": alpha, "fleiss_kappa": fleiss},
                "exclusions": report.attrs["rules"],
                "excluded": report.to_dict(orient="records"),
                "source": str(args.source),
                "by": by,
                "bootstrap": args.bootstrap,
                "seed": args.seed,
                "noise_ceiling": ceiling,
                "alignment": scores.to_dict(orient="records"),
            }
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        out.print(f"Wrote {args.out}/alignment.csv and summary.json")
    return 0
