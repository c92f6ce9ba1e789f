"""The report step: the study's HTML report, from what the other steps wrote."""

from __future__ import annotations

from percalign.study.graph import Inputs

__all__ = ["report"]


def report(inputs: Inputs, todo: list[str]) -> None:
    from percalign.report import build_report
    from percalign.study.spec import load_spec

    # the report reads every setting, so the whole study.toml (the step declares it all)
    spec = load_spec(inputs.folder / "study.toml")
    inputs.run_each(todo, lambda _p: build_report(inputs.folder, spec))
