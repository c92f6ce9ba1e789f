"""Sequential decisions: do they keep their error rates, and how many participants do they save?

Simulated studies with known per-model alignment and participant, target and IRI
heterogeneity (logit-normal, as in :mod:`percalign.scoring.simulate`) answer a declared
comparison of two models (:class:`percalign.scoring.sequential.Question`: alpha 0.05, power
0.8 at a smallest difference of interest of 10 points) with looks every few participants up to
a budget. The budget is planned as a researcher would plan it, by
:func:`percalign.scoring.budget.requirement` from variance parts (here the mean parts of the
simulated studies at ``PILOT`` participants, a large pilot): the smallest budget whose own
boundaries give the declared power. Each study stops at the first look where the comparison
is settled (a difference, or futile), or at the budget. For true differences of 0, 5, 10 and
20 points the benchmark reports:

- how often a difference is declared (under 0: the false-positive rate) and how often the
  study stops for futility;
- participants used (mean and 90th percentile);
- the bias of the final estimate and the coverage of the repeated CI (and of the plain CI at
  the stopping look, for comparison);
- the fixed design, simulated on the same studies (the crossed moment test of
  :mod:`percalign.scoring.moments` on the first N participants, N on a grid, interpolated):
  the N with the declared power, and the N with the power the sequential design reached at
  that difference (equal power), and the share of participants saved against each.

``--causes`` replays the studies of the declared difference with the rule's parts switched
off one at a time (futility from the first look, no futility, the fixed design's information
as the budget): what each costs in power and participants.

A last table runs an incomplete design (each participant judges a subset of three models'
IRIs) with two questions, m0 - m1 and m0 - m2 (the second settles early), and compares a
balanced allocation with allocation by uncertainty (:mod:`percalign.scoring.allocation`) on
the same simulated answers: participants used, and the bias and coverage of m0 - m1.

    .venv/bin/python benchmarks/sequential.py --causes   # 1,000 studies per row
    .venv/bin/python benchmarks/sequential.py --studies 200 --alternatives 200 --allocation 60
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from scipy import optimize, stats

from percalign.scoring.allocation import allocate
from percalign.scoring.budget import Requirement, requirement
from percalign.scoring.moments import ContrastMoments, contrast_moments
from percalign.scoring.sequential import FUTILITY_FROM, SETTLED, Contrast, Look, Question, look
from percalign.scoring.simulate import Scenario, population_alignment

#: the main design: two models invert the same 40 targets; each participant judges 20 of the
#: 80 IRIs (allocate() with even needs); simulated up to ``MAIN.participants``
MAIN = Scenario(
    "paired, 40 targets x 2 models",
    participants=120,
    targets=40,
    models=2,
    participant_sd=0.5,
    target_sd=1.0,
    iri_sd=0.5,
    logit=0.4,
)
MAIN_SLOTS = 20
EVERY = 5
#: the budget is planned from the studies' mean variance parts at this many participants
PILOT = 60
DIFFERENCES = (0.0, 0.05, 0.10, 0.20)
QUESTION = Question("model", "compare", ("m0", "m1"), difference=0.10, alpha=0.05, power=0.8)
#: the allocation design: three models x 30 targets, 30 of the 90 IRIs per participant
ALLOCATION = replace(MAIN, name="3 models x 30 targets", participants=80, targets=30, models=3)
ALLOCATION_SLOTS = 30
MINIMUM = 2
CHUNK = 250


@dataclass
class Outcome:
    """Per study: participants used, whether a difference was found or the study stopped for
    futility, the final estimate and its repeated and plain CIs."""

    used: np.ndarray
    found: np.ndarray
    futile: np.ndarray
    estimate: np.ndarray
    rci: np.ndarray
    plain: np.ndarray


def logits_for(scenario: Scenario, alignments: list[float]) -> np.ndarray:
    """Each model's mean logit giving its population alignment."""

    def solve(a: float) -> float:
        return optimize.brentq(
            lambda x: population_alignment(replace(scenario, logit=x)) - a, -8.0, 8.0
        )

    return np.array([solve(a) for a in alignments])


def draw(
    scenario: Scenario, logits: np.ndarray, studies: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(studies, participants, items) 0/1 answers of every participant to every IRI, with
    each item's model and target."""
    s = scenario
    per_model = s.targets * s.iris_per_target
    target = np.tile(np.repeat(np.arange(s.targets), s.iris_per_target), s.models)
    model = np.repeat(np.arange(s.models), per_model)
    u = rng.normal(0, s.participant_sd, (studies, s.participants, 1))
    v = rng.normal(0, s.target_sd, (studies, 1, s.targets))[..., target]
    w = rng.normal(0, s.iri_sd, (studies, 1, per_model * s.models))
    p = 1 / (1 + np.exp(-(logits[model] + u + v + w)))
    return (rng.random(p.shape) < p).astype(np.float64), model, target


def at(moments: ContrastMoments, k: int) -> ContrastMoments:
    """Study ``k`` of batched moments."""
    return ContrastMoments(
        *(np.asarray(getattr(moments, f))[k] for f in ContrastMoments.__dataclass_fields__)
    )


def contrasts(levels: int, pairs: list[tuple[int, int]]) -> list[Contrast]:
    names = tuple(f"m{i}" for i in range(levels))
    out = []
    for a, b in pairs:
        question = replace(QUESTION, levels=(names[a], names[b]))
        out.extend(question.contrasts(names))
    return out


def balanced(studies: int, people: int, model: np.ndarray, slots: int, seed: int) -> np.ndarray:
    """(studies, people, items) 1 where a participant gets the item:
    :func:`percalign.scoring.allocation.allocate` with every model the same need. It ignores
    the answers, so the first N participants of a sequential study get what a fixed design
    of N would give them. One allocation serves every study of a call (a read-only view): the
    items' effects are drawn afresh for each study, so which item a participant gets carries
    no information, and allocating once instead of once per study saves most of the run."""
    counts = np.zeros((people, model.size))
    judged = np.zeros(model.size)
    even = np.ones(int(model.max()) + 1)
    for p in range(people):
        _give(counts, judged, even, model, slots, p, seed)
    return np.broadcast_to(counts, (studies, people, model.size))


def _give(
    counts: np.ndarray,
    judged: np.ndarray,
    need: np.ndarray,
    model: np.ndarray,
    slots: int,
    p: int,
    seed: int,
) -> None:
    """Allocate participant ``p``'s slots in one study's (people, items) ``counts``."""
    chosen = allocate(judged, model, need, np.zeros(model.size, bool), slots, MINIMUM, seed + p)
    counts[p, chosen] = 1.0
    judged[chosen] += 1.0


def run(
    answers: np.ndarray,
    model: np.ndarray,
    target: np.ndarray,
    decide: list[Contrast],
    budget: int,
    counts: np.ndarray | None,
    slots: int = 0,
    seed: int = 0,
    futility_from: float = FUTILITY_FROM,
) -> list[Outcome]:
    """Run every study through its looks; a study stops when every contrast is settled.

    ``counts``: which participant gets which item (:func:`balanced`). None: allocate by
    uncertainty as participants arrive, ``slots`` items each, by
    :func:`percalign.scoring.allocation.allocate` with each model's need the participant
    part of its alignment's variance, summed over the contrasts still undecided at the last
    look (outcomes never enter, only how uncertain they are).
    """
    studies, _, items = answers.shape
    levels = int(model.max()) + 1
    adaptive = counts is None
    counts = np.zeros_like(answers) if counts is None else counts
    judged = np.zeros((studies, items))
    need = np.ones((studies, levels))
    histories: list[list[tuple[Look, ...]]] = [[() for _ in range(studies)] for _ in decide]
    active = np.ones(studies, dtype=bool)
    used = np.full(studies, budget)
    for n in range(1, budget + 1):
        if adaptive:
            for s in np.flatnonzero(active):
                _give(counts[s], judged[s], need[s], model, slots, n - 1, seed + s)
        if n % EVERY and n != budget:
            continue
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        cnt = counts[idx, :n]
        hits = answers[idx, :n] * cnt
        if adaptive:
            parts = [
                contrast_moments(hits, cnt, model, target, np.eye(levels)[c]).participant
                for c in range(levels)
            ]
            need[idx] = 0.0
        for c, contrast in enumerate(decide):
            moments = contrast_moments(hits, cnt, model, target, contrast.weights)
            for j, s in enumerate(idx):
                past = histories[c][s]
                if not (past and past[-1].decision in SETTLED):
                    past = (*past, look(contrast, past, at(moments, j), budget, futility_from))
                    histories[c][s] = past
                if adaptive and past[-1].decision not in SETTLED:
                    for level in np.flatnonzero(contrast.weights):
                        need[s, level] += parts[level][j]
        for s in idx:
            if all(h[s][-1].decision in SETTLED for h in histories):
                active[s] = False
                used[s] = n
    outcomes = []
    for c in range(len(decide)):
        last = [h[-1] for h in histories[c]]
        est = np.array([x.estimate for x in last])
        t = stats.t.isf(QUESTION.alpha / 2, np.array([x.df for x in last]))
        se = np.array([x.se for x in last])
        outcomes.append(
            Outcome(
                used,
                np.array([x.decision == "difference" for x in last]),
                np.array([x.decision == "futile" for x in last]),
                est,
                np.array([(x.low, x.high) for x in last]),
                np.stack([est - t * se, est + t * se], axis=1),
            )
        )
    return outcomes


def fixed_power(
    answers: np.ndarray, counts: np.ndarray, model: np.ndarray, target: np.ndarray, grid: list[int]
) -> tuple[np.ndarray, list[ContrastMoments]]:
    """(len(grid), studies) rejections of the fixed test of m0 - m1 on the first N
    participants, and its moments at each N."""
    weights = np.zeros(int(model.max()) + 1)
    weights[:2] = (1.0, -1.0)
    out, moments = [], []
    for n in grid:
        m = contrast_moments(answers[:, :n] * counts[:, :n], counts[:, :n], model, target, weights)
        t = m.estimate / np.sqrt(m.variance)
        out.append(2 * stats.t.sf(np.abs(t), m.df) < QUESTION.alpha)
        moments.append(m)
    return np.array(out), moments


def pooled(moments: list[ContrastMoments]) -> ContrastMoments:
    """The mean variance parts of many studies' moments at one N (a pilot without noise)."""
    return ContrastMoments(
        *(
            np.float64(np.mean(np.concatenate([np.ravel(getattr(m, f)) for m in moments])))
            for f in ContrastMoments.__dataclass_fields__
        )
    )


def matched_n(grid: list[int], power: np.ndarray, goal: float) -> float:
    """The smallest N (interpolated on the grid) whose fixed-design power reaches ``goal``."""
    goal = min(goal, 0.99)
    if power[-1] < goal:
        return float("nan")
    k = int(np.argmax(power >= goal))
    if k == 0:
        return float(grid[0])
    lo, hi = power[k - 1], power[k]
    return float(grid[k - 1] + (goal - lo) / (hi - lo) * (grid[k] - grid[k - 1]))


@dataclass
class Studies:
    """Simulated studies of one true difference, in chunks: answers, who got which item,
    and the fixed design's rejections and moments on the grid."""

    chunks: list[tuple[np.ndarray, np.ndarray]]
    model: np.ndarray
    target: np.ndarray
    fixed: np.ndarray
    moments: list[list[ContrastMoments]]


def studies_of(
    diff: float, count: int, grid: list[int], rng: np.random.Generator, seed: int
) -> Studies:
    logits = logits_for(MAIN, [population_alignment(MAIN) + diff, population_alignment(MAIN)])
    chunks, rejections, moments = [], [], []
    model = target = np.zeros(0, dtype=np.int64)
    for start in range(0, count, CHUNK):
        size = min(CHUNK, count - start)
        answers, model, target = draw(MAIN, logits, size, rng)
        counts = balanced(size, MAIN.participants, model, MAIN_SLOTS, seed + start)
        chunks.append((answers, counts))
        found, m = fixed_power(answers, counts, model, target, grid)
        rejections.append(found)
        moments.append(m)
    fixed = np.concatenate(rejections, axis=1).mean(axis=1)
    return Studies(chunks, model, target, fixed, moments)


def sequential(studies: Studies, budget: int, futility_from: float = FUTILITY_FROM) -> Outcome:
    decide = contrasts(2, [(0, 1)])
    return _joined(
        [
            run(
                answers,
                studies.model,
                studies.target,
                decide,
                budget,
                counts,
                futility_from=futility_from,
            )[0]
            for answers, counts in studies.chunks
        ]
    )


def main_table(
    studies: int, alternatives: int, seed: int, causes: bool
) -> tuple[Requirement, float, list[dict[str, float]], list[dict[str, float | str]]]:
    """The planned requirement, the fixed design's N with the declared power (by
    simulation), one row per true difference, and the causes table (empty unless
    ``causes``)."""
    rng = np.random.default_rng(seed)
    grid = list(range(EVERY, MAIN.participants + 1, EVERY))
    (contrast,) = contrasts(2, [(0, 1)])
    rows = []
    need: Requirement | None = None
    fixed_n = float("nan")
    cause_rows: list[dict[str, float | str]] = []
    for diff in sorted(DIFFERENCES, key=lambda d: d != QUESTION.difference):
        sims = studies_of(diff, studies if diff == 0 else alternatives, grid, rng, seed)
        if need is None:
            pilot = pooled([m[grid.index(PILOT)] for m in sims.moments])
            need = requirement(contrast, pilot, every=EVERY)
            if need.participants is None or need.participants > MAIN.participants:
                raise SystemExit(f"the planned budget {need.participants} is beyond the simulation")
            fixed_n = matched_n(grid, sims.fixed, QUESTION.power)
            if causes:
                cause_rows = causes_table(sims, need, grid)
        out = sequential(sims, need.participants)
        row = _row(diff, out)
        matched = matched_n(grid, sims.fixed, row["found"]) if diff > 0 else float("nan")
        row.update(
            planned_fixed_power=float(np.interp(need.fixed or np.nan, grid, sims.fixed)),
            fixed_power=float(np.interp(fixed_n, grid, sims.fixed)),
            saved=1 - row["mean_participants"] / fixed_n,
            matched_n=matched,
            saved_matched=1 - row["mean_participants"] / matched,
        )
        rows.append(row)
    assert need is not None
    return need, fixed_n, sorted(rows, key=lambda r: r["difference"]), cause_rows


def causes_table(sims: Studies, need: Requirement, grid: list[int]) -> list[dict[str, float | str]]:
    """The declared difference's studies replayed with the rule's parts switched off."""
    fixed_budget = int(np.ceil((need.fixed or np.inf) / EVERY) * EVERY)
    variants = [
        ("as built", need.participants, FUTILITY_FROM),
        ("futility from the first look", need.participants, 0.0),
        ("no futility stop", need.participants, np.inf),
        ("budget with the fixed design's information", fixed_budget, FUTILITY_FROM),
        ("both: the fixed budget, futility from the first look", fixed_budget, 0.0),
    ]
    rows: list[dict[str, float | str]] = []
    for name, budget, start in variants:
        assert budget is not None
        out = sequential(sims, budget, start)
        matched = matched_n(grid, sims.fixed, float(out.found.mean()))
        rows.append(
            {
                "variant": name,
                "budget": float(budget),
                "found": float(out.found.mean()),
                "futile": float(out.futile.mean()),
                "mean_participants": float(out.used.mean()),
                "matched_n": matched,
                "saved_matched": 1 - float(out.used.mean()) / matched,
            }
        )
    return rows


def _joined(parts: list[Outcome]) -> Outcome:
    return Outcome(
        *(np.concatenate([getattr(p, f) for p in parts]) for f in Outcome.__dataclass_fields__)
    )


def _row(diff: float, out: Outcome) -> dict[str, float]:
    covers = (out.rci[:, 0] <= diff) & (diff <= out.rci[:, 1])
    plain = (out.plain[:, 0] <= diff) & (diff <= out.plain[:, 1])
    found = out.estimate[out.found]
    return {
        "difference": diff,
        "found": float(out.found.mean()),
        "futile": float(out.futile.mean()),
        "mean_participants": float(out.used.mean()),
        "p90_participants": float(np.quantile(out.used, 0.9)),
        "bias": float(out.estimate.mean() - diff),
        "bias_when_found": float(found.mean() - diff) if found.size else float("nan"),
        "rci_coverage": float(covers.mean()),
        "plain_coverage": float(plain.mean()),
    }


def allocation_table(studies: int, seed: int) -> list[dict[str, float]]:
    """m0 - m1 under a balanced allocation and under allocation by uncertainty, on the same
    simulated answers."""
    rng = np.random.default_rng(seed + 1)
    base = population_alignment(ALLOCATION)
    decide = contrasts(3, [(0, 1), (0, 2)])
    budget = ALLOCATION.participants
    rows = []
    for diff in (0.0, QUESTION.difference):
        logits = logits_for(ALLOCATION, [base + diff, base, base + diff - 0.2])
        results: dict[str, list[Outcome]] = {"balanced": [], "by uncertainty": []}
        for start in range(0, studies, CHUNK):
            size = min(CHUNK, studies - start)
            answers, model, target = draw(ALLOCATION, logits, size, rng)
            counts = balanced(size, budget, model, ALLOCATION_SLOTS, seed + start)
            results["balanced"].append(run(answers, model, target, decide, budget, counts)[0])
            adaptive = run(
                answers, model, target, decide, budget, None, ALLOCATION_SLOTS, seed + start
            )
            results["by uncertainty"].append(adaptive[0])
        for policy, parts in results.items():
            row: dict[str, float | str] = dict(_row(diff, _joined(parts)))
            row["policy"] = policy
            rows.append(row)  # type: ignore[arg-type]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=1000, help="null studies")
    parser.add_argument(
        "--alternatives", type=int, default=1000, help="studies per alternative (5, 10, 20 points)"
    )
    parser.add_argument(
        "--allocation", type=int, default=300, help="studies per row of the allocation table"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--causes", action="store_true", help="also the table of causes")
    parser.add_argument("--skip-allocation", action="store_true", help="only the main table")
    parser.add_argument("--json", type=Path, default=None, help="also write the rows here")
    args = parser.parse_args()
    start = time.perf_counter()
    print(
        f"# {args.studies} null studies, {args.alternatives} per alternative, seed {args.seed}; "
        f"{MAIN.name}, participant SD "
        f"{MAIN.participant_sd}, target SD {MAIN.target_sd}, IRI SD {MAIN.iri_sd}; looks every "
        f"{EVERY} participants; {MAIN_SLOTS} IRIs per participant; alpha {QUESTION.alpha}, power "
        f"{QUESTION.power} at {QUESTION.difference:.2f}"
    )
    need, fixed_n, rows, causes = main_table(
        args.studies, args.alternatives, args.seed, args.causes
    )
    (declared,) = [r for r in rows if r["difference"] == QUESTION.difference]
    print(
        f"# planned from the mean variance parts at {PILOT} participants: the fixed design needs "
        f"{need.fixed:.1f} participants, the sequential design a budget of {need.participants} "
        f"(information x {need.inflation:.3f}; its planned power {need.achieved:.3f}); by "
        f"simulation the fixed design of {need.fixed:.1f} has power "
        f"{declared['planned_fixed_power']:.3f}, and reaches {QUESTION.power} at {fixed_n:.1f}"
    )
    print(
        "| true difference | difference found | futile | participants: mean | 90th pct | "
        "fixed design's power at its N | saved vs the fixed design | fixed design with this "
        "power | saved vs it | bias | bias when found | repeated CI covers | plain CI covers |"
    )
    print("|---" * 13 + "|")
    for r in rows:
        print(
            f"| {r['difference']:.2f} | {r['found']:.3f} | {r['futile']:.3f} | "
            f"{r['mean_participants']:.1f} | {r['p90_participants']:.0f} | "
            f"{r['fixed_power']:.3f} | {r['saved']:.0%} | {r['matched_n']:.1f} | "
            f"{r['saved_matched']:.0%} | {r['bias']:+.4f} | {r['bias_when_found']:+.4f} | "
            f"{r['rci_coverage']:.3f} | {r['plain_coverage']:.3f} |",
            flush=True,
        )
    if causes:
        print(f"# causes: the {QUESTION.difference:.2f} studies replayed")
        print(
            "| rule | budget | difference found | futile | participants: mean | "
            "fixed design with this power | saved vs it |"
        )
        print("|---" * 7 + "|")
        for c in causes:
            print(
                f"| {c['variant']} | {c['budget']:.0f} | {c['found']:.3f} | {c['futile']:.3f} | "
                f"{c['mean_participants']:.1f} | {c['matched_n']:.1f} | "
                f"{c['saved_matched']:.0%} |",
                flush=True,
            )
    alloc: list[dict[str, float]] = []
    if not args.skip_allocation:
        print(
            f"# {args.allocation} studies per row; {ALLOCATION.name}: {ALLOCATION_SLOTS} of "
            f"{ALLOCATION.targets * ALLOCATION.models} IRIs per "
            f"participant, at least {MINIMUM} judgments per IRI, budget {ALLOCATION.participants}; "
            "m0 - m2 differs by 0.20; rows describe m0 - m1"
        )
        print(
            "| true difference | allocation | difference found | participants: mean | "
            "90th pct | bias | repeated CI covers | plain CI covers |"
        )
        print("|---" * 8 + "|")
        alloc = allocation_table(args.allocation, args.seed)
        for r in alloc:
            print(
                f"| {r['difference']:.2f} | {r['policy']} | {r['found']:.3f} | "
                f"{r['mean_participants']:.1f} | {r['p90_participants']:.0f} | {r['bias']:+.4f} | "
                f"{r['rci_coverage']:.3f} | {r['plain_coverage']:.3f} |",
                flush=True,
            )
    print(f"# {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(
            json.dumps({"main": rows, "causes": causes, "allocation": alloc}, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
