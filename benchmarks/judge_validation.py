"""Do the intervals of ``percalign judge --validate`` hold their rate? Coverage by simulation.

Each simulated human 2AFC set has R references with rows per reference; every row has its own
chance q that a person picks candidate B (logit-normal around a reference effect), a number of
votes, and a judge whose pick agrees with the better candidate with a row-dependent chance.
The two agreements (with the majority, ties 1/2; share of votes) are scored on the set's own
picks with :func:`percalign.judges.validation` 's arithmetic and CI, and compared with their
population values (Monte Carlo over a large draw of the same process).

    .venv/bin/python benchmarks/judge_validation.py --sets 400 --boot 400
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from percalign.judges.validation import agreements
from percalign.scoring.crossed import target_ci


@dataclass(frozen=True)
class Setting:
    label: str
    references: int
    rows_per_reference: int = 1
    votes: int = 5
    reference_sd: float = 1.0
    row_sd: float = 1.0
    judge_skill: float = 1.0  # logit of the judge agreeing with the better candidate


SETTINGS = (
    Setting("BAPPS-like: 200 references, 5 votes", references=200),
    Setting("small: 40 references, 5 votes", references=40),
    Setting("shared references: 30 x 4 rows, reference SD 1.5", 30, 4, reference_sd=1.5),
    Setting("few votes: 60 references, 2 votes", references=60, votes=2),
    Setting("NIGHTS-like: 100 references, 7 votes, strong judge", 100, votes=7, judge_skill=2.0),
)


def draw(s: Setting, rng: np.random.Generator, references: int | None = None):
    """One set: (reference ids, votes_a, votes_b, the judge's pick of b)."""
    refs = references or s.references
    ref = np.repeat(np.arange(refs), s.rows_per_reference)
    logit = rng.normal(0, s.reference_sd, refs)[ref] + rng.normal(0, s.row_sd, ref.size)
    q = 1 / (1 + np.exp(-logit))  # chance a person picks b
    votes_b = rng.binomial(s.votes, q)
    better_b = q > 0.5
    skill = 1 / (1 + np.exp(-s.judge_skill))
    pick_b = np.where(rng.random(ref.size) < skill, better_b, ~better_b).astype(np.int64)
    return ref, s.votes - votes_b, votes_b, pick_b


def run(s: Setting, sets: int, n_boot: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    _, va, vb, pb = draw(s, rng, references=200_000)
    truth = [float(x.mean()) for x in agreements(pb, va, vb)]
    covered = np.zeros(2)
    widths = np.zeros(2)
    for k in range(sets):
        ref, va, vb, pb = draw(s, rng)
        for m, values in enumerate(agreements(pb, va, vb)):
            lo, hi = target_ci(values, ref.astype(str), n_boot=n_boot, seed=seed + k)
            covered[m] += lo <= truth[m] <= hi
            widths[m] += hi - lo
    return {
        "setting": s.label,
        "majority_truth": truth[0],
        "majority_coverage": covered[0] / sets,
        "majority_width": widths[0] / sets,
        "votes_truth": truth[1],
        "votes_coverage": covered[1] / sets,
        "votes_width": widths[1] / sets,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", type=int, default=400, help="simulated sets per setting")
    parser.add_argument("--boot", type=int, default=400, help="bootstrap resamples per CI")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [run(s, args.sets, args.boot, args.seed) for s in SETTINGS]
    print("| setting | majority (truth) | coverage | votes (truth) | coverage |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['setting']} | {r['majority_truth']:.3f} | {r['majority_coverage']:.3f} | "
            f"{r['votes_truth']:.3f} | {r['votes_coverage']:.3f} |"
        )
    elapsed = time.perf_counter() - start
    print(f"{args.sets} sets per setting, {args.boot} resamples, {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
