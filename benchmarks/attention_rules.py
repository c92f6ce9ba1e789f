"""How the survey's attention rules treat side clickers and random clickers, slot by slot.

Builds the README's default plan (`survey build --design 2afc --trials-per-participant 40
--judgments-per-item 5`, catch rate 0.1, repeat rate 0.05) over IRIs like the demo's (2 runs
of 48 digits of 10 classes, 2 seeds each: 192 items) and, for every slot, applies the rules
that decide the failed code (:func:`percalign.scoring.attention.attention_failures`, as the
server does) to an always-left, an always-right and ``--random`` random clickers.

    PYTHONPATH=src python benchmarks/attention_rules.py [--random 200] [--design matching]
"""

from __future__ import annotations

import argparse

import numpy as np

from percalign.scoring.attention import AttentionRules, attention_failures
from percalign.survey import make_plan


def records(runs: int = 2, targets: int = 48, seeds: int = 2) -> list[dict]:
    return [
        {
            "iri": f"r{r}i{t}.{s}",
            "target": f"r{r}t{t}",
            "seed": f"r{r}n{t}.{s}",
            "label": t % 10,
            "pool": f"run{r}",
            "valid": True,
        }
        for r in range(runs)
        for t in range(targets)
        for s in range(seeds)
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=200, help="random clickers per slot")
    ap.add_argument("--design", default="2afc", choices=["2afc", "matching"])
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    plan = make_plan(records(), design=args.design, trials_per_participant=40, judgments_per_item=5)
    rules = AttentionRules()
    rng = np.random.default_rng(args.seed)
    width = plan.settings["k"]

    def fails(slot, pick) -> bool:
        positions = [pick(t) for t in slot]
        correct = [t.order[p] == 0 for t, p in zip(slot, positions, strict=True)]
        return bool(attention_failures(positions, correct, [t.is_catch for t in slot], rules))

    s = plan.settings
    print(
        f"{args.design}: {s['items']} items, {s['slots']} slots of {s['trials_per_slot']} trials "
        f"({s['catch_per_slot']} catch); rules {rules.to_json()}"
    )
    for side in range(width):
        failed = sum(fails(slot, lambda _t, side=side: side) for slot in plan.slots)
        print(f"always position {side}: failed code in {failed}/{len(plan.slots)} slots")
    n = args.random * len(plan.slots)
    failed = sum(
        fails(slot, lambda _t: int(rng.integers(width)))
        for slot in plan.slots
        for _ in range(args.random)
    )
    print(f"random clickers: failed code for {failed}/{n} = {failed / n:.1%}")


if __name__ == "__main__":
    main()
