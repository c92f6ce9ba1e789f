"""Automated judges of image similarity."""

from percalign.judges.lpips import LPIPS

__all__ = ["LPIPS"]
