"""Notes the report writes from the scores: what they flag and when they stay silent."""

import html

import pandas as pd

from percalign.report.build import _judge_failures
from percalign.study.steps.score import over_judges


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


def _design():
    return {
        "design": "2afc",
        "foil": "other-target",
        "trials_per_participant": 40,
        "judgments_per_item": 5,
        "catch_per_slot": 4,
        "repeats_per_slot": 2,
        "regular_per_slot": 34,
        "slots": 56,
        "items": 375,
    }


def _scores(kind="simulated"):
    rules = {"min_catch_accuracy": 0.8, "min_rt_ms": 600.0, "max_fast_share": 0.2}
    return {
        "participants_kind": kind,
        "participants": 30,
        "answers": 1200,
        "kept_participants": 26,
        "kept_answers": 936,
        "exclusions": rules,
        "excluded": [
            {"rule": "catch accuracy below 0.8", "participants": 4, "answers": 160},
            {
                "rule": "over 90% of at least 10 answers on one side",
                "participants": 0,
                "answers": 0,
            },
        ],
    }


def test_the_methods_say_which_clock_the_speed_rules_read_and_that_bots_do_not_test_them():
    from percalign.report.build import _survey_text

    facts = {"catch": 120, "repeats": 60, "clock": "none", "fixed_rt": 1000.0, "kept_catch": 104}
    text = _survey_text(None, _design(), _scores(), "bots", {**facts, "kept_repeats": 52})
    assert "server's clock" not in text and "not tested" in text
    # every rule the exclusions table lists, the plan against what ran, the answers that add up
    assert "over 90% of at least 10 answers on one side (0 participants" in text
    assert "56 participant sessions" in text and "30 ran, so the plan was not met" in text
    assert "104 catch answers served only the catch rule" in text and "936" in text
    assert "52 of them on repeated trials" in text and "a single catch error" in text
    people = _survey_text(
        None, _design(), _scores("people"), "participants", {**facts, "clock": "server"}
    )
    assert "server's clock" in people and "not tested" not in people


def test_the_preset_is_named_as_the_spec_resolved_it():
    from percalign.report.presets import preset_text

    cfg = {
        "parameterization": "sigmoid",
        "optimizer": "adam",
        "lr": 0.1,
        "schedule": "cosine",
        "steps": 1000,
        "fake_relu": False,
        "share_seeds": False,
        "clamp_seeds": True,
        "preset": None,
    }
    assert preset_text(cfg, "default") == "the 'default' preset, steps changed to 1000"
    assert preset_text({**cfg, "steps": 2000}, "default") == "the 'default' preset"


def test_numbers_carry_only_the_digits_they_have():
    from percalign.report.build import _table
    from percalign.report.trust import _ci

    cells = _table(pd.DataFrame({"share": [48.571428, -0.04, 0.0]}), digits=1)
    assert ">48.6<" in cells and ">0.0<" in cells and "48.600" not in cells and "-0.0" not in cells
    assert "\u22120.0" not in cells  # a negative that rounds to 0 is not shown as minus zero
    assert ">121<" in _table(pd.DataFrame({"step": [121.0, 10.0]}))
    # a bound that rounds to 0 keeps its side; an exact 0 has none; minus is a real minus
    assert _ci(-0.2, -0.4, -0.0002, signed=True) == "\u221220.0 [\u221240.0, \u22120.020]"
    assert _ci(-0.2, -0.4, 0.0, signed=True) == "\u221220.0 [\u221240.0, 0.0]"


def test_every_judge_row_is_flagged_when_the_participants_are_bots():
    from types import SimpleNamespace

    from percalign.report.build import _versus_section

    versus = pd.DataFrame(
        {
            "judge": ["ssim", "pixel"],
            "items": [375, 375],
            **{c: [0.9, 0.7] for c in ("majority", "expected", "ceiling", "normalized", "kappa")},
            "judge_alignment": [0.51, 0.52],
        }
    )
    spec = SimpleNamespace(
        bots=SimpleNamespace(judge="ssim"), scoring=SimpleNamespace(by=["model"])
    )
    summary = {
        "noise_ceiling": {"reliability": 0.918, "low": 0.892, "high": 0.946, "splits": 200},
        "krippendorff_alpha": 0.822,
    }
    page = html.unescape(
        _versus_section(versus, "simulated", summary, spec, "simulated participants (bots)", 8)
    )
    assert "decides the simulated participants" in page
    assert "compared with bots that decide with ssim" in page
    assert "no judge's agreement with them is evidence about perception" in page
    assert "from 0.892 to 0.946" in page and "Krippendorff's alpha 0.822" in page
    assert ">51.0<" in page  # percent, like every other alignment in the report
