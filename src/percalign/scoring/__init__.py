"""Statistics on answer tables (pure numpy/scipy/pandas: no torch, no database, no HTTP).

Alignment with crossed-bootstrap intervals and tests against chance; agreement (vote
fractions, Fleiss' kappa, Krippendorff's alpha, split-half noise ceiling); comparisons of
models, layers, seed types or losses (one crossed bootstrap over participants, targets and
items, Holm); pre-declared exclusions; judges against people; variance components of a
crossed design and planning from a pilot (participants and IRIs for a CI half-width or a
difference); declared questions decided at sequential looks with error spending, the budget
their declared power needs, and allocation of answers by uncertainty.
"""

from percalign.scoring.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    noise_ceiling,
    vote_fractions,
)
from percalign.scoring.alignment import alignment, paper_table
from percalign.scoring.allocation import allocate, condition_needs
from percalign.scoring.budget import Requirement, required_budget
from percalign.scoring.compare import compare, holm
from percalign.scoring.components import (
    Components,
    Layout,
    Shared,
    difference_variance,
    mean_variance,
    shared_components,
    variance_components,
)
from percalign.scoring.crossed import CrossedDesign, percentile_p, target_ci
from percalign.scoring.exclusions import Exclusions, apply_exclusions
from percalign.scoring.judges import judge_agreement, ranking_agreement
from percalign.scoring.matching import confusion_matrices, matching_accuracy
from percalign.scoring.moments import ContrastMoments, contrast_moments
from percalign.scoring.power import (
    DifferencePlan,
    HalfwidthPlan,
    difference_power,
    plan_difference,
    plan_halfwidth,
    predicted_halfwidth,
)
from percalign.scoring.sequential import Look, Question, SequentialPlan, decide, settled
from percalign.scoring.stats import bootstrap_ci, wilson
from percalign.scoring.table import check_table, from_judgments

__all__ = [
    "Components",
    "ContrastMoments",
    "CrossedDesign",
    "DifferencePlan",
    "Exclusions",
    "HalfwidthPlan",
    "Layout",
    "Look",
    "Question",
    "Requirement",
    "SequentialPlan",
    "Shared",
    "alignment",
    "allocate",
    "apply_exclusions",
    "bootstrap_ci",
    "check_table",
    "compare",
    "condition_needs",
    "confusion_matrices",
    "contrast_moments",
    "decide",
    "difference_power",
    "difference_variance",
    "fleiss_kappa",
    "from_judgments",
    "holm",
    "judge_agreement",
    "krippendorff_alpha",
    "matching_accuracy",
    "mean_variance",
    "noise_ceiling",
    "paper_table",
    "percentile_p",
    "plan_difference",
    "plan_halfwidth",
    "predicted_halfwidth",
    "ranking_agreement",
    "required_budget",
    "settled",
    "shared_components",
    "target_ci",
    "variance_components",
    "vote_fractions",
    "wilson",
]
