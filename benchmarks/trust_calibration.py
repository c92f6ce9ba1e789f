"""Do the trust analysis's intervals hold their rates? Coverage, false positives and power.

Every scenario simulates disputed-input tables with model and input heterogeneity
(:mod:`percalign.trust.simulate`): under the null, alignment is correlated with confidence and
with the model but carries no information about being right beyond confidence; under the
alternative it does. Each table goes through :func:`percalign.trust.evaluate`, the code path
of ``percalign trust``, and against the scenario's estimands we count:

- the AUC gain and the pick-accuracy gain (confidence + alignment minus confidence alone):
  coverage, and the share of tables whose CI lies wholly above 0 ("raised", the one-sided
  false-positive rate under the null, the power under the alternative) or below 0
  ("lowered");
- coverage of the two AUCs and the two pick accuracies;
- coverage of every rule's and baseline's accuracy and of every rule minus baseline (the
  summary table: 23 intervals), reported as their median and the lowest one with its name
  (the lowest of 23 noisy rates sits below their common value: at 100 tables each rate has a
  Monte Carlo SE of about 0.02).

    .venv/bin/python benchmarks/trust_calibration.py     # 40 tables: 245 s at load 8-10, 2 cores
    .venv/bin/python benchmarks/trust_calibration.py --tables 400 --out trust_calibration.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from percalign.trust.simulate import Scenario, calibration

SCENARIOS = (
    Scenario("null: 100 inputs, 3 models"),
    Scenario("null, small: 40 inputs, 2 models", inputs=40, models=2),
    Scenario(
        "null, heterogeneous: 100 inputs, 4 models, model SD 1, input SD 1.5, link 1",
        inputs=100,
        models=4,
        model_sd=1.0,
        input_sd=1.5,
        link=1.0,
    ),
    Scenario("alternative: 100 inputs, 3 models, info 1", info=1.0),
)

COLUMNS = (
    "scenario",
    "tables",
    "AUC gain: cover / raised / lowered",
    "pick gain: cover / raised / lowered",
    "AUCs: cover",
    "pick accuracies: cover",
    "summary: median / lowest cover",
)


def _row(scenario: Scenario, rates: dict[str, float], tables: int) -> list[str]:
    def gain(name: str) -> str:
        return " / ".join(f"{rates[f'{k}:{name}']:.3f}" for k in ("cover", "raised", "lowered"))

    def lowest(keys: list[str]) -> tuple[float, str]:
        return min((rates[k], k.removeprefix("cover:")) for k in keys)

    both = [f"cover:auc_{k}" for k in ("confidence", "combined")]
    picks = [f"cover:accuracy_{k}" for k in ("confidence", "combined")]
    summary = [
        k for k in rates if k.startswith("cover:") and "auc_" not in k and "accuracy_" not in k
    ]
    value, name = lowest(summary)
    median = float(np.median([rates[k] for k in summary]))
    return [
        scenario.name,
        str(tables),
        gain("auc_gain"),
        gain("accuracy_gain"),
        f"{lowest(both)[0]:.3f}",
        f"{lowest(picks)[0]:.3f}",
        f"{median:.3f} / {value:.3f} ({name})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tables", type=int, default=40, help="tables per scenario")
    parser.add_argument("--boot", type=int, default=200, help="bootstrap resamples per table")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--only", default="", help="run the scenarios whose name has one of these (|-separated)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write every rate as JSON")
    args = parser.parse_args()
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    every = {}
    start = time.perf_counter()
    for scenario in SCENARIOS:
        if not any(part in scenario.name for part in args.only.split("|")):
            continue
        rates = calibration(scenario, args.tables, args.boot, seed=args.seed)
        every[scenario.name] = rates
        print("| " + " | ".join(_row(scenario, rates, args.tables)) + " |", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s")
    if args.out is not None:
        args.out.write_text(json.dumps(every, indent=1))


if __name__ == "__main__":
    main()
