"""``percalign demo``: the main job, a whole study on the embedded digits, offline.

It writes the packaged demo spec (``percalign/study/demo.toml``) to ``OUT/study.toml`` and runs
it: trains the four digit models into the zoo (once), inverts, judges, builds the 2AFC survey,
sends 30 simulated participants through the real survey service, scores, runs the trust
analysis and writes the report. A second run reuses everything that is done.
"""

from __future__ import annotations

import argparse
import time
from importlib import resources
from pathlib import Path

from percalign.cli._console import err, inversion_progress, out, step_log
from percalign.cli.options import add_output, add_set_option
from percalign.cli.study import people_hint

DEMO_SPEC = "demo.toml"


def demo_spec_text() -> str:
    """The packaged demo study spec."""
    return resources.files("percalign.study").joinpath(DEMO_SPEC).read_text()


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="run a whole study on the embedded digits (offline)")
    add_output(
        p,
        help="study folder (default: demo-out)",
        required=False,
        default=Path("demo-out"),
        overwrite=False,
    )
    add_set_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from percalign.study.overrides import apply_overrides, dump_spec
    from percalign.study.pipeline import run_study
    from percalign.study.spec import load_spec, tomllib

    started = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    spec_path = args.out / "study.toml"
    text = demo_spec_text()
    if args.overrides:  # the packaged spec scaled or changed, written as the study's spec
        data = apply_overrides(tomllib.loads(text), args.overrides)
        text = dump_spec(data, f"{DEMO_SPEC} with --set " + " --set ".join(args.overrides))
    if not spec_path.is_file() or spec_path.read_text() != text:
        spec_path.write_text(text)
    spec = load_spec(spec_path)
    err.print(spec.study.name)
    with inversion_progress("invert") as progress:
        pipeline = run_study(spec, args.out, log=step_log(), progress=progress)
    report = pipeline.folder / "report" / "index.html"
    out.print(_headline(pipeline.folder))
    out.print(
        f"\n[bold]Done in {time.perf_counter() - started:.0f} s.[/] Report: {report.resolve()}"
    )
    out.print(
        "The survey answers come from simulated participants (bots), labelled as such. "
        "To ask people the same questions, make a fresh copy of the survey (without the "
        "bots' answers) with your consent text (researcher, contact, pay, withdrawal), and "
        "serve that:\n" + people_hint(pipeline.folder)
    )
    return 0


def _headline(folder: Path) -> str:
    """The paper-style table and the trust result, as text."""
    import pandas as pd

    lines = []
    validity = folder / "scores" / "validity.csv"
    if validity.is_file():
        v = pd.read_csv(validity)
        rates = v.pivot_table(index="model", columns=["loss", "seed_type"], values="pass_rate")
        lines.append("IRIs valid (share below the 1% null of natural-image distances):")
        lines.append((100 * rates).round(0).to_string())
    judges = folder / "scores" / "judges_table.csv"
    if judges.is_file():
        table = pd.read_csv(judges, index_col=0)
        lines.append(
            "Alignment by judges, regularizer-free IRIs (% other-target 2AFC, valid IRIs, "
            "mean (SD) over judges):"
        )
        lines.append(table.to_string())
    by_loss = folder / "scores" / "judges_by_loss.csv"
    if by_loss.is_file():
        lines.append("Alignment per loss family (% other-target 2AFC, valid IRIs; judges in []):")
        lines.append(pd.read_csv(by_loss, index_col=0).to_string())
    humans = folder / "scores" / "humans_by_model.csv"
    if humans.is_file():
        h = pd.read_csv(humans)
        lines.append("Alignment by simulated participants (share naming the target, 95% CI):")
        for _, r in h.iterrows():
            lines.append(
                f"  {r['model']}: {r['alignment']:.3f} [{r['ci_low']:.3f}, {r['ci_high']:.3f}]"
            )
    trust = folder / "trust" / "summary.csv"
    if trust.is_file():
        t = pd.read_csv(trust)
        lines.append("Trust when models disagree (accuracy, 95% CI):")
        for _, r in t.iterrows():
            lines.append(
                f"  {r['method']:<36} {100 * r['accuracy']:5.1f}% "
                f"[{100 * r['lo']:.1f}, {100 * r['hi']:.1f}] on {r['inputs']} inputs"
            )
        import json

        lines.append("  " + json.loads((folder / "trust" / "trust.json").read_text())["verdict"])
    return "\n".join(lines)
