"""``percalign score TABLE.csv --by model,layer``: alignment with honest uncertainty."""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table

from percalign._settings import add_options
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
from percalign.study.scores import (
    declared_exclusions,
    declared_spec,
    human_scores,
    study_answers,
)
from percalign.study.spec import Scoring

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
        "training,arch), like the paper's",
    )
    p.add_argument(
        "--halfwidth",
        type=float,
        default=None,
        help="answers needed per group for a CI of +- this (these data as a pilot)",
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
        help="study folders only: judges to compare with the people, e.g. pixel,ssim,lpips-alex",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=None,
        help=f"bootstrap resamples (default: a study's declared scoring.n_boot, else "
        f"{Scoring.n_boot})",
    )
    p.add_argument(
        "--seed", type=int, default=None, help="resampling seed (default: a study's seed, else 0)"
    )
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


def _analysis(args: argparse.Namespace, columns: Sequence[str]) -> dict[str, Any]:
    """The analysis to run: a study's declared one (seed, bootstrap count, exclusions,
    grouping) with the flags given on top; ``overrides``: each flag that changed a declared
    value, as ``{name: {"declared": ..., "used": ...}}``; ``bots_judge``: the judge the
    study's simulated participants decide with (None without a study spec)."""
    study = args.source.is_dir()
    spec = declared_spec(args.source) if study else None
    if spec is not None:
        declared: dict[str, Any] = {
            "seed": spec.study.seed,
            "bootstrap": spec.scoring.n_boot,
            "by": list(spec.scoring.by),
            **dataclasses.asdict(spec.exclusions),
        }
    else:
        rules = declared_exclusions(_survey(args.source)) if study else Exclusions()
        default_by = [c for c in ("model", "layer", "seed_type") if c in columns] if study else []
        declared = {"seed": 0, "bootstrap": Scoring.n_boot, "by": default_by}
        declared.update(dataclasses.asdict(rules))
    given = {name: getattr(args, name) for name in ("seed", "bootstrap", *EXCLUSION_FIELDS)}
    if args.by is not None:
        given["by"] = [c for c in args.by.split(",") if c]
    used = {**declared, **{k: v for k, v in given.items() if v is not None}}
    overrides = {
        k: {"declared": declared[k], "used": used[k]}
        for k in used
        if spec is not None and used[k] != declared[k]
    }
    return {
        **used,
        "declared_by": "study.toml" if spec else None,
        "overrides": overrides,
        "bots_judge": spec.bots.judge if spec is not None else None,
    }


def _survey(folder: Path) -> Path:
    """The survey folder of a study folder (or the folder itself when it is one)."""
    return folder / "survey" if (folder / "survey" / "survey.json").is_file() else folder


def run(args: argparse.Namespace) -> int:
    study = args.source.is_dir()
    raw = _read(_survey(args.source) if study else args.source)
    analysis = _analysis(args, list(raw.columns))
    by, seed, n_boot = analysis["by"], analysis["seed"], analysis["bootstrap"]
    for name, change in analysis["overrides"].items():
        out.print(
            f"Overrides the study's declared {name}: {change['declared']} -> {change['used']}"
        )
    if study and args.out is None:
        args.out, args.overwrite = _survey(args.source) / "scores", True
    rules = Exclusions(**{name: analysis[name] for name in EXCLUSION_FIELDS})
    table, report, scores = human_scores(raw, rules, by, n_boot, seed)
    if int(report["participants"].sum()):
        unexcluded = alignment(raw, by, n_boot=n_boot, seed=seed)
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
    ceiling = noise_ceiling(table, seed=seed)
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
        f"{ceiling['reliability']:.3f} (middle 95% of {ceiling['splits']} random splits: "
        f"{ceiling['low']:.3f} to {ceiling['high']:.3f}; a spread, not a CI)"
    )
    pairs = None
    if args.compare:
        pairs = compare(table, args.compare, n_boot=n_boot, seed=seed)
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

        versus = judges_vs_humans(_survey(args.source), table, get_judges(args.judges), by, seed)
        out.print(versus.to_string(index=False))
        best = versus[versus["majority"] >= 0.8].sort_values("expected", ascending=False)
        bots = "platform" in table.columns and table["platform"].astype(str).eq("bot").any()
        if bots and analysis["bots_judge"] in set(versus["judge"]):
            # the simulated participants decide with this judge: agreement by construction
            out.print(
                f"{analysis['bots_judge']} decides the simulated participants: its agreement "
                "with them is not evidence, and it is not recommended."
            )
            best = best[best["judge"] != analysis["bots_judge"]]
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
                "bootstrap": n_boot,
                "seed": seed,
                "declared_by": analysis["declared_by"],
                "overrides": analysis["overrides"],
                "noise_ceiling": ceiling,
                "alignment": scores.to_dict(orient="records"),
            }
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        out.print(f"Wrote {args.out}/alignment.csv and summary.json")
    return 0
