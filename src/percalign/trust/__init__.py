"""Which model to trust when models disagree (the paper's RQ4), and where to ask people.

The rule: on inputs where models predict different labels, trust the model whose IRIs of the
input are most aligned (by a judge, or by people). :func:`evaluate` scores it against
baselines; :func:`analyze` runs everything from models and labelled images.
"""

from percalign.trust.analysis import TrustResult, analyze, predict, prediction_table
from percalign.trust.rule import (
    BASELINES,
    disagreements,
    evaluate,
    human_scores,
    judge_scores,
    select_uncertain,
)

__all__ = [
    "BASELINES",
    "TrustResult",
    "analyze",
    "disagreements",
    "evaluate",
    "human_scores",
    "judge_scores",
    "predict",
    "prediction_table",
    "select_uncertain",
]
