"""What a survey asks and how often: :class:`SurveyDesign`, the settings of
:func:`~percalign.survey.design.make_plan`.

Each field carries its help and its constraint (``percalign._settings``): the study's
``[survey]`` section, ``percalign survey build`` and ``make_plan`` take the same fields, and
check them with the same rule.
"""

from __future__ import annotations

from dataclasses import dataclass

from percalign._settings import Interval, OneOf, check_settings, setting
from percalign.errors import ConfigError

__all__ = ["DESIGNS", "FOILS", "SurveyDesign"]

DESIGNS = ("2afc", "matching", "clustering")
FOILS = ("seed", "other-target")


@dataclass(frozen=True)
class SurveyDesign:
    """The design of a survey's plan (checked on construction)."""

    design: str = setting(
        default="2afc",
        help=(
            "`2afc`, `matching` (one IRI, k targets) or `clustering` (matching screens: k "
            "targets and several IRIs of each, every IRI assigned to a target)."
        ),
        check=OneOf(DESIGNS),
    )
    foil: str = setting(
        default="other-target",
        help=(
            "The wrong 2AFC candidate: `other-target` (a target of the IRI's own run, of "
            "another class, never its seed) or `seed`."
        ),
        check=OneOf(FOILS),
    )
    k: int = setting(
        default=4,
        help=("Candidates per matching trial; targets per clustering screen."),
        check=Interval(int, 2),
    )
    iris_per_target: int = setting(
        default=2,
        help=("IRIs of each target on a clustering screen."),
        check=Interval(int, 1, 20),
    )
    trials_per_participant: int = setting(
        default=40,
        help=("Trials per participant, catch and repeats included."),
        check=Interval(int, 1),
    )
    judgments_per_item: int = setting(
        default=5,
        help=("Minimum participants per item."),
        check=Interval(int, 1),
    )
    catch_rate: float = setting(
        default=0.1,
        help=(
            "Share of catch trials (the IRI is one of the candidates); for `clustering`, of "
            "catch screens (copies of the screen's targets to assign)."
        ),
        check=Interval(float, 0.0, 0.5),
    )
    repeat_rate: float = setting(
        default=0.05,
        help=("Share of repeated trials (consistency)."),
        check=Interval(float, 0.0, 0.5),
    )
    include_invalid: bool = setting(
        default=False,
        help=("Also ask about IRIs that failed the validity gate."),
    )
    min_display_ms: int = setting(
        default=400,
        help=(
            "A choice counts only once its trial has been on screen this long (the page ignores "
            "earlier presses and the server refuses earlier answers)."
        ),
        check=Interval(int, 0, 10_000),
    )

    def __post_init__(self) -> None:
        check_settings(self)
        self.check_trials()

    def check_trials(self) -> None:
        """Refuse rates that leave a participant no regular trial (a plan's first need)."""
        n = self.trials_per_participant
        regular = n - round(self.catch_rate * n) - round(self.repeat_rate * n)
        if self.design != "clustering" and regular < 1:
            raise ConfigError(
                "catch_rate and repeat_rate leave no regular trials among "
                f"trials_per_participant = {n}; lower them or raise trials_per_participant."
            )
