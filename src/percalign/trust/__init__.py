"""Which model to trust when models disagree (the paper's RQ4), and where to ask people.

On inputs where models predict different labels, each rule trusts one model: the one whose
IRIs of the input are most aligned (``absolute``), most aligned relative to that model's
usual alignment (``standardized``), or most likely right by a cross-validated model of
confidence and alignment (``confidence+alignment``). Alignment comes from a source: a judge
(``judge:NAME``), people (``humans``) or simulated participants (``bots``), never mixed.
:func:`evaluate` scores every rule against baselines; :func:`analyze` runs everything from
models and labelled images, as :class:`TrustSettings` say.
"""

from percalign.trust.analysis import TrustResult, analyze, predict, prediction_table
from percalign.trust.rule import (
    BASELINES,
    RULES,
    disagreements,
    evaluate,
    select_uncertain,
    standardize,
    verdict,
)
from percalign.trust.settings import TrustSettings
from percalign.trust.sources import (
    BOT_PLATFORMS,
    PEOPLE_PLATFORMS,
    answer_source,
    human_scores,
    judge_scores,
    source_label,
    valid_judgments,
)

__all__ = [
    "BASELINES",
    "BOT_PLATFORMS",
    "PEOPLE_PLATFORMS",
    "RULES",
    "TrustResult",
    "TrustSettings",
    "analyze",
    "answer_source",
    "disagreements",
    "evaluate",
    "human_scores",
    "judge_scores",
    "predict",
    "prediction_table",
    "select_uncertain",
    "source_label",
    "standardize",
    "valid_judgments",
    "verdict",
]
