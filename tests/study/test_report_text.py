"""Notes the report writes from the scores: what they flag and when they stay silent."""

import pandas as pd

from percalign.report.build import _judge_failures
from percalign.study.scores import over_judges


def _by_model(hi: float) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["robust"],
            "loss": ["adversarial"],
            "judge": ["pixel"],
            "alignment": [6.0],
            "lo": [0.0],
            "hi": [hi],
        }
    )


def test_a_judge_far_below_chance_is_flagged_and_one_near_chance_is_not():
    note = _judge_failures(_by_model(13.0), "other_2afc")
    assert "A judge may be failing" in note and "pixel on robust (adversarial)" in note
    assert _judge_failures(_by_model(55.0), "other_2afc") == ""
    # matching has another chance level: not judged by the 2AFC rule
    assert _judge_failures(_by_model(13.0), "matching") == ""


def test_the_spread_over_judges_is_named_an_sd():
    assert over_judges([60.0, 70.0]) == "65.0 (SD 7.1)"
    assert "SD" not in over_judges([61.0])
