"""Scoring at scale: 1,000,000 answers from 2,000 participants, 2,000 bootstrap resamples.

Prints the wall time and peak memory of ``percalign.scoring.alignment`` (crossed bootstrap,
Wilson, binomial test) on a synthetic table: 2,000 participants x 500 trials over 4 models with
250 items each. Run: ``.venv/bin/python benchmarks/bench_scoring.py``.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import pandas as pd

from percalign.scoring import alignment


def synthetic(
    participants: int, per_participant: int, models: int, items: int, seed: int = 0
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = participants * per_participant
    model = rng.integers(0, models, n)
    return pd.DataFrame(
        {
            "participant": np.repeat(np.arange(participants), per_participant),
            "item": model * items + rng.integers(0, items, n),
            "model": model,
            "correct": (rng.random(n) < 0.5 + 0.1 * model).astype(np.int8),
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--participants", type=int, default=2000)
    parser.add_argument("--per-participant", type=int, default=500)
    parser.add_argument("--models", type=int, default=4)
    parser.add_argument("--items", type=int, default=250)
    parser.add_argument("--bootstrap", type=int, default=2000)
    args = parser.parse_args()
    table = synthetic(args.participants, args.per_participant, args.models, args.items)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    scores = alignment(table, ["model"], n_boot=args.bootstrap)
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        scores[
            ["model", "answers", "participants", "items", "alignment", "ci_low", "ci_high"]
        ].to_string(index=False)
    )
    print(
        f"{len(table):,} answers, {args.participants:,} participants, {args.bootstrap} "
        f"resamples: {elapsed:.2f} s; peak RSS {peak / 1024:.0f} MiB "
        f"({(peak - before) / 1024:.0f} MiB above the table)"
    )


if __name__ == "__main__":
    main()
