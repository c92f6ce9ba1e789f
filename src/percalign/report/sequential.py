"""The report's account of a sequential survey: what it had to decide, each look, the
decisions, the participants it did not need, and how its estimates are to be read."""

from __future__ import annotations

import html
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from percalign.scoring.stopping import Stopping, describe_looks

__all__ = ["sequential_section"]


def sequential_section(survey: Path, who: str, table: Callable[[pd.DataFrame], str]) -> str | None:
    """The section's HTML for the survey folder ``survey`` (None: a fixed plan).

    Args:
        survey: the study's survey folder.
        who: what the participants are (``simulated participants (bots)``, ``people``).
        table: renders a DataFrame as the report's HTML table.
    """
    from percalign.store.study import read_looks, read_meta, study_url, survey_summary

    if not (survey / "survey.json").is_file():
        return None
    declared = read_meta(study_url(survey)).get("stopping")
    if not declared:
        return None
    stopping = Stopping(**declared)
    state = survey_summary(survey)["sequential"]
    looks = pd.DataFrame(read_looks(survey))
    paragraphs = [
        "The survey was sequential: the questions below were declared before the first "
        f"answer, and the service looked at the answers of the {html.escape(who)} as they came, "
        "with error-spending boundaries that keep each question's error rates over all its "
        "looks."
    ]
    paragraphs += [html.escape(line) for line in stopping.describe()]
    paragraphs += [html.escape(line.strip()) for line in describe_looks(state)]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    if len(looks):
        shown = pd.DataFrame(
            {
                "look": looks["look"],
                "kept participants": looks["participants"],
                "question": looks["label"],
                "estimate": looks["estimate"],
                "repeated CI": [
                    f"[{lo:+.3f}, {hi:+.3f}]"
                    for lo, hi in zip(looks["low"], looks["high"], strict=True)
                ],
                "information": looks["fraction"],
                "|z|": looks["z"].abs(),
                "efficacy bound": looks["efficacy"],
                "futility bound": looks["futility"],
                "decision": looks["decision"],
            }
        )
        body += table(shown)
    body += (
        '<p class="note">How to read the estimates after stopping. The decisions hold their '
        "declared error rates. The repeated CIs in this table hold jointly over every look, "
        "whenever the survey stopped. The alignment estimates and CIs elsewhere in this report "
        "use every kept answer, those of sessions that finished after the last look included, "
        "computed as if the number of participants had been fixed in advance: they do not "
        "account for the stopping, and a comparison that stopped early for a difference "
        "overstates it somewhat (benchmarks/sequential.py measures by how much).</p>"
    )
    return body
