"""Statistics on answer tables (pure numpy/scipy/pandas: no torch, no database, no HTTP).

Alignment with crossed-bootstrap intervals and tests against chance; agreement (vote
fractions, Fleiss' kappa, Krippendorff's alpha, split-half noise ceiling); comparisons of
models, layers, seed types or losses (one crossed bootstrap over participants, targets and
items, Holm); pre-declared exclusions; judges against people; variance components of a
crossed design and planning from a pilot (participants and IRIs for a CI half-width or a
difference).
"""

from percalign.scoring.agreement import (
    fleiss_kappa,
    krippendorff_alpha,
    noise_ceiling,
    vote_fractions,
)
from percalign.scoring.alignment import alignment, paper_table
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
from percalign.scoring.power import (
    DifferencePlan,
    HalfwidthPlan,
    difference_power,
    plan_difference,
    plan_halfwidth,
    predicted_halfwidth,
)
from percalign.scoring.stats import bootstrap_ci, wilson
from percalign.scoring.table import check_table, from_judgments

__all__ = [
    "Components",
    "CrossedDesign",
    "DifferencePlan",
    "Exclusions",
    "HalfwidthPlan",
    "Layout",
    "Shared",
    "alignment",
    "apply_exclusions",
    "bootstrap_ci",
    "check_table",
    "compare",
    "confusion_matrices",
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
    "shared_components",
    "target_ci",
    "variance_components",
    "vote_fractions",
    "wilson",
]
