"""Does planning from a pilot tell the truth? Variance components and planned designs, simulated.

Scenarios simulate answer tables with logit-normal participant, target and IRI effects
(:mod:`percalign.scoring.simulate`). For each:

(a) **components**: the variance components of pilots (:func:`variance_components`) against
    the truth (quadrature, :func:`population_components`), and the coverage of the pilot's
    share correct +- 1.96 SD, the SD from its components in closed form
    (:func:`mean_variance`): whether the components calibrate;
(b) **half-widths**: from the true components, the participants :func:`plan_halfwidth` asks
    for at the pilot's IRIs (a target between the floor and the pilot's own half-width), and
    the design it offers with more IRIs when the target is below the floor; tables of that
    design are simulated and scored as ``percalign score`` does (:func:`alignment`): the median
    printed half-width should be at most the target. Also: the share of plans made from a
    pilot instead of the truth whose design reaches the target (by the closed form);
(c) **power**: from the true components and covariances, the participants
    :func:`plan_difference` asks for to detect the difference two models have at power 0.8;
    tables of that design are scored with :func:`compare` and the share whose difference CI
    excludes 0 should be within a couple of points of 0.8;
(d) **the issue's case**: a 30 x 40 pilot (participant SD 0.5, IRI SD 1), +-0.05: the plan
    says only more IRIs can reach it; tables with 10 times the participants at 40 IRIs do not,
    and the design it offers does.

    .venv/bin/python benchmarks/planning.py --tables 150 --boot 400
    .venv/bin/python benchmarks/planning.py --tables 400 --boot 300 --parts c
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np

from percalign.scoring import (
    Components,
    CrossedDesign,
    Layout,
    Shared,
    alignment,
    compare,
    mean_variance,
    plan_difference,
    plan_halfwidth,
    predicted_halfwidth,
    variance_components,
)
from percalign.scoring.simulate import (
    Scenario,
    population_components,
    population_shared,
    simulate,
)

SCENARIOS = (
    Scenario("P30 x 40 IRIs, P SD 0.5, IRI SD 1", targets=40, models=1, name_targets=False),
    Scenario(
        "P30 x 40, P SD 0.8, IRI SD 0.5, logit 1",
        targets=40,
        models=1,
        participant_sd=0.8,
        iri_sd=0.5,
        logit=1.0,
        name_targets=False,
    ),
    Scenario(
        "P20 x 12 targets x 3 IRIs, target SD 1, IRI SD 0.5",
        participants=20,
        targets=12,
        iris_per_target=3,
        models=1,
        participant_sd=0.5,
        target_sd=1.0,
        iri_sd=0.5,
    ),
    Scenario(
        "P40 x 60, half answered, IRI SD 0.7",
        participants=40,
        targets=60,
        models=1,
        participant_sd=0.4,
        iri_sd=0.7,
        answered=0.5,
        name_targets=False,
    ),
)

DIFFERENCES = (
    Scenario(
        "unpaired: own IRIs, IRI SD 0.7, shift 0.4",
        targets=30,
        iri_sd=0.7,
        shift=0.4,
        name_targets=False,
    ),
    Scenario(
        "paired: shared targets, target SD 1, IRI SD 0.3, shift 0.3",
        targets=30,
        participant_sd=0.5,
        target_sd=1.0,
        iri_sd=0.3,
        shift=0.3,
    ),
)


def layout_of(s: Scenario) -> Layout:
    iris = s.targets * s.iris_per_target
    return Layout(s.participants, iris, s.answered * iris, float(s.iris_per_target))


def true_components(s: Scenario, model: int = 0) -> Components:
    """The truth in the form a pilot estimates it (one IRI per target: no target part)."""
    t = population_components(s, model)
    target, iri = (
        (t["target"], t["iri"]) if s.iris_per_target > 1 else (0.0, t["target"] + t["iri"])
    )
    return Components(None, t["mean"], t["participant"], target, iri, t["residual"], layout_of(s))


def scenario_of(s: Scenario, lay: Layout) -> Scenario:
    k = round(lay.iris_per_target)
    return dataclasses.replace(
        s,
        participants=lay.participants,
        targets=lay.iris // k,
        answered=lay.per_participant / lay.iris,
    )


def halfwidths(s: Scenario, tables: int, boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(tables):
        row = alignment(simulate(s, rng), ["model"], n_boot=boot, seed=seed + k).iloc[0]
        out.append((row["ci_high"] - row["ci_low"]) / 2)
    return np.array(out)


def components_rows(tables: int, boot: int, seed: int) -> None:
    print("\n## (a) components of pilots (mean, SD over pilots) against the truth")
    print(
        "| scenario | | participant | target | IRI | residual | mean +- 1.96 SD covers "
        "| predicted / printed half-width |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for s in SCENARIOS:
        truth = true_components(s)
        rng = np.random.default_rng(seed)
        est, covered, ratio = [], [], []
        for k in range(tables):
            design = CrossedDesign.of(simulate(s, rng))
            c = variance_components(design)[0]
            est.append((c.participant, c.target, c.iri, c.residual))
            sd = np.sqrt(mean_variance(c, c.layout))
            covered.append(abs(c.mean - truth.mean) <= 1.96 * sd)
            reps = design.replicates(boot, seed + k)[:, 0]
            lo, hi = np.nanquantile(reps, [0.025, 0.975])
            ratio.append(predicted_halfwidth(c, c.layout) / ((hi - lo) / 2))
        e = np.array(est)
        t = (truth.participant, truth.target, truth.iri, truth.residual)
        print(f"| {s.name} | truth | " + " | ".join(f"{v:.4f}" for v in t) + " | | |")
        cells = " | ".join(f"{m:.4f} ({d:.4f})" for m, d in zip(e.mean(0), e.std(0), strict=True))
        print(
            f"| | pilots | {cells} | {np.mean(covered):.3f} | median {np.median(ratio):.3f}, "
            f"middle 90% {np.quantile(ratio, 0.05):.2f}-{np.quantile(ratio, 0.95):.2f} |"
        )


def halfwidth_rows(tables: int, boot: int, seed: int) -> None:
    print("\n## (b) planned half-widths: median printed half-width of the planned design")
    print(
        "| scenario | target | plan | predicted | median printed | share <= target "
        "| pilot plans reaching it |"
    )
    print("|---|---|---|---|---|---|---|")
    for s in SCENARIOS:
        truth = true_components(s)
        pilot_hw = predicted_halfwidth(truth, truth.layout)
        floor = plan_halfwidth(truth, 0.49).floor
        for target in (round((floor + pilot_hw) / 2, 3), round(0.85 * floor, 3)):
            plan = plan_halfwidth(truth, target)
            lay = plan.layout if plan.reachable else plan.examples[0]
            hw = halfwidths(scenario_of(s, lay), tables, boot, seed)
            reach = pilot_plans(s, truth, target, tables, seed)
            print(
                f"| {s.name} | {target:.3f} | {lay.participants} x {lay.iris} IRIs "
                f"({lay.per_participant:.0f} each){'' if plan.reachable else ', more IRIs'} | "
                f"{predicted_halfwidth(truth, lay):.4f} | {np.median(hw):.4f} | "
                f"{np.mean(hw <= target):.2f} | {reach} |",
                flush=True,
            )


def pilot_plans(s: Scenario, truth: Components, target: float, pilots: int, seed: int) -> str:
    """Share of plans made from a pilot whose design reaches ``target`` (true closed form)."""
    rng = np.random.default_rng(seed + 1)
    reached = []
    for _ in range(pilots):
        c = variance_components(CrossedDesign.of(simulate(s, rng)))[0]
        plan = plan_halfwidth(c, target)
        lay = plan.layout if plan.reachable else (plan.examples or (None,))[0]
        reached.append(lay is not None and predicted_halfwidth(truth, lay) <= target)
    return f"{np.mean(reached):.2f}"


def power_rows(tables: int, boot: int, seed: int) -> None:
    print("\n## (c) planned power 0.8: share of planned tables whose difference CI excludes 0")
    print("| scenario | difference | plan | planned power | simulated power |")
    print("|---|---|---|---|---|")
    for s in DIFFERENCES:
        a, b = true_components(s), true_components(s, 1)
        truth = population_shared(s)
        paired = float(s.name_targets)
        shared = Shared(truth["participant"], truth["target"] * paired, paired)
        d = b.mean - a.mean
        plan = plan_difference(a, b, shared, d, power=0.8)
        lay = plan.layout if plan.reachable else plan.examples[0]
        rng = np.random.default_rng(seed + 2)
        hits = []
        for k in range(tables):
            row = compare(simulate(scenario_of(s, lay), rng), "model", n_boot=boot, seed=seed + k)
            hits.append(bool((row["ci_low"].iloc[0] > 0) or (row["ci_high"].iloc[0] < 0)))
        print(
            f"| {s.name} | {d:.3f} | {lay.participants} x {lay.iris} IRIs per model | 0.80 | "
            f"{np.mean(hits):.3f} |",
            flush=True,
        )


def issue_case(tables: int, boot: int, seed: int) -> None:
    print("\n## (d) the issue's case: 30 x 40 pilot, +-0.05")
    s = SCENARIOS[0]
    pilot = simulate(s, np.random.default_rng(seed))
    c = variance_components(CrossedDesign.of(pilot))[0]
    plan = plan_halfwidth(c, 0.05)
    print(
        f"pilot components: participant {c.participant:.4f}, IRI {c.iri:.4f}, residual "
        f"{c.residual:.4f}; reachable at 40 IRIs: {plan.reachable}; floor +-{plan.floor:.3f}; "
        f"IRIs needed: {plan.iris_needed}; offered: "
        + ", ".join(f"{e.iris} IRIs x {e.participants} participants" for e in plan.examples)
    )
    many = halfwidths(dataclasses.replace(s, participants=300), tables, boot, seed)
    print(f"300 participants x 40 IRIs: median printed half-width {np.median(many):.4f}")
    truth = true_components(s)
    for lay in plan.examples:
        hw = halfwidths(scenario_of(s, lay), tables, boot, seed)
        print(
            f"{lay.participants} participants x {lay.iris} IRIs: median printed half-width "
            f"{np.median(hw):.4f} (true components predict {predicted_halfwidth(truth, lay):.4f})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=200, help="simulated tables per cell")
    parser.add_argument("--boot", type=int, default=500, help="bootstrap resamples per table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--parts", default="abcd", help="which of (a)-(d) to run, e.g. bc")
    args = parser.parse_args()
    print(f"# {args.tables} tables per cell, {args.boot} bootstrap resamples, seed {args.seed}")
    start = time.perf_counter()
    if "a" in args.parts:
        components_rows(args.tables, args.boot, args.seed)
    if "b" in args.parts:
        halfwidth_rows(args.tables, args.boot, args.seed)
    if "c" in args.parts:
        power_rows(args.tables, args.boot, args.seed)
    if "d" in args.parts:
        issue_case(min(args.tables, 100), args.boot, args.seed)
    print(f"\n# {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
