"""Human surveys. So far: task design (pure: items, trials, assignment to participants)."""

from percalign.survey.design import DESIGNS, Item, Plan, Trial, make_plan

__all__ = ["DESIGNS", "Item", "Plan", "Trial", "make_plan"]
