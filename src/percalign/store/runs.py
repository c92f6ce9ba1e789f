"""Inversion run folders: target, seed and IRI PNGs, ``manifest.json`` and ``grid.png``.

A folder is written under a hidden temporary name next to its destination and renamed into
place when complete, so a run that is killed leaves no half-written output folder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from percalign import _provenance
from percalign.errors import MissingFileError, OutputExistsError

if TYPE_CHECKING:
    from percalign.inversion.engine import InversionResult
    from percalign.inversion.validity import NullDistribution
    from percalign.judges.metric import RunImages
    from percalign.models.model import Model

__all__ = [
    "MANIFEST",
    "atomic_folder",
    "check_output",
    "gate_warnings",
    "read_manifest",
    "read_run",
    "save_run",
    "slug",
    "subset_run",
    "write_table",
]

MANIFEST = "manifest.json"
GRID = "grid.png"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def read_run(folder: str | Path) -> RunImages:
    """The images and records of run folder ``folder``, as the judges take them."""
    import torch

    from percalign.judges.metric import RunImages
    from percalign.store.images import read_png

    folder = Path(folder)
    manifest = read_manifest(folder)
    records = manifest["iris"]
    iris = torch.stack([read_png(folder / r["iri"]) for r in records])
    seeds = torch.stack([read_png(folder / r["seed"]) for r in records])
    targets = torch.stack([read_png(folder / t["file"]) for t in manifest["targets"]])
    ids = [t["id"] for t in manifest["targets"]]
    labels = [t.get("label") for t in manifest["targets"]]
    return RunImages(folder, records, iris, seeds, targets, ids, labels)


def check_output(out: Path, overwrite: bool) -> None:
    """Raise :class:`OutputExistsError` if ``out`` holds anything and ``overwrite`` is off."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise OutputExistsError(
            f"Output folder {str(out)!r} already exists; choose another --out or pass --overwrite."
        )


@contextmanager
def atomic_folder(out: Path, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder that replaces ``out`` only if the block finishes."""
    out = Path(out)
    check_output(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            trash = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
            os.replace(out, trash)
            os.replace(tmp, out)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def slug(text: str) -> str:
    """``text`` as a safe file name (runs of other characters become ``_``)."""
    return _UNSAFE.sub("_", text).strip("_") or "x"


def _number(x: Any) -> float | None:
    x = float(x)
    return None if not np.isfinite(x) else x


def _step_or_none(step: Any) -> int | None:
    return None if int(step) < 0 else int(step)


def save_run(
    out: Path,
    result: InversionResult,
    *,
    model: Model,
    target_ids: Sequence[str],
    target_labels: Sequence[int] | None = None,
    seed_ids: Sequence[str] | None = None,
    nulls: dict[str, NullDistribution] | None = None,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``result`` to the folder ``out`` (atomically) and return it.

    Args:
        out: destination folder; must not exist (or be empty) unless ``overwrite``.
        result: the inversion result.
        model: the inverted model (its spec and weights hash go into the manifest).
        target_ids: one id per target image (``digits/0017``, a file path...).
        target_labels: class labels of the targets, if known.
        seed_ids: ids of the pool images used by ``image`` seeds (default: ``target_ids``).
        nulls: validity null distribution per objective; IRIs get a ``valid`` flag from it.
        extra: further JSON-able entries for the manifest (image source, timing...).
    """
    from percalign.store.grid import run_grid
    from percalign.store.images import write_png

    seed_ids = list(seed_ids) if seed_ids is not None else list(target_ids)
    with atomic_folder(Path(out), overwrite) as tmp:
        targets = []
        for t, image in enumerate(result.targets):
            rel = f"targets/t{t:04d}.png"
            targets.append(
                {
                    "index": t,
                    "id": target_ids[t],
                    "file": rel,
                    "sha256": write_png(tmp / rel, image),
                    "label": None if target_labels is None else int(target_labels[t]),
                    "at_zero": round(float((image == 0).float().mean()), 4),
                    "at_one": round(float((image == 1).float().mean()), 4),
                }
            )
        records = []
        for i in range(len(result)):
            t = int(result.target_index[i])
            seed_stem = f"t{t:04d}-{slug(result.seed_kind[i])}-{result.seed_copy[i]}"
            seed_rel = f"seeds/{seed_stem}.png"
            iri_rel = f"iris/{seed_stem}-{slug(result.objective[i])}.png"
            source = result.seed_source[i]
            null = (nulls or {}).get(result.objective[i])
            records.append(
                {
                    "iri": iri_rel,
                    "iri_sha256": write_png(tmp / iri_rel, result.iris[i]),
                    "seed": seed_rel,
                    "seed_sha256": write_png(tmp / seed_rel, result.seeds[i]),
                    "target": targets[t]["file"],
                    "target_index": t,
                    "target_id": target_ids[t],
                    "seed_type": result.seed_kind[i],
                    "seed_copy": result.seed_copy[i],
                    "seed_source_id": None if source is None else seed_ids[source],
                    "layer": result.objective[i],
                    "distance": _number(result.distance[i]),
                    "layer_distances": {
                        k: _number(v[i])
                        for k, v in result.layer_distance.items()
                        if np.isfinite(float(v[i]))
                    },
                    "seed_distance": _number(result.seed_distance[i]),
                    "valid": None
                    if null is None
                    else bool(
                        null.valid(result.distance[i : i + 1], objective=result.objective[i])[0]
                    ),
                    "steps": int(result.steps_taken[i]),
                    "first_valid_step": _step_or_none(result.first_valid_step[i]),
                    "at_zero": round(float(result.at_zero[i]), 4),
                    "at_one": round(float(result.at_one[i]), 4),
                    "curve": [round(float(v), 6) for v in result.curves[i]],
                }
            )
        pass_rates = {}
        for name, null in (nulls or {}).items():
            flags = [bool(r["valid"]) for r in records if r["layer"] == name]
            pass_rates[name] = {
                **null.summary(),
                "valid": int(sum(flags)),
                "iris": len(flags),
                "pass_rate": sum(flags) / len(flags) if flags else None,
            }
        manifest = {
            "kind": "percalign.inversion-run",
            "format": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "model": {
                **{k: v for k, v in asdict(model.spec).items() if k != "extra"},
                "extra": model.spec.extra,
                "weights_sha256": model.weights_sha256,
            },
            "config": result.config.to_dict(),
            "curve_steps": result.curve_steps,
            "validity": pass_rates,
            "code": _provenance.code_version(),
            "packages": _provenance.package_versions(),
            **(extra or {}),
            "targets": targets,
            "iris": records,
        }
        (tmp / MANIFEST).write_text(_dumps(manifest))
        run_grid(result, tmp / GRID)
    return Path(out)


def _dumps(manifest: dict[str, Any]) -> str:
    """JSON with one line per setting and one line per target or IRI record."""
    lines = []
    for key, value in manifest.items():
        if isinstance(value, list) and value and isinstance(value[0], dict):
            rows = ",\n  ".join(json.dumps(row, default=str) for row in value)
            lines.append(f" {json.dumps(key)}: [\n  {rows}\n ]")
        else:
            lines.append(f" {json.dumps(key)}: {json.dumps(value, default=str)}")
    return "{\n" + ",\n".join(lines) + "\n}\n"


def gate_warnings(manifest: dict[str, Any]) -> list[str]:
    """One line per layer objective of a run where most IRIs failed the validity gate.

    Each line names the likely cause and the fix (see
    :func:`~percalign.inversion.validity.gate_warning`); a run without validity flags has none.
    """
    from percalign.inversion.validity import gate_warning

    config = manifest.get("config", {})
    lines = []
    for objective in manifest.get("validity", {}):
        rows = [r for r in manifest["iris"] if r["layer"] == objective and r["valid"] is not None]
        targets = manifest["targets"]

        def bounds(record: dict[str, Any]) -> float:
            return float(record.get("at_zero", 0.0) + record.get("at_one", 0.0))

        line = gate_warning(
            objective,
            np.array([r["valid"] for r in rows], dtype=bool),
            # beyond what the target has (a digit's background is 0 already)
            np.array([bounds(r) - bounds(targets[r["target_index"]]) for r in rows]),
            config.get("parameterization", "pixel"),
            int(config.get("steps", 0)),
            config.get("loss", "regularizer-free"),
        )
        if line:
            lines.append(f"{manifest['model']['name']}: {line}")
    return lines


def read_manifest(folder: Path) -> dict[str, Any]:
    """The manifest of a run folder written by :func:`save_run`."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise MissingFileError(
            f"{str(folder)!r} is not an inversion run folder (no {MANIFEST}); pass the --out "
            "folder of a `percalign invert` run."
        )
    return json.loads(path.read_text())


def subset_run(folder: Path, out: Path, target_ids: Sequence[str], overwrite: bool = False) -> Path:
    """Copy the part of run ``folder`` that concerns ``target_ids`` to a new run folder ``out``.

    Target indices are renumbered; files keep their names. The grid is not redrawn.
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    wanted = set(target_ids)
    targets = [t for t in manifest["targets"] if t["id"] in wanted]
    missing = wanted - {t["id"] for t in targets}
    if missing:
        raise MissingFileError(f"Run {str(folder)!r} has no target(s) {sorted(missing)}.")
    index = {t["index"]: new for new, t in enumerate(targets)}
    records = [
        {**r, "target_index": index[r["target_index"]]}
        for r in manifest["iris"]
        if r["target_index"] in index
    ]
    with atomic_folder(Path(out), overwrite) as tmp:
        files = [t["file"] for t in targets] + [r[k] for r in records for k in ("iri", "seed")]
        for rel in dict.fromkeys(files):
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(folder / rel, tmp / rel)
        subset = {
            **manifest,
            "subset_of": str(folder.resolve()),
            "targets": [{**t, "index": index[t["index"]]} for t in targets],
            "iris": records,
        }
        (tmp / MANIFEST).write_text(_dumps(subset))
    return Path(out)


def write_table(table: Any, path: Path) -> Path:
    """Write a pandas table as CSV atomically (a temporary file renamed into place)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        table.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
