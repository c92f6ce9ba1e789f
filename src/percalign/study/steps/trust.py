"""The trust step: how far the automatic judges can be trusted on the study's models (see
:mod:`percalign.trust`).
"""

from __future__ import annotations

from typing import Any

from percalign.study.graph import Inputs
from percalign.study.spec import StudySpec
from percalign.study.steps.common import model_device

__all__ = ["trust", "trust_extra"]

#: the trust analysis's output format (rules per source, valid IRIs only)
_TRUST_FORMAT = 2


def _trust_models(spec: StudySpec) -> list[str]:
    return spec.trust.models or [m.name for m in spec.models]


def trust_extra(inputs: Inputs, _part: str) -> tuple[Any, ...]:
    models = inputs.value("models")
    return (_TRUST_FORMAT, [models.id(n) for n in _trust_models(inputs.spec)])


def trust(inputs: Inputs, todo: list[str]) -> None:
    from percalign.judges import get_judges
    from percalign.trust import analyze

    spec, models = inputs.spec, inputs.value("models")
    tr = spec.trust  # the TrustSettings, with the study's images, layer, bootstrap and seed

    def work(_part: str) -> None:
        analyze(
            inputs.folder / "trust",
            [models.models[n] for n in _trust_models(spec)],
            tr,
            judges=get_judges(tr.judges or spec.judges.names, device=model_device(spec)),
            config=tr.inversion_config(spec.inversion),
            overwrite=True,
            progress=inputs.context.progress,
            log=inputs.log,
        )

    inputs.run_each(todo, work)
