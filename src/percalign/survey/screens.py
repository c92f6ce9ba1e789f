"""The matching screen's design (pure): k targets and several IRIs of each on one screen.

The participant assigns every IRI on the screen to one of the screen's k targets, and submits
the screen once. Each IRI on a screen is an :class:`~percalign.survey.design.Item` of its
own (the IRI is the query, its target the first candidate, the screen's other targets the
foils), so every reader of the answers scores it like a k-way matching trial: correct or not,
chance 1/k. A screen is a run of consecutive trials of a slot that share ``screen`` (the
position of the screen's first trial); all of them show the screen's targets in the same
order, so an answer's ``choice`` is the display position of the target it was assigned to.

Targets are split into groups of k within each run (a screen never mixes runs, so its images
share one input format), no class twice in a group when labels are known (the last groups
fill up with targets of other groups);
each group makes screens of ``iris_per_target`` IRIs of each of its targets (a target with
fewer IRIs than its group's largest shows some again). Every screen is shown to at least
``judgments_per_item`` slots; across a screen's showings its targets rotate through the
display positions, and its IRIs are shuffled anew each time.

Catch screens (``catch_rate`` of a slot's screens) show the k targets of a random regular
screen with, in place of IRIs, one exact copy of each target: an attentive participant
assigns every copy to its own target. Their answers carry ``is_catch``, so they count
towards a participant's catch accuracy (the live failed-attention status and the scoring's
exclusions) and never towards alignment, as catch trials of the other designs do.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from percalign.errors import ConfigError
from percalign.survey.plan import Item, Plan, Trial
from percalign.survey.settings import SurveyDesign

__all__ = ["clustering_plan"]


def _groups(targets: list[str], labels: Mapping[str, Any], k: int, pool: str) -> list[list[str]]:
    """``targets`` (in a random order) in groups of k with no class twice in a group; the
    last groups fill up with targets of other groups (of classes they lack)."""
    groups: list[list[str]] = []

    def fits(t: str, group: list[str]) -> bool:
        label = labels[t]
        return t not in group and (label is None or all(labels[u] != label for u in group))

    for t in targets:
        group = next((g for g in groups if len(g) < k and fits(t, g)), None)
        if group is None:
            groups.append([t])
        else:
            group.append(t)
    for group in groups:
        for t in targets:
            if len(group) < k and fits(t, group):
                group.append(t)
        if len(group) < k:
            raise ConfigError(
                f"A matching screen shows k={k} targets of different classes from one run; "
                f"run {pool!r} has targets of {len({labels[t] for t in targets})} class(es). "
                "Lower --k or invert images of more classes."
            )
    return groups


def _screens(
    records: Sequence[Mapping[str, Any]], k: int, per_target: int, rng: np.random.Generator
) -> list[list[Mapping[str, Any]]]:
    """Screens as lists of IRI records: ``per_target`` of each of k targets, all from one
    pool (run), of k different classes when labels are known."""
    pools: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    labels: dict[str, Any] = {}
    for r in records:
        pools.setdefault(str(r.get("pool", "")), {}).setdefault(r["target"], []).append(r)
        labels[r["target"]] = r.get("label")
    screens = []
    for pool, by_target in sorted(pools.items()):
        targets = sorted(by_target)
        if len(targets) < k:
            where = f"run {pool!r} has" if pool else "the runs have"
            raise ConfigError(
                f"A matching screen shows k={k} targets of one run; {where} {len(targets)} "
                "target(s). Lower --k or add targets."
            )
        shuffled = [targets[i] for i in rng.permutation(len(targets)).tolist()]
        for group in _groups(shuffled, labels, k, pool):
            stacks = [[by_target[t][i] for i in rng.permutation(len(by_target[t]))] for t in group]
            n = math.ceil(max(len(p) for p in stacks) / per_target)
            for s in range(n):
                picks = range(s * per_target, (s + 1) * per_target)
                screens.append([stack[j % len(stack)] for stack in stacks for j in picks])
    return screens


def clustering_plan(
    records: Sequence[Mapping[str, Any]],
    settings: SurveyDesign,
    *,
    seed: int,
    excluded_invalid: int = 0,
) -> Plan:
    """The plan of a matching-screen survey (``design="clustering"``).

    Args:
        records: the IRI records to ask about (already filtered for validity), as for
            :func:`~percalign.survey.design.make_plan`.
        settings: the design, checked when it was made (:class:`SurveyDesign`): ``k``
            targets per screen; ``iris_per_target`` IRIs of each target per screen (a screen
            has k x this many); ``trials_per_participant`` screens in one slot, catch screens
            included (at most the number of screens plus the catch screens), ``catch_rate``
            of them catch screens; each screen shown in at least ``judgments_per_item``
            slots; a submission counts only ``min_display_ms`` after the screen was served.
        seed: seed of every random choice.
        excluded_invalid: IRIs the caller left out (recorded in the settings).
    """
    k, iris_per_target = settings.k, settings.iris_per_target
    screens_per_participant = settings.trials_per_participant
    judgments_per_item, catch_rate = settings.judgments_per_item, settings.catch_rate
    n_catch = round(catch_rate * screens_per_participant)  # at most half: a regular one is left
    rng = np.random.default_rng(seed)
    screens = _screens(records, k, iris_per_target, rng)
    items: dict[str, Item] = {}
    screen_items: list[list[str]] = []
    screen_targets: list[list[str]] = []
    for screen in screens:
        targets = list(dict.fromkeys(r["target"] for r in screen))
        ids = []
        for r in screen:
            cands = (r["target"], *sorted(t for t in targets if t != r["target"]))
            key = f"{r['iri']}|{'|'.join(cands[1:])}"
            item = Item(key, r["iri"], cands, dict(r.get("condition", {})))
            items.setdefault(item.id, item)
            ids.append(item.id)
        screen_items.append(ids)
        screen_targets.append(targets)
    n_items = len(items)  # the regular ones; catch items are added as slots use them
    per_slot = min(screens_per_participant - n_catch, len(screens))
    n_slots = math.ceil(len(screens) * judgments_per_item / per_slot)
    shown = np.zeros(len(screens), dtype=int)
    slots: list[list[Trial]] = []
    for _ in range(n_slots):
        chosen = np.lexsort((rng.random(len(screens)), shown))[:per_slot].tolist()
        units = [(s, False) for s in chosen]
        units += [(int(rng.integers(len(screens))), True) for _ in range(n_catch)]
        slot: list[Trial] = []
        for u in rng.permutation(len(units)).tolist():
            s, catch = units[u]
            targets = screen_targets[s]
            turn = int(shown[s]) % k  # the targets rotate through the positions
            display = targets[turn:] + targets[:turn]
            first = len(slot)
            ids = [_catch_item(items, t, targets).id for t in targets] if catch else screen_items[s]
            for v in rng.permutation(len(ids)).tolist():
                item = items[ids[v]]
                order = tuple(item.candidates.index(t) for t in display)
                slot.append(Trial(item.id, order, is_catch=catch, screen=first))
            if not catch:
                shown[s] += 1
        slots.append(slot)
    trials = len(slots[0])
    recorded = {
        "design": "clustering",
        "foil": "targets",
        "k": k,
        "iris_per_target": iris_per_target,
        "trials_per_participant": screens_per_participant,
        "judgments_per_item": judgments_per_item,
        "catch_rate": catch_rate,
        "repeat_rate": 0.0,
        "include_invalid": settings.include_invalid,
        "min_display_ms": settings.min_display_ms,
        "seed": seed,
        "items": n_items,
        "screens": len(screens),
        "excluded_invalid": excluded_invalid,
        "slots": n_slots,
        # a slot's size in screens (a screen is one trial to the participant)
        "trials_per_slot": per_slot + n_catch,
        "positions_per_slot": trials,
        "regular_per_slot": per_slot,
        "catch_per_slot": n_catch,
        "repeats_per_slot": 0,
        "min_judgments": int(shown.min()),
        "max_judgments": int(shown.max()),
    }
    return Plan(items, slots, recorded)


def _catch_item(items: dict[str, Item], target: str, targets: Sequence[str]) -> Item:
    """The catch item of ``target`` on a screen of ``targets``: the target itself to assign
    (added to ``items`` on first use)."""
    cands = (target, *sorted(t for t in targets if t != target))
    key = f"catch:{'|'.join(cands)}"
    if key not in items:
        items[key] = Item(key, target, cands, {"catch": True}, is_catch=True)
    return items[key]
