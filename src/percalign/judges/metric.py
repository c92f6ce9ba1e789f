"""The paper's automated alignment metric, and 2AFC / matching against other targets.

For every IRI r with target t and seed s, and every judge D:
  * seed 2AFC (the paper's proxy): aligned when D(r, t) <= D(r, s);
  * other-target 2AFC: correct when D(r, t) <= D(r, t'), t' another target (of another class
    when labels are known), chosen reproducibly;
  * k-way matching: correct when t is the nearest of t and k - 1 other targets.
Alignment is the percentage over IRIs, with a percentile bootstrap CI that resamples targets,
then IRIs within targets (:func:`~percalign.scoring.target_ci`); across
judges, mean and SD as the paper reports. Judges see the saved 8-bit PNGs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from percalign._checks import check_int
from percalign._random import stream
from percalign.judges.base import Judge
from percalign.scoring.crossed import target_ci
from percalign.scoring.stats import bootstrap_ci

__all__ = [
    "METRICS",
    "RunImages",
    "bootstrap_ci",
    "held_out_judge",
    "judge_run",
    "summarize",
]

METRICS = {
    "seed_2afc": "IRI closer to target than to seed",
    "other_2afc": "IRI closer to its target than to another target",
    "matching": "IRI matched to its target among k",
}


@dataclass(frozen=True)
class RunImages:
    """The images of an inversion run folder, read back from their PNGs."""

    folder: Path
    records: list[dict[str, Any]]
    iris: torch.Tensor
    seeds: torch.Tensor
    targets: torch.Tensor
    target_ids: list[str]
    target_labels: list[int | None]


def held_out_judge(manifest: dict[str, Any]) -> str | None:
    """The judge that must not judge a run: the adversary of an adversarial loss, else None.

    An adversarial IRI was pushed away from its target *in that judge's eyes*, so that judge
    would find it unaligned by construction; other judges give the independent verdict.
    """
    config = manifest.get("config", {})
    if not config.get("loss_spec", {}).get("adversarial"):
        return None
    return str(config.get("adversary", "lpips-alex"))


def _batched(fn, *tensors: torch.Tensor, size: int = 256) -> torch.Tensor:
    n = len(tensors[0])
    return torch.cat([fn(*(t[i : i + size] for t in tensors)) for i in range(0, n, size)])


def _others(run: RunImages, k: int, seed: int) -> list[list[int]]:
    """For each IRI, k - 1 distinct other targets (other classes first), reproducibly.

    An image-seeded IRI's own seed image is never one of its other targets: that 2AFC would
    be the seed test (``seed_2afc``), not the other-target test. Only when too few targets
    are left (two targets in all) is the seed image used, last.
    """
    n_targets = len(run.targets)
    out = []
    for i, rec in enumerate(run.records):
        t = rec["target_index"]
        label = run.target_labels[t]
        source = rec.get("seed_source_id")
        pool = [j for j in range(n_targets) if j != t and run.target_ids[j] != source]
        spare = [j for j in range(n_targets) if j != t and run.target_ids[j] == source]
        order = torch.randperm(len(pool), generator=stream("others", seed, i)).tolist()
        pool = [pool[o] for o in order]
        if label is not None:  # other classes first, keeping the random order within each
            pool.sort(key=lambda j: run.target_labels[j] == label)
        out.append((pool + spare)[: k - 1])
    return out


def judge_run(
    run: RunImages, judges: Sequence[Judge], *, k: int = 4, seed: int = 0
) -> pd.DataFrame:
    """One row per IRI x judge: distances, decisions and every metric's outcome."""
    check_int("judge_run", "k", k, low=2)
    t_idx = torch.tensor([r["target_index"] for r in run.records])
    targets = run.targets[t_idx]
    n_targets = len(run.targets)
    k = min(k, n_targets)
    others = _others(run, k, seed) if n_targets >= 2 else None
    rows = []
    for judge in judges:
        d_target = _batched(judge, run.iris, targets)
        d_seed = _batched(judge, run.iris, run.seeds)
        seed_choice = _batched(judge.two_afc, run.iris, targets, run.seeds)
        other_ok = match_ok = d_other = None
        if others is not None:
            other = run.targets[torch.tensor([o[0] for o in others])]
            d_other = _batched(judge, run.iris, other)
            other_ok = _batched(judge.two_afc, run.iris, targets, other) == 0
            position = torch.tensor(
                [
                    int(torch.randint(0, k, (1,), generator=stream("position", seed, i)))
                    for i in range(len(run.records))
                ]
            )
            refs = []
            for i, o in enumerate(others):
                cands = list(o)
                cands.insert(int(position[i]), int(t_idx[i]))
                refs.append(run.targets[torch.tensor(cands)])
            chosen = _batched(judge.match, run.iris, torch.stack(refs))
            match_ok = chosen == position
        for i, rec in enumerate(run.records):
            rows.append(
                {
                    "iri": rec["iri"],
                    "target_id": rec["target_id"],
                    "seed_type": rec["seed_type"],
                    "seed_copy": rec["seed_copy"],
                    "layer": rec["layer"],
                    "valid": rec.get("valid"),
                    "judge": judge.name,
                    "d_target": float(d_target[i]),
                    "d_seed": float(d_seed[i]),
                    "seed_2afc": bool(seed_choice[i] == 0),
                    "other_target_id": None if others is None else run.target_ids[others[i][0]],
                    "d_other": None if d_other is None else float(d_other[i]),
                    "other_2afc": None if other_ok is None else bool(other_ok[i]),
                    "matching": None if match_ok is None else bool(match_ok[i]),
                    "k": k,
                }
            )
    return pd.DataFrame(rows)


def summarize(
    table: pd.DataFrame,
    n_boot: int = 2000,
    seed: int = 0,
    by: Sequence[str] = ("layer", "seed_type"),
) -> pd.DataFrame:
    """Percent per judge and group for each metric, with 95% bootstrap CIs that resample
    targets (``target_id``), then IRIs within targets."""
    out = []
    for keys, group in table.groupby(["judge", *by], sort=False):
        row = dict(zip(["judge", *by], keys if isinstance(keys, tuple) else (keys,), strict=True))
        row["iris"] = len(group)
        for metric in METRICS:
            known = group[metric].notna()
            vals = group.loc[known, metric].astype(float).to_numpy()
            lo, hi = target_ci(vals, group.loc[known, "target_id"].to_numpy(), n_boot, seed)
            row[metric] = 100 * vals.mean() if vals.size else float("nan")
            row[f"{metric}_lo"], row[f"{metric}_hi"] = 100 * lo, 100 * hi
        out.append(row)
    return pd.DataFrame(out)
