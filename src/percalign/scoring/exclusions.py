"""Pre-declared exclusion rules, applied to an answer table and reported rule by rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from percalign._checks import check_float, check_int
from percalign._settings import setting
from percalign.scoring.attention import AttentionRules, side_share
from percalign.scoring.table import check_table

__all__ = ["Exclusions", "apply_exclusions"]


@dataclass(frozen=True)
class Exclusions:
    """Rules declared before data collection (in the study spec).

    Attributes:
        min_catch_accuracy: drop participants whose accuracy on catch trials (``is_catch``)
            is below this.
        min_answers: drop participants with fewer answers than this.
        require_complete: drop participants whose session did not finish (``status`` column
            still ``active``).
        min_rt_ms: answers faster than this count as too fast, timed from the moment the
            images were shown: the page's ``rt_ms``, but never longer than the server's own
            measure ``server_rt_ms`` (from serving the trial, so at least as long: a client
            cannot make an answer slower than the server saw it) ...
        max_fast_share: ... and participants with a larger share of them are dropped, over
            all their answers or over their catch trials alone (a script that spots catch
            trials and answers them instantly is caught by the second). The page takes no
            choice before the survey's minimum display time (default 400 ms), so this must be
            above it to ever apply: the default 600 ms marks answers given within 200 ms of
            the first moment a choice counts, a press prepared before the images could be
            compared.
        max_side_share: drop participants with more than this share of their answers at one
            display position ...
        min_side_trials: ... over at least this many answers. The survey's failed code uses
            the same rule (:mod:`percalign.scoring.attention`: why 90% over 10).
    """

    min_catch_accuracy: float = setting(
        0.8, "Drop participants below this accuracy on catch trials."
    )
    min_answers: int = setting(1, "Drop participants with fewer answers.")
    min_rt_ms: float = setting(
        600.0,
        "Answers faster than this, timed from when the images were shown (never longer than "
        "the server's measure), count as too fast; keep it above the survey's minimum display "
        "time (400 ms by default), before which no choice counts ...",
    )
    max_fast_share: float = setting(
        0.2,
        "... and participants with a larger share of them (over all their answers or over "
        "their catch trials alone) are dropped.",
    )
    require_complete: bool = setting(True, "Drop participants who did not finish.")
    max_side_share: float = setting(
        0.9,
        "Drop participants with more than this share of their answers on one side (display "
        "position) ...; the survey gives them the failed code",
    )
    min_side_trials: int = setting(10, "... over at least this many answers.")

    def __post_init__(self) -> None:
        check_float("Exclusions", "min_catch_accuracy", self.min_catch_accuracy, 0.0, 1.0)
        check_int("Exclusions", "min_answers", self.min_answers, low=1)
        check_float("Exclusions", "min_rt_ms", self.min_rt_ms, low=0.0)
        check_float("Exclusions", "max_fast_share", self.max_fast_share, 0.0, 1.0)
        check_float("Exclusions", "max_side_share", self.max_side_share, 0.0, 1.0)
        check_int("Exclusions", "min_side_trials", self.min_side_trials, low=1)

    def attention(self) -> AttentionRules:
        """The rules behind the survey's failed code (declared with these exclusions)."""
        return AttentionRules(self.min_catch_accuracy, self.max_side_share, self.min_side_trials)


def _response_times(table: pd.DataFrame) -> pd.Series | None:
    """Milliseconds per answer from when its images were shown: the page's ``rt_ms``, capped
    by the server's ``server_rt_ms`` (which also counts the images' transfer, so is never
    shorter for an honest page); either alone where the other is missing."""
    server, client = table.get("server_rt_ms"), table.get("rt_ms")
    if server is None or client is None:
        return client if server is None else pd.to_numeric(server, errors="coerce")
    both = pd.concat(
        [pd.to_numeric(client, errors="coerce"), pd.to_numeric(server, errors="coerce")], axis=1
    )
    return both.min(axis=1, skipna=True)


def apply_exclusions(table: pd.DataFrame, rules: Exclusions) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply ``rules``; return the kept answers (catch trials removed) and a report.

    The report has one row per rule: participants and answers it removed, counted in order
    (a participant removed by an earlier rule is not counted again).
    """
    table = check_table(table)
    people = table.groupby("participant")
    reasons: dict[str, set[str]] = {}
    if "is_catch" in table.columns:
        catch = table[table["is_catch"].astype(bool)].groupby("participant")["correct"].mean()
        reasons[f"catch accuracy below {rules.min_catch_accuracy:g}"] = set(
            catch[catch < rules.min_catch_accuracy].index
        )
    if rules.require_complete and "status" in table.columns:
        unfinished = table.loc[table["status"] == "active", "participant"]
        reasons["session not finished"] = set(unfinished)
    counts = people.size()
    reasons[f"fewer than {rules.min_answers} answers"] = set(
        counts[counts < rules.min_answers].index
    )
    times = _response_times(table)
    if times is not None:
        fast = times < rules.min_rt_ms
        share = fast.groupby(table["participant"]).mean()
        reasons[
            f"over {rules.max_fast_share:.0%} of answers faster than {rules.min_rt_ms:g} ms"
        ] = set(share[share > rules.max_fast_share].index)
        if "is_catch" in table.columns:
            catch = table["is_catch"].astype(bool)
            share = fast[catch].groupby(table.loc[catch, "participant"]).mean()
            reasons[
                f"over {rules.max_fast_share:.0%} of catch trials faster than "
                f"{rules.min_rt_ms:g} ms"
            ] = set(share[share > rules.max_fast_share].index)
    if "choice" in table.columns:
        sides = table.groupby("participant")["choice"].agg(
            share=lambda c: side_share([int(v) for v in c.dropna()]), answers="count"
        )
        biased = (sides["answers"] >= rules.min_side_trials) & (
            sides["share"] > rules.max_side_share
        )
        reasons[
            f"over {rules.max_side_share:.0%} of at least {rules.min_side_trials} answers on "
            "one side"
        ] = set(sides.index[biased])
    removed: set[str] = set()
    rows = []
    for rule, who in reasons.items():
        new = who - removed
        rows.append(
            {
                "rule": rule,
                "participants": len(new),
                "answers": int(table["participant"].isin(new).sum()),
            }
        )
        removed |= new
    kept = table[~table["participant"].isin(removed)]
    if "is_catch" in kept.columns:
        kept = kept[~kept["is_catch"].astype(bool)]
    report = pd.DataFrame(rows)
    report.attrs["rules"] = asdict(rules)
    return kept.reset_index(drop=True), report
