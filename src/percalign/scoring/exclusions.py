"""Pre-declared exclusion rules, applied to an answer table and reported rule by rule."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import pandas as pd

from percalign._checks import check_float, check_int
from percalign._settings import setting
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
        min_rt_ms: answers faster than this count as too fast (the server's own measure,
            ``server_rt_ms``, where the table has it: a client cannot fake it; else the
            client's ``rt_ms``) ...
        max_fast_share: ... and participants with a larger share of them are dropped, over
            all their answers or over their catch trials alone (a script that spots catch
            trials and answers them instantly is caught by the second).
    """

    min_catch_accuracy: float = setting(
        0.8, "Drop participants below this accuracy on catch trials."
    )
    min_answers: int = setting(1, "Drop participants with fewer answers.")
    min_rt_ms: float = setting(
        250.0,
        "Answers faster than this (the server's measure where there is one) count as too fast ...",
    )
    max_fast_share: float = setting(
        0.2,
        "... and participants with a larger share of them (over all their answers or over "
        "their catch trials alone) are dropped.",
    )
    require_complete: bool = setting(True, "Drop participants who did not finish.")

    def __post_init__(self) -> None:
        check_float("Exclusions", "min_catch_accuracy", self.min_catch_accuracy, 0.0, 1.0)
        check_int("Exclusions", "min_answers", self.min_answers, low=1)
        check_float("Exclusions", "min_rt_ms", self.min_rt_ms, low=0.0)
        check_float("Exclusions", "max_fast_share", self.max_fast_share, 0.0, 1.0)


def _response_times(table: pd.DataFrame) -> pd.Series | None:
    """Milliseconds per answer: the server's measure where known, else the client's."""
    server = table.get("server_rt_ms")
    client = table.get("rt_ms")
    if server is None:
        return client
    server = pd.to_numeric(server, errors="coerce")
    return server if client is None else server.fillna(pd.to_numeric(client, errors="coerce"))


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
