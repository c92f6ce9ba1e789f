"""Do percalign's intervals and tests hold their rates? Coverage and false positives by simulation.

Every scenario simulates answer tables with logit-normal participant, target and IRI effects
(:mod:`percalign.scoring.simulate`) in which every model has the same population alignment,
then scores each table as ``percalign score`` does (:func:`percalign.scoring.alignment` and
:func:`percalign.scoring.compare`) and counts:

- coverage of each model's alignment CI (the truth is the population mean probability);
- coverage of each pairwise difference CI (the truth is 0) and the false-positive rate of its
  p-value, and the family-wise rate of the Holm-corrected p-values of a table;
- at chance (logit 0) the false-positive rate of ``p vs chance`` and of its Holm correction.

    .venv/bin/python benchmarks/stats_calibration.py --tables 500 --boot 500
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from percalign.scoring.simulate import Scenario, calibration

SCENARIOS = (
    # the audit's null comparisons: each model its own IRIs, 30 participants see all of them
    Scenario("P30, IRI SD 1, 20 IRIs/model", iri_sd=1.0, targets=20, name_targets=False),
    Scenario("P30, IRI SD 0.5, 40 IRIs/model", iri_sd=0.5, targets=40, name_targets=False),
    Scenario("P30, IRI SD 0, 20 IRIs/model", iri_sd=0.0, targets=20, name_targets=False),
    Scenario(
        "few participants: P10, 12 IRIs, P SD 0.3",
        participants=10,
        targets=12,
        participant_sd=0.3,
        iri_sd=1.0,
        name_targets=False,
    ),
    Scenario(
        "few IRIs: P30, 8 IRIs/model, IRI SD 1.5",
        targets=8,
        iri_sd=1.5,
        name_targets=False,
    ),
    Scenario(
        "incomplete: half the pairs answered, IRI SD 1.5",
        targets=30,
        participant_sd=0.3,
        iri_sd=1.5,
        answered=0.5,
        name_targets=False,
    ),
    Scenario(
        "shared targets: 10 x 2 IRIs, target SD 1.5",
        participants=20,
        targets=10,
        iris_per_target=2,
        participant_sd=0.4,
        target_sd=1.5,
        iri_sd=0.5,
    ),
    Scenario(
        "above chance, 3 models, P20, 20 IRIs",
        participants=20,
        targets=20,
        models=3,
        participant_sd=0.3,
        iri_sd=1.0,
        logit=1.0,
        name_targets=False,
    ),
    Scenario(
        "3 models at chance, incomplete, P15",
        participants=15,
        targets=16,
        models=3,
        participant_sd=0.5,
        iri_sd=1.0,
        answered=0.7,
        name_targets=False,
    ),
    Scenario(
        "one judge: 12 targets x 3 IRIs, target SD 1.5",
        participants=1,
        targets=12,
        iris_per_target=3,
        models=1,
        participant_sd=0.0,
        target_sd=1.5,
        iri_sd=0.5,
        logit=1.0,
    ),
)

COLUMNS = (
    ("coverage", "alignment CI"),
    ("difference_coverage", "difference CI"),
    ("comparison_fp", "comparison p < .05"),
    ("comparison_fwer", "any Holm p < .05"),
    ("chance_fp", "p vs chance < .05"),
    ("chance_fwer", "any Holm p vs chance < .05"),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=1000, help="simulated tables per scenario")
    parser.add_argument("--boot", type=int, default=1000, help="bootstrap resamples per table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the rates here")
    args = parser.parse_args()
    print(f"# {args.tables} tables per scenario, {args.boot} bootstrap resamples, seed {args.seed}")
    print("| scenario | " + " | ".join(label for _, label in COLUMNS) + " |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    results = {}
    start = time.perf_counter()
    for scenario in SCENARIOS:
        rates = calibration(scenario, args.tables, args.boot, args.seed)
        results[scenario.name] = rates
        cells = [f"{rates[key]:.3f}" if key in rates else "-" for key, _ in COLUMNS]
        print(f"| {scenario.name} | " + " | ".join(cells) + " |", flush=True)
    print(f"# {time.perf_counter() - start:.0f} s")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
