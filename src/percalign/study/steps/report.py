"""The report step: the study's HTML report, from what the other steps wrote."""

from __future__ import annotations

from percalign.study.graph import Inputs

__all__ = ["report"]


def report(inputs: Inputs, todo: list[str]) -> None:
    from percalign.report import build_report

    inputs.run_each(todo, lambda _p: build_report(inputs.folder))
