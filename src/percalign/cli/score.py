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

from percalign._checks import check_float
from percalign._settings import add_options
from percalign.cli._console import out
from percalign.errors import ConfigError, MissingFileError
from percalign.scoring import (
    CrossedDesign,
    Exclusions,
    Layout,
    alignment,
    check_table,
    compare,
    fleiss_kappa,
    krippendorff_alpha,
    noise_ceiling,
    paper_table,
    plan_difference,
    plan_halfwidth,
    predicted_halfwidth,
    shared_components,
    variance_components,
)
from percalign.store.runs import atomic_folder
from percalign.study.spec import Scoring
from percalign.study.steps.score import (
    declared_exclusions,
    declared_spec,
    human_scores,
    study_answers,
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
        "training,arch), like the paper's",
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


def _layout(lay: Layout) -> str:
    return f"{lay.iris} IRIs with {lay.participants} participants"


def _halfwidth_advice(table: pd.DataFrame, by: list[str], halfwidth: float) -> list[str]:
    """One line per group: the participants a 95% CI of +- ``halfwidth`` needs at the group's
    IRIs (its variance components from these answers), or the floor and the IRIs needed."""
    lines = []
    groups = table.groupby(by, sort=True, observed=True) if by else [((), table)]
    for key, group in groups:
        label = ", ".join(map(str, key if isinstance(key, tuple) else (key,))) or "all"
        try:
            c = variance_components(CrossedDesign.of(group))[0]
        except ConfigError as exc:
            lines.append(f"{label}: no plan: {exc}")
            continue
        plan = plan_halfwidth(c, halfwidth)
        lay, each = c.layout, f"each answering {c.layout.per_participant:.0f}"
        target = f"target {c.target:.4f}, " if lay.iris_per_target > 1 else ""
        parts = (
            f"{label}: variance components (participant {c.participant:.4f}, {target}IRI "
            f"{c.iri:.4f}, residual {c.residual:.4f}); with {lay.participants} participants "
            f"the CI is +-{predicted_halfwidth(c, lay):.3f}. "
        )
        if plan.reachable:
            lines.append(
                parts + f"+-{halfwidth:g} needs {plan.layout.participants} participants at its "
                f"{lay.iris} IRIs, {each} (with unlimited participants: +-{plan.floor:.3f})."
            )
        else:
            examples = "; ".join(_layout(e) for e in plan.examples)
            lines.append(
                parts + f"+-{halfwidth:g} cannot be reached with {lay.iris} IRIs at any number "
                f"of participants: the IRIs' variance alone leaves +-{plan.floor:.3f}. It needs "
                f"at least {plan.iris_needed} IRIs (with very many participants), e.g. "
                f"{examples} ({each})."
            )
    return lines


def _difference_advice(
    table: pd.DataFrame, column: str, difference: float, power: float
) -> list[str]:
    """One line per pair of levels of ``column``: the participants (answering both) needed to
    detect ``difference`` with ``power`` at the first level's IRIs, or the IRIs needed."""
    design = CrossedDesign.of(check_table(table, [column]), column)
    components = variance_components(design)
    lines = []
    for a in range(len(components)):
        for b in range(a + 1, len(components)):
            ca, cb = components[a], components[b]
            label = f"{ca.level} vs {cb.level}"
            try:
                shared = shared_components(design, a, b)
            except ConfigError as exc:
                lines.append(f"{label}: no plan: {exc}")
                continue
            plan = plan_difference(ca, cb, shared, difference, power)
            lay, each = ca.layout, f"each answering {ca.layout.per_participant:.0f} per level"
            if plan.reachable:
                lines.append(
                    f"{label}: a difference of {difference:g} at power {power:g} needs "
                    f"{plan.layout.participants} participants who answer both, at {lay.iris} "
                    f"IRIs per level, {each}."
                )
            else:
                examples = "; ".join(_layout(e) for e in plan.examples)
                lines.append(
                    f"{label}: a difference of {difference:g} cannot reach power {power:g} with "
                    f"{lay.iris} IRIs per level at any number of participants (at most "
                    f"{plan.floor:.2f}). It needs at least {plan.iris_needed} IRIs per level "
                    f"(with very many participants), e.g. {examples} ({each})."
                )
    return lines


def run(args: argparse.Namespace) -> int:
    _check_plans(args)
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
    plans: dict[str, list[str]] = {}
    if args.halfwidth is not None:
        plans["halfwidth"] = _halfwidth_advice(table, by, args.halfwidth)
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
    if args.plan_difference is not None:
        plans["difference"] = _difference_advice(
            table, args.compare, args.plan_difference, args.power
        )
    for line in (line for lines in plans.values() for line in lines):
        out.print(line)
    versus = None
    if args.judges:
        if not study:
            raise ConfigError("--judges needs a study folder (the judges look at its stimuli).")
        from percalign.judges import get_judges
        from percalign.study.steps.score import judges_vs_humans

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
                **({"plans": plans} if plans else {}),
            }
            (tmp / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
        out.print(f"Wrote {args.out}/alignment.csv and summary.json")
    return 0
