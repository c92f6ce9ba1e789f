"""Survey task design (pure: no web, no database): items, trials, and who sees what.

An **item** is one question about one IRI: the IRI is the query, and the candidates are its
target and a foil (its seed, or another target, for 2AFC; k targets for matching). A **slot**
is the ordered list of trials one participant will answer. Every item appears in at least
``judgments_per_item`` slots; the target's position is counterbalanced across the slots that
show an item; catch trials (the query is one of the candidates: an obvious answer) and
repeated trials (an earlier trial again, for self-consistency) are mixed in at set rates; the
order within each slot is shuffled with a recorded seed, and repeats come at the end.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from percalign._checks import check_int
from percalign.errors import ConfigError
from percalign.survey.plan import Item, Plan, Trial
from percalign.survey.screens import clustering_plan
from percalign.survey.settings import DESIGNS, FOILS, SurveyDesign

__all__ = [
    "DESIGNS",
    "FOILS",
    "Item",
    "Plan",
    "Pools",
    "SurveyDesign",
    "Trial",
    "allocated_slot",
    "make_plan",
]


class Pools:
    """The targets foils may come from: each IRI's own pool (its run: the same model input
    format and preprocessing), of another class than its target when both labels are known,
    and never the IRI's own seed (by content, or by the pool image it was taken from).

    Records without a ``pool`` share one pool; without a ``label`` no class is excluded.
    """

    def __init__(self, records: Sequence[Mapping[str, Any]]) -> None:
        self.targets: dict[str, dict[str, tuple[Any, Any]]] = {}  # pool -> sha -> (label, id)
        for r in records:
            pool = self.targets.setdefault(str(r.get("pool", "")), {})
            pool.setdefault(r["target"], (r.get("label"), r.get("target_id")))

    def foils(self, record: Mapping[str, Any]) -> list[str]:
        """The targets that may stand beside ``record``'s target as wrong candidates, sorted."""
        label, source = record.get("label"), record.get("seed_source_id")
        return sorted(
            sha
            for sha, (other, tid) in self.targets[str(record.get("pool", ""))].items()
            if sha not in (record["target"], record["seed"])
            and not (label is not None and other is not None and other == label)
            and not (source is not None and tid == source)
        )

    @staticmethod
    def describe(record: Mapping[str, Any]) -> str:
        pool = record.get("pool")
        return f"IRI {record['iri'][:12]}" + (f" of run {pool!r}" if pool else "")


def _items(
    records: Sequence[Mapping[str, Any]], design: str, foil: str, k: int, rng: np.random.Generator
) -> list[Item]:
    pools = Pools(records)
    items = []
    for r in records:
        if design == "2afc" and foil == "seed":
            cands = (r["target"], r["seed"])
        else:
            others = pools.foils(r)
            need = 1 if design == "2afc" else k - 1
            if len(others) < need:
                raise ConfigError(
                    f"The {design} design needs {need} other target(s) per IRI, from the IRI's "
                    f"own run, of another class, other than its seed; {Pools.describe(r)} has "
                    f"{len(others)}. Invert more images per run (--n-images, [images] n), "
                    "lower --k, or use --foil seed."
                )
            cands = (r["target"], *rng.choice(others, size=need, replace=False).tolist())
        items.append(
            Item(
                id=f"{r['iri']}|{'|'.join(cands[1:])}",
                query=r["iri"],
                candidates=cands,
                condition=dict(r.get("condition", {})),
            )
        )
    return items


class _Sides:
    """Where the target goes: balanced within every slot and across each item's showings.

    Each slot gets an equal share of every display position (the positions left over when the
    slot does not divide evenly go where the plan has used them least), so a participant who
    always picks one side scores chance. The catch trials' right answers take the positions
    in turn, so within a slot each position holds as many of them as any other (one more at
    most), and a one-side clicker fails them (:mod:`percalign.scoring.attention`). Within
    that quota, each trial's item takes the
    positions it has been shown in least (an assignment problem, solved exactly), and an item
    repeated in a slot is shown at two different positions.
    """

    def __init__(self, width: int, rng: np.random.Generator) -> None:
        self.width = width
        self.rng = rng
        self.totals = np.zeros(width, dtype=int)
        self.counts: dict[str, np.ndarray] = {}

    def _count(self, key: str) -> np.ndarray:
        return self.counts.setdefault(key, np.zeros(self.width, dtype=int))

    def assign(
        self, keys: Sequence[str], pairs: Sequence[tuple[int, int]], catch: Sequence[int] = ()
    ) -> list[int]:
        """The target position of each trial (items ``keys``); ``pairs`` are (trial, its
        repeat) index pairs; ``catch`` the catch trials, whose right answers are spread over
        the positions as evenly as the slot's quota allows (so a participant who always picks
        one side fails them)."""
        from scipy.optimize import linear_sum_assignment

        n, width = len(keys), self.width
        base, extra = divmod(n, width)
        spare = np.lexsort((self.rng.random(width), self.totals))[:extra]
        quota = np.full(width, base)
        quota[spare] += 1
        positions = [-1] * n
        caught = np.zeros(width, dtype=int)
        for trial in catch:
            pos = int(np.lexsort((self.rng.random(width), -quota, caught, quota <= 0))[0])
            positions[trial] = pos
            quota[pos] -= 1
            caught[pos] += 1
        for first, second in pairs:
            count = self._count(keys[first])
            order = np.lexsort((self.rng.random(width), -quota, count))
            two = [int(p) for p in order if quota[p] > 0][:2]
            if len(two) < 2:  # a slot too short to hold both at different positions
                two = [two[0], two[0]]
            self.rng.shuffle(two)
            for trial, pos in zip((first, second), two, strict=True):
                positions[trial] = pos
                quota[pos] -= 1
        single = [u for u in range(n) if positions[u] < 0]
        seats = [p for p in range(width) for _ in range(int(quota[p]))]
        cost = np.empty((len(single), len(seats)))
        for row, u in enumerate(single):
            count = self._count(keys[u])
            # steeply more for a position the item has been shown in more often than its least
            cost[row] = 4.0 ** (count[seats] - count.min())
        cost += self.rng.random(cost.shape) * 1e-3  # random among equally good assignments
        rows, cols = linear_sum_assignment(cost)
        for row, col in zip(rows.tolist(), cols.tolist(), strict=True):
            positions[single[row]] = seats[col]
        for key, pos in zip(keys, positions, strict=True):
            self._count(key)[pos] += 1
            self.totals[pos] += 1
        return positions

    def order(self, target: int) -> tuple[int, ...]:
        """A display order with the target (candidate 0) at ``target``, foils shuffled."""
        rest = self.rng.permutation(np.arange(1, self.width)).tolist()
        return (*rest[:target], 0, *rest[target:])


def _slot(
    regular: Sequence[str],
    catch: Sequence[str],
    n_repeat: int,
    sides: _Sides,
    rng: np.random.Generator,
) -> list[Trial]:
    """One participant's trials: the ``regular`` and ``catch`` items shuffled, ``n_repeat``
    of the regular ones again at the end (at another side), the target's side balanced."""
    units = [(item, False) for item in regular] + [(item, True) for item in catch]
    units = [units[i] for i in rng.permutation(len(units)).tolist()]
    plain = [u for u, (_, is_catch) in enumerate(units) if not is_catch]
    again = sorted(rng.choice(plain, size=min(n_repeat, len(plain)), replace=False))
    keys = [item for item, _ in units] + [units[int(u)][0] for u in again]
    pairs = [(int(u), len(units) + r) for r, u in enumerate(again)]
    caught = [u for u, (_, is_catch) in enumerate(units) if is_catch]
    positions = sides.assign(keys, pairs, caught)
    return [
        Trial(
            key,
            sides.order(pos),
            is_catch=u < len(units) and units[u][1],
            is_repeat=u >= len(units),
        )
        for u, (key, pos) in enumerate(zip(keys, positions, strict=True))
    ]


def allocated_slot(
    items: Sequence[str],
    condition: np.ndarray,
    need: np.ndarray,
    judgments: np.ndarray,
    catch: Sequence[str],
    settings: Mapping[str, Any],
    seed: int,
) -> list[Trial]:
    """A new participant's trials in a sequential survey: the regular items chosen where
    undecided questions need answers (:func:`~percalign.scoring.allocation.allocate`: items
    short of the plan's minimum first, then by each condition's ``need``, least-judged items
    first; never by how answers went), with the plan's catch and repeated trials and the
    target's side balanced within the slot, as in every slot of the plan.

    Args:
        items: the plan's regular items.
        condition: (I,) int, each item's condition (the levels the questions are about).
        need: (C,) each condition's need.
        judgments: (I,) answers each item has so far.
        catch: the plan's catch items (the new slot's are drawn from them).
        settings: the plan's recorded settings (trials, catch and repeats per slot, R, k).
        seed: the slot's random draws.
    """
    from percalign.scoring.allocation import allocate

    rng = np.random.default_rng(seed)
    chosen = allocate(
        judgments,
        condition,
        need,
        np.zeros(len(items), dtype=bool),
        min(int(settings["regular_per_slot"]), len(items)),  # (IRIs alike in content: one item)
        int(settings["judgments_per_item"]),
        seed,
    )
    n_catch = min(int(settings["catch_per_slot"]), len(catch))
    drawn = [catch[int(i)] for i in rng.choice(len(catch), size=n_catch, replace=False)]
    sides = _Sides(int(settings["k"]), rng)
    return _slot(
        [items[int(i)] for i in chosen], drawn, int(settings["repeats_per_slot"]), sides, rng
    )


def make_plan(
    records: Sequence[Mapping[str, Any]],
    settings: SurveyDesign | None = None,
    *,
    seed: int = 0,
    **options: Any,
) -> Plan:
    """Design a survey from IRI records.

    Args:
        records: one mapping per IRI with stimulus ids ``iri``, ``target``, ``seed``, a
            ``valid`` flag, and a ``condition`` mapping (model, layer, loss, seed type...);
            optionally ``pool``, ``label``, ``target_id`` and ``seed_source_id``, which decide
            the foils (see :class:`Pools`).
        settings: the design (:class:`~percalign.survey.settings.SurveyDesign`: ``2afc``,
            ``matching`` or ``clustering`` (see :mod:`percalign.survey.screens`), the foil,
            k, trials per participant, judgments per item, catch and repeat rates, whether
            invalid IRIs are asked about, the minimum display time).
        seed: seed of every random choice; recorded in ``Plan.settings``.
        options: :class:`SurveyDesign` fields, replacing those of ``settings``
            (``make_plan(records, design="matching", k=3)``).
    """
    try:
        settings = dataclasses.replace(settings or SurveyDesign(), **options)
    except TypeError:
        unknown = sorted(set(options) - {f.name for f in dataclasses.fields(SurveyDesign)})
        raise ConfigError(f"make_plan got unknown settings {unknown}; see SurveyDesign.") from None
    check_int("make_plan", "seed", seed, low=0)
    design, foil, k = settings.design, settings.foil, settings.k
    include_invalid, min_display_ms = settings.include_invalid, settings.min_display_ms
    trials_per_participant = settings.trials_per_participant
    judgments_per_item = settings.judgments_per_item
    catch_rate, repeat_rate = settings.catch_rate, settings.repeat_rate
    kept = [r for r in records if include_invalid or r.get("valid") is not False]
    if not kept:
        raise ConfigError(
            "No IRIs left to ask about: every one failed the validity gate. "
            "Invert longer, or pass include_invalid (--include-invalid)."
        )
    if design == "clustering":
        return clustering_plan(kept, settings, seed=seed, excluded_invalid=len(records) - len(kept))
    rng = np.random.default_rng(seed)
    items = _items(kept, design, foil, k, rng)
    n_catch = round(catch_rate * trials_per_participant)
    n_repeat = round(repeat_rate * trials_per_participant)
    n_main = trials_per_participant - n_catch - n_repeat  # >= 1: SurveyDesign checks it
    n_main = min(n_main, len(items))  # nobody sees the same item twice (repeats aside)
    n_slots = math.ceil(len(items) * judgments_per_item / n_main)
    width = len(items[0].candidates)
    shown = np.zeros(len(items), dtype=int)
    sides = _Sides(width, rng)
    slots: list[list[Trial]] = []
    for _ in range(n_slots):
        # the least-shown items first (random among ties): coverage differs by at most one,
        # so every item reaches judgments_per_item
        chosen = np.lexsort((rng.random(len(items)), shown))[:n_main]
        shown[chosen] += 1
        catch = [f"catch:{items[int(rng.integers(len(items)))].id}" for _ in range(n_catch)]
        slots.append(_slot([items[i].id for i in chosen.tolist()], catch, n_repeat, sides, rng))
    all_items = {i.id: i for i in items}
    for slot in slots:
        for t in slot:
            if t.is_catch and t.item not in all_items:
                base = all_items[t.item.removeprefix("catch:")]
                all_items[t.item] = Item(
                    t.item,
                    query=base.candidates[0],
                    candidates=base.candidates,
                    condition={**base.condition, "catch": True},
                    is_catch=True,
                )
    recorded = {
        "design": design,
        "foil": foil if design == "2afc" else "targets",
        "k": width,
        "trials_per_participant": trials_per_participant,
        "judgments_per_item": judgments_per_item,
        "catch_rate": catch_rate,
        "repeat_rate": repeat_rate,
        "include_invalid": include_invalid,
        "min_display_ms": min_display_ms,
        "seed": seed,
        "items": len(items),
        "excluded_invalid": len(records) - len(kept),
        "slots": n_slots,
        # what the plan gives, which can be less than what was asked
        "trials_per_slot": len(slots[0]),
        "regular_per_slot": n_main,
        "catch_per_slot": n_catch,
        "repeats_per_slot": min(n_repeat, n_main),
        "min_judgments": int(shown.min()),
        "max_judgments": int(shown.max()),
    }
    return Plan(all_items, slots, recorded)
