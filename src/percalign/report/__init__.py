"""The study report: figures (matplotlib) and one self-contained HTML page."""

from percalign.report.build import SECTIONS, build_report

__all__ = ["SECTIONS", "build_report"]
