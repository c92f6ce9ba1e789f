"""The study report: one self-contained HTML file (images inlined) that opens offline.

Sections: IRI grids per model, validity, alignment by people and by judges with CIs, the
paper-style table, model comparisons, judges against people, trust, exclusions, and a methods
paragraph written from the manifests. Figures are also saved as PNG and PDF in
``report/figures``.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from percalign.inversion.config import comparison_loss
from percalign.report.presets import preset_text
from percalign.store.runs import atomic_folder, gate_warnings, read_manifest

__all__ = ["SECTIONS", "build_report"]

#: the id and title of every section, in order (tests check that each is present)
SECTIONS = {
    "methods": "Methods",
    "iris": "IRIs: target | seed | IRI",
    "validity": "Validity of the IRIs",
    "alignment": "Alignment",
    "matching": "Matching: which target each target's IRIs were matched to",
    "losses": "Alignment per loss family",
    "table": "Architecture x training",
    "comparisons": "Model comparisons",
    "sequential": "Sequential decisions: looks, decisions, participants saved",
    "judges": "Judges against participants",
    "trust": "Which model to trust when models disagree",
    "exclusions": "Exclusions",
}

CSS = """
body{font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1a1a1a;
max-width:1100px;margin:2em auto;padding:0 1.2em;background:#fff}
h1{font-size:1.7em;margin-bottom:.1em} h2{margin-top:2em;border-bottom:1px solid #ddd;
padding-bottom:.2em} h3{margin-bottom:.3em}
.sub{color:#555;margin-top:0} .note{color:#555;font-size:.9em}
.banner{background:#fff4d6;border:1px solid #e0c060;padding:.6em .9em;border-radius:6px}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}
th,td{border:1px solid #ddd;padding:.25em .6em;text-align:left}
th{background:#f4f4f4} td.n{text-align:right;font-variant-numeric:tabular-nums}
img{max-width:100%} .grids{display:flex;flex-wrap:wrap;gap:1.2em}
.grid{flex:0 1 250px} .grid img{image-rendering:pixelated;border:1px solid #eee}
.grid h3{font-size:.95em}
nav a{margin-right:1em} .methods{background:#f8f8f8;padding:.8em 1em;border-radius:6px}
"""


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


MINUS = "\u2212"


def _number(v: float, digits: int) -> str:
    """``v`` with ``digits`` decimals and a real minus sign; "-" for a missing value."""
    if v != v:
        return "-"
    text = f"{v:.{digits}f}"
    if text.lstrip("-").strip("0.") == "":
        text = text.lstrip("-")  # no "-0.0"
    return text.replace("-", MINUS)


def _table(frame: pd.DataFrame, index: bool = False, digits: int = 3) -> str:
    """``frame`` as an HTML table; floats get ``digits`` decimals (one number of digits per
    table, so that a zero reads like its neighbours), whole-number columns none."""
    whole = {
        c
        for c in frame.columns
        if frame[c].dtype.kind == "f"
        and frame[c].notna().any()
        and bool((frame[c].dropna() % 1 == 0).all())
    }

    def fmt(v: Any, column: Any = None) -> str:
        if isinstance(v, float):
            return f"<td class=n>{_number(v, 0 if column in whole else digits)}</td>"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"<td class=n>{str(v).replace('-', MINUS)}</td>"
        return f"<td>{html.escape(str(v))}</td>"

    head = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for idx, row in frame.iterrows():
        cells = ([fmt(idx)] if index else []) + [
            fmt(v, c) for c, v in zip(frame.columns, row.tolist(), strict=True)
        ]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(str(h))}</th>" for h in head)
    return f"<table><tr>{header}</tr>{''.join(rows)}</table>"


def _read(path: Path, **kw: Any) -> pd.DataFrame | None:
    """The table at ``path``; None when it is missing or empty (no valid IRI made a row)."""
    if not path.is_file():
        return None
    try:
        return pd.read_csv(path, **kw)
    except pd.errors.EmptyDataError:
        return None


def _param_text(cfg: dict[str, Any]) -> str:
    kind = cfg.get("parameterization", "pixel")
    if kind == "sigmoid":
        return (
            "over pixels written as the sigmoid of unconstrained variables (seeds clamped into "
            f"({cfg.get('parameterization_eps', 0.001):g}, 1 - "
            f"{cfg.get('parameterization_eps', 0.001):g}) first), a reparameterization, not a "
            "prior: the loss is unchanged"
        )
    if kind == "fourier":
        return "over a decorrelated Fourier spectrum (the Fourier loss family)"
    text = "over pixels clamped to [0, 1] after every step"
    if cfg.get("clamp_seeds") is False:
        text += ", starting from the raw noise (seen by the model through its input clamp)"
    return text


def _loop_text(cfg: dict[str, Any]) -> str:
    """The loop's settings a reader must know beyond the optimizer: fake ReLU, shared seeds."""
    parts = []
    if cfg.get("fake_relu"):
        parts.append("the final ReLU before the read layer passed gradients unchanged (fake ReLU)")
    if cfg.get("share_seeds"):
        parts.append("one noise seed per seed type was shared by all targets")
    if not parts:
        return ""
    text = "; ".join(parts)
    return f" {text[0].upper()}{text[1:]}."


def _methods(
    spec: Any,
    manifests: dict[str, dict[str, Any]],
    scores: dict[str, Any],
    survey: dict[str, Any] | None,
    answers: dict[str, Any] | None = None,
) -> str:
    """A paragraph for a paper's methods section, from what the manifests recorded and what
    happened in the survey (``answers``: :func:`_answer_facts`)."""
    first = next(iter(manifests.values()))
    cfg = first["config"]
    preset = getattr(spec.inversion, "preset", None)
    models = []
    for m in dict.fromkeys(
        (man["model"]["name"], man["model"]["weights"], man["model"]["weights_sha256"][:12])
        for man in manifests.values()
    ):
        models.append(f"{m[0]} (weights {m[1]}, SHA-256 {m[2]}…)")
    layers = sorted({r["layer"] for man in manifests.values() for r in man["iris"]})
    losses = sorted({man["config"]["loss"] for man in manifests.values()})
    seeds_of: dict[str, set[str]] = {}
    for man in manifests.values():
        seeds_of.setdefault(man["config"]["loss"], set()).update(man["seeds"].split(","))
    seed_sets = {frozenset(v) for v in seeds_of.values()}
    if len(seed_sets) == 1:
        seed_text = f"starting from seeds {', '.join(sorted(next(iter(seed_sets))))}"
    else:
        seed_text = "starting from seeds " + "; ".join(
            f"{', '.join(sorted(v))} ({loss})" for loss, v in sorted(seeds_of.items())
        )
    stops = sorted({man["config"].get("stop_at_valid") for man in manifests.values()} - {None})
    stop_text = (
        " Each image stopped once its distance fell below "
        + " or ".join(f"{m:g}" for m in stops)
        + " times its validity threshold."
        if stops
        else ""
    )
    n_targets = len(first["targets"])
    validity: dict[str, dict[str, Any]] = first.get("validity", {})
    pct = next(iter(validity.values()), {}).get("percentile")
    text = [
        f"We inverted {len(models)} model{'s' if len(models) > 1 else ''}: "
        f"{', '.join(models)}. For each model we generated "
        f"identically represented inputs (IRIs) of {n_targets} target images "
        f"({first['images']['source']}, {first['images'].get('split', 'all')} split, "
        f"{first['images']['size'][0]}x{first['images']['size'][1]} px) at "
        f"layer{'s' if len(layers) > 1 else ''} "
        f"{', '.join(layers)} with the loss famil{'ies' if len(losses) > 1 else 'y'} "
        f"{', '.join(losses)}, {seed_text}. Each IRI was optimized for "
        f"{'at most ' if stops else ''}"
        f"{cfg['steps']} steps of {cfg['optimizer']} (learning rate {cfg['lr']:g}, "
        f"{cfg['schedule']} schedule; {preset_text(cfg, preset)}) to minimize the relative "
        f"L{cfg['p']:g} distance between its representation and the target's, "
        f"{_param_text(cfg)}, and saved as an 8-bit PNG; distances were measured on the "
        f"saved images.{_loop_text(cfg)}{stop_text}",
    ]
    adversarial = sorted(
        {
            man["config"].get("adversary", "lpips-alex")
            for man in manifests.values()
            if man["config"]["loss_spec"]["adversarial"]
        }
    )
    if adversarial:
        weights = sorted(
            {
                str(man["config"].get("adversarial_lambda", 10))
                for man in manifests.values()
                if man["config"]["loss_spec"]["adversarial"]
            }
        )
        weight = " or ".join(weights)
        if weight == "auto":
            weight = "auto: set per run from the sizes of the two terms"
        stand_in = [a for a in adversarial if not a.startswith("lpips")]
        text.append(
            f"The adversarial loss subtracted the distance of the judge {', '.join(adversarial)} "
            f"between the IRI and its target (weight {weight}); that judge was held out from "
            "judging the adversarial IRIs."
            + (
                f" {', '.join(stand_in).upper()} stands in for the paper's adversary, LPIPS, "
                "so these adversarial IRIs answer a different loss than the paper's."
                if stand_in
                else ""
            )
        )
    if pct is not None:
        text.append(
            f"An IRI counted as valid when its distance was below percentile {pct:g} of the "
            "distances between distinct natural images (the validity null)."
        )
    foil = {"other_2afc": "another target", "seed_2afc": "its seed"}.get(
        spec.judges.metric, "the other references"
    )
    text.append(
        f"Automated judges ({', '.join(spec.judges.names)}) decided, for each IRI, whether it "
        f"was closer to its target than to {foil} "
        f"({spec.judges.metric}); alignment is the percentage of such IRIs, with 95% "
        f"percentile-bootstrap intervals that resample targets, then IRIs within targets "
        f"({spec.scoring.n_boot} resamples)."
    )
    if survey is not None and scores.get("answers"):
        design = survey["design"]
        who = {
            "simulated": "simulated participants (bots deciding with "
            f"{spec.bots.judge}, lapse rate {spec.bots.lapse:g}; not people)",
            "people": "participants",
            "mixed": "participants (people and simulated participants mixed)",
        }[scores["participants_kind"]]
        text.append(_survey_text(spec, design, scores, who, answers or {}, survey))
    seeds = f"Random seeds: study seed {spec.study.seed} (inversions, judges' other targets"
    if survey is not None:
        seeds += f"; survey plan seed {survey['design'].get('seed', spec.study.seed)}"
    text.append(
        seeds + f"; every bootstrap seeded with {spec.study.seed}). Resamples: "
        f"{spec.scoring.n_boot} for the judges' CIs"
        + (
            ", the participants' CIs and the model comparisons; 2000 for Kendall's tau; "
            "200 random split halves for the noise ceiling"
            if survey is not None and scores.get("answers")
            else ""
        )
        + (f"; {spec.scoring.n_boot} for the trust CIs" if spec.trust.enabled else "")
        + "."
    )
    from percalign import __version__

    commit = first.get("code", {}).get("git_commit")
    text.append(
        f"Software: percalign {__version__}"
        + (f" (commit {str(commit)[:10]})" if commit else "")
        + f", PyTorch {first.get('packages', {}).get('torch', '?')}."
    )
    return " ".join(text)


def _provenance(manifests: dict[str, dict[str, Any]], spec: Any) -> pd.DataFrame:
    """One row per model: its training and the accuracies its weights recorded (robust
    accuracy per attack, where measured), so a reader sees that a robust model is robust."""
    rows: dict[str, dict[str, Any]] = {}
    trainings = {m.name: m.training for m in spec.models}
    for man in manifests.values():
        model = man["model"]
        extra = model.get("extra") or {}
        row = {"model": model["name"], "training": trainings.get(model["name"], "")}
        clean = extra.get("clean_accuracy")
        row["clean accuracy %"] = _pct(clean) if clean is not None else "not recorded"
        images = (extra.get("hyperparameters") or {}).get("eval_images")
        on = f", {images} test images" if images else ""
        for attack, value in (extra.get("robust_accuracy") or {}).items():
            row[f"robust accuracy % ({attack}{on})"] = _pct(value)
        rows.setdefault(model["name"], row)
    return pd.DataFrame(list(rows.values())).fillna("not measured")


def _answer_facts(answers: pd.DataFrame, spec: Any) -> dict[str, Any]:
    """What the methods must say about the answers beyond the summary's counts: catch and
    repeated trials before and after exclusions, the clock the speed rules read, and how
    often a repeated trial got its first answer again (test-retest, kept participants)."""
    import dataclasses

    from percalign.scoring.exclusions import Exclusions, apply_exclusions

    flags = {
        c: answers[c].astype(str).str.lower().eq("true") if c in answers else None
        for c in ("is_catch", "is_repeat")
    }
    catch, repeat = flags["is_catch"], flags["is_repeat"]
    facts: dict[str, Any] = {
        "catch": int(catch.sum()) if catch is not None else 0,
        "repeats": int(repeat.sum()) if repeat is not None else 0,
    }
    server = answers.get("server_rt_ms")
    timed = int(pd.to_numeric(server, errors="coerce").notna().sum()) if server is not None else 0
    facts["clock"] = "none" if timed == 0 else "server" if timed == len(answers) else "mixed"
    if "rt_ms" in answers:
        own = pd.to_numeric(answers["rt_ms"], errors="coerce")
        if own.notna().all() and own.nunique() == 1:
            facts["fixed_rt"] = float(own.iloc[0])
    table = answers.assign(
        **{k: v for k, v in flags.items() if v is not None},
    )
    kept, _ = apply_exclusions(table, Exclusions(**dataclasses.asdict(spec.exclusions)))
    people = set(kept["participant"])
    if catch is not None:
        facts["kept_catch"] = int((catch & answers["participant"].isin(people)).sum())
    if repeat is not None and "is_repeat" in kept:
        facts["kept_repeats"] = int(kept["is_repeat"].sum())
        first = kept[~kept["is_repeat"]].drop_duplicates(["participant", "item"])
        again = kept[kept["is_repeat"]].merge(
            first[["participant", "item", "correct"]], on=["participant", "item"]
        )
        if len(again):
            same = int((again["correct_x"] == again["correct_y"]).sum())
            facts["retest"] = (same, len(again))
    return facts


def _survey_text(
    spec: Any,
    design: dict[str, Any],
    scores: dict[str, Any],
    who: str,
    facts: dict[str, Any],
    survey: dict[str, Any] | None = None,
) -> str:
    """The survey's part of the methods: the plan against what ran, every exclusion rule
    with what it removed, the clock of the speed rules, and which answers were scored."""
    trials = design["trials_per_participant"]
    if "catch_per_slot" in design:
        layout = (
            f"{trials} trials per participant: {design['catch_per_slot']} catch, "
            f"{design['repeats_per_slot']} repeated and {design['regular_per_slot']} regular"
        )
    else:
        layout = (
            f"{trials} trials per participant including {design['catch_rate']:.0%} catch and "
            f"{design['repeat_rate']:.0%} repeated trials"
        )
    ran = scores["participants"]
    plan = f"{design['judgments_per_item']} judgments per item planned"
    if "slots" in design:
        sequential = bool((survey or {}).get("stopping"))
        plan += f": {design['slots']} participant sessions for {design['items']} items; {ran} ran"
        if sequential:
            plan += " (a sequential survey: it stopped when its questions were decided)"
        elif ran < design["slots"]:
            plan += ", so the plan was not met"
    text = (
        f"In a {design['design'].upper()} survey (foil: {design['foil']}; {layout}; {plan}), "
        f"{ran} {who} gave {scores['answers']} answers"
    )
    if facts:
        text += f" ({facts['catch']} on catch trials, {facts['repeats']} on repeated trials)"
    rules = scores["exclusions"]
    applied = scores.get("excluded") or []
    listed = "; ".join(
        f"{r['rule']} ({r['participants']} participants, {r['answers']} answers)" for r in applied
    )
    text += f". Pre-declared exclusions, applied in this order: {listed or 'none recorded'}."
    n_catch = design.get("catch_per_slot")
    if n_catch and rules["min_catch_accuracy"] > (n_catch - 1) / n_catch:
        text += (
            f" With {n_catch} catch trials per participant, catch accuracy below "
            f"{rules['min_catch_accuracy']:g} means a single catch error."
        )
    clock = facts.get("clock")
    simulated = scores["participants_kind"] != "people"
    if clock == "server":
        text += (
            " Response times for the speed rules: the shorter of the page's own time and the "
            "server's clock."
        )
    elif clock == "mixed":
        text += (
            " Response times for the speed rules: the shorter of the page's own time and the "
            "server's clock where the server recorded one, else the page's own time."
        )
    elif clock == "none":
        text += (
            " Response times for the speed rules: the times the participants reported "
            "themselves; the server recorded none"
            + (" (it records none for simulated participants)" if simulated else "")
            + "."
        )
        if simulated and "fixed_rt" in facts:
            text += (
                f" Every simulated participant reported {facts['fixed_rt']:g} ms, so the speed "
                "rules were not tested by this run."
            )
    kept_people = scores["kept_participants"]
    text += f" That left {kept_people} participants"
    if "kept_catch" in facts:
        text += (
            f"; their {facts['kept_catch']} catch answers served only the catch rule, and the "
            f"other {scores['kept_answers']} answers were scored"
        )
    else:
        text += f" and {scores['kept_answers']} scored answers"
    if "kept_repeats" in facts:
        text += (
            f", {facts['kept_repeats']} of them on repeated trials, which count in alignment "
            "like any other answer"
        )
    if "answers_per_item_min" in scores:
        text += (
            f" (answers per item: minimum {scores['answers_per_item_min']}, median "
            f"{scores['answers_per_item_median']:g})"
        )
    text += "."
    if "retest" in facts:
        same, n = facts["retest"]
        text += (
            f" A repeated trial got the same answer as its first showing {same} of {n} times "
            f"({_pct(same / n)}%)."
        )
    return (
        text
        + (" Human alignment" if not simulated else " Their alignment")
        + " is the share of scored answers naming the IRI's target, with 95% CIs from a "
        "bootstrap that resamples participants, targets and items within targets."
    )


def _pct(share: float) -> str:
    """A share as a percent with one decimal."""
    return f"{100 * share:.1f}"


def _ci_text(value: float, lo: float, hi: float, scale: float = 100, signed: bool = False) -> str:
    """``value [lo, hi]`` in percent (or points) with one decimal and real minus signs."""
    if value != value:
        return "-"
    f = [_number(scale * v, 1) for v in (value, lo, hi)]
    if signed:
        f = [t if t.startswith(MINUS) or t == "0.0" else f"+{t}" for t in f]
    return f"{f[0]} [{f[1]}, {f[2]}]"


def _validity_table(validity: pd.DataFrame) -> pd.DataFrame:
    """The validity table with readable headers; a step count is a whole number."""
    out = validity.copy()
    out["pass_rate"] = [_pct(v) for v in out["pass_rate"]]
    step = out["median_first_valid_step"]
    out["median_first_valid_step"] = ["-" if v != v else f"{v:g}" for v in step]
    out["at_0_or_1"] = [_pct(v) for v in out["at_0_or_1"]]
    return out.rename(
        columns={
            "seed_type": "seed type",
            "pass_rate": "valid %",
            "median_distance": "median distance",
            "median_first_valid_step": "median first valid step",
            "at_0_or_1": "pixels at 0 or 1 %",
        }
    )


def _alignment_caption(label: str, judge_ci: str, kind: Any, spec: Any, loss: str) -> str:
    """The alignment figure's caption: what each bar and error bar is."""
    text = (
        f"Bars: alignment per model on its valid {loss} IRIs. Error bars: 95% CIs; for the "
        f"{label}, the bootstrap over participants, targets and items within targets; for "
        f"each judge, {judge_ci}. Dashed line: chance."
    )
    if kind in ("simulated", "mixed"):
        text += (
            f" The simulated participants decide with the judge {spec.bots.judge} (lapse "
            f"{spec.bots.lapse:g}), so their bars are not independent of that judge's. They "
            "also answered the survey's items, whose other target was drawn by the survey "
            "plan, while each judge used its own other target: the bars are not the same test."
        )
    return f'<p class="note">{html.escape(text)}</p>'


def _judges_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Judges' alignment with its CI in one column, and the paper's proxy beside it."""
    out = frame[["model", "loss", "judge", "iris", "of"]].copy()
    out = out.rename(columns={"iris": "valid IRIs", "of": "of IRIs"})
    out["alignment % [95% CI]"] = [
        _ci_text(a, lo, hi, scale=1)
        for a, lo, hi in zip(frame["alignment"], frame["lo"], frame["hi"], strict=True)
    ]
    if "seed_2afc" in frame:
        out["seed_2afc %"] = [_number(v, 1) for v in frame["seed_2afc"]]
    return out


def _proxy_note(judges: pd.DataFrame) -> str:
    """Say plainly when the paper's proxy is near 0: the IRIs are closer to their seeds."""
    if "seed_2afc" not in judges:
        return ""
    low = judges[judges["seed_2afc"] < 10]
    if low.empty:
        return ""
    models = ", ".join(dict.fromkeys(low["model"]))
    return (
        '<p class="note"><b>The paper\'s proxy is near 0</b> for '
        f"{html.escape(models)} (seed_2afc under 10%): the judges find these IRIs closer to "
        "their seeds than to their targets. Their other-target alignment then decides between "
        "two images the IRI resembles less than its seed; look at the grids before reading "
        "it as perceptual similarity to the target.</p>"
    )


def _participants_table(humans: pd.DataFrame) -> pd.DataFrame:
    """Participants' alignment in percent (one scale for the whole report)."""
    out = humans.drop(columns=["participants_kind"], errors="ignore")
    keep = [c for c in out.columns if c not in {"alignment", "ci_low", "ci_high", "chance"}]
    table = out[[c for c in keep if c not in {"p_chance", "p_chance_holm", "design_effect"}]]
    table = table.copy()
    table["alignment % [95% CI]"] = [
        _ci_text(a, lo, hi)
        for a, lo, hi in zip(out["alignment"], out["ci_low"], out["ci_high"], strict=True)
    ]
    if "chance" in out:
        table["chance %"] = [_number(100 * v, 1) for v in out["chance"]]
    for column, name in (
        ("p_chance", "p vs chance"),
        ("p_chance_holm", "p vs chance, Holm"),
        ("design_effect", "design effect"),
    ):
        if column in out:
            table[name] = [_number(v, 3) for v in out[column]]
    return table


def _comparisons_table(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Comparisons in percent and points, the difference named as a minus b."""
    out = comparisons[["column", "a", "b"]].copy()
    out["alignment a %"] = [_number(100 * v, 1) for v in comparisons["alignment_a"]]
    out["alignment b %"] = [_number(100 * v, 1) for v in comparisons["alignment_b"]]
    out["a \u2212 b, points [95% CI]"] = [
        _ci_text(d, lo, hi, signed=True)
        for d, lo, hi in zip(
            comparisons["difference"], comparisons["ci_low"], comparisons["ci_high"], strict=True
        )
    ]
    out["p"] = [_number(v, 3) for v in comparisons["p"]]
    out["p, Holm"] = [_number(v, 3) for v in comparisons["p_holm"]]
    return out


def _compared_on(validity: pd.DataFrame | None, loss: str) -> str:
    """Which models are compared on fewer IRIs because some failed the validity gate."""
    if validity is None:
        return ""
    rows = validity[validity["loss"] == loss].groupby("model", sort=False)[["valid", "iris"]].sum()
    short = rows[rows["valid"] < rows["iris"]]
    if short.empty:
        return ""
    cases = ", ".join(f"{m} on {r.valid} of {r.iris}" for m, r in short.iterrows())
    return (
        f" Only valid IRIs are compared: {cases} {loss} IRIs, so those models are scored on "
        "the targets whose IRIs passed the gate."
    )


def _mark_losses(by_loss: pd.DataFrame, every_loss: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Mark the per-loss cells that rest on few valid IRIs (†) or on a judge whose CI lies
    wholly below chance (‡, see the note under the per-judge table)."""
    out = by_loss.copy()
    used = {"few": False, "failing": False}
    for (model, loss), group in every_loss.groupby(["model", "loss"], sort=False):
        if model not in out.index or loss not in out.columns:
            continue
        cell = str(out.at[model, loss])
        if int(group["iris"].max()) < 0.5 * int(group["of"].max()):
            cell += " †"
            used["few"] = True
        if (group["hi"] < 50).any():
            cell += " ‡"
            used["failing"] = True
        out.at[model, loss] = cell
    notes = []
    if used["few"]:
        notes.append(
            "† fewer than half the IRIs passed the validity gate: the value describes the "
            "selected IRIs that passed, with a wide CI (per-judge table)"
        )
    if used["failing"]:
        notes.append('‡ a judge\'s CI lies wholly below chance here (see "A judge may be failing")')
    return out, ('<p class="note">' + html.escape("; ".join(notes)) + ".</p>") if notes else ""


def _versus_section(
    versus: pd.DataFrame,
    kind: Any,
    summary: dict[str, Any],
    spec: Any,
    label: str,
    n_conditions: int | None = None,
) -> str:
    """Judges against the participants, every column named, the participants' own
    reliability beside it, and every row flagged when the participants are bots."""
    out = versus[["judge", "items"]].copy()
    out["agrees with the majority %"] = [_number(100 * v, 1) for v in versus["majority"]]
    out["expected 2AFC score %"] = [_number(100 * v, 1) for v in versus["expected"]]
    out["random participant's score %"] = [_number(100 * v, 1) for v in versus["ceiling"]]
    out["score / random participant's"] = [_number(v, 3) for v in versus["normalized"]]
    out["Cohen's kappa"] = [_number(v, 3) for v in versus["kappa"]]
    out["judge's alignment on the survey items %"] = [
        _number(100 * v, 1) for v in versus["judge_alignment"]
    ]
    if "tau" in versus:
        out["Kendall's tau [95% CI]"] = [
            "-" if t != t else f"{_number(t, 3)} [{_number(lo, 3)}, {_number(hi, 3)}]"
            for t, lo, hi in zip(versus["tau"], versus["tau_low"], versus["tau_high"], strict=True)
        ]
    simulated = kind in ("simulated", "mixed")
    if simulated:
        out["note"] = [
            "decides the simulated participants"
            if j == spec.bots.judge
            else f"compared with bots that decide with {spec.bots.judge}"
            for j in versus["judge"]
        ]
    by = summary.get("by") or list(spec.scoring.by)
    text = (
        "Each judge answered the survey's own items (the same query and candidates). "
        "Agrees with the majority: share of items (ties dropped) where the judge chose as most "
        f"{label} did. Expected 2AFC score: the mean over items of the share of {label} who "
        "answered as the judge did (the BAPPS score). Random participant's score: the same "
        "score for one participant drawn at random (p\u00b2 + (1 \u2212 p)\u00b2 per item), "
        "the BAPPS reference a judge is divided by; above 1 the judge matches the majority "
        "more often than a single participant does. Cohen's kappa: the judge against the "
        "majority, chance-corrected. Judge's alignment on the survey items: the judge's share "
        "naming the target on these items, whose other target the survey plan drew; the "
        "judge's own alignment (Alignment section) used other targets of its own, so the two "
        "differ. Kendall's tau: the ranking of the "
        f"{n_conditions or 'the'} conditions ({', '.join(by)}) by the "
        "judge and by the participants, 95% CI from 2000 bootstrap resamples of those "
        "conditions."
    )
    if simulated:
        text += (
            f" The participants here are bots that decide with {spec.bots.judge}: no judge's "
            "agreement with them is evidence about perception; it measures how close each "
            f"judge is to {spec.bots.judge} with lapses."
        )
    reliability = ""
    ceiling, alpha = summary.get("noise_ceiling"), summary.get("krippendorff_alpha")
    if ceiling or alpha is not None:
        parts = []
        if ceiling:
            parts.append(
                f"split-half noise ceiling (Spearman-Brown corrected reliability of per-item "
                f"alignment) {ceiling['reliability']:.3f}, from {ceiling['low']:.3f} to "
                f"{ceiling['high']:.3f} over {ceiling['splits']} random splits of the "
                "participants"
            )
        if alpha is not None:
            parts.append(f"Krippendorff's alpha {alpha:.3f}")
        reliability = (
            f"<p>Reliability of the {html.escape(label)} themselves: "
            + html.escape("; ".join(parts))
            + "."
            + (
                " For bots this reflects their lapse rate, not people's consistency."
                if simulated
                else ""
            )
            + "</p>"
        )
    return _table(out) + f'<p class="note">{html.escape(text)}</p>' + reliability


def _judge_failures(by_model: pd.DataFrame, metric: str) -> str:
    """A note naming each judge x model x loss whose CI lies wholly below chance (2AFC: 50%).

    IRIs that keep their model's representation of the target are below chance only if they
    look more like the foil than like their target; a judge that says so may be failing on
    these images (the adversarial family, built to fool a perceptual metric, is the known
    case), so the note says that the judge, not the IRIs, may be the problem.
    """
    if not metric.endswith("2afc") or by_model.empty:
        return ""
    below = by_model[by_model["hi"] < 50]
    if below.empty:
        return ""
    cases = "; ".join(
        f"{r.judge} on {r.model} ({r.loss}): {r.alignment:.1f} [{r.lo:.1f}, {r.hi:.1f}]"
        for r in below.itertuples()
    )
    return (
        '<p class="note"><b>A judge may be failing.</b> Far below chance (the whole CI under '
        f"50%): {html.escape(cases)}. Two readings fit: the judge fails on these images, or "
        "the IRIs really are farther from their targets than from other targets, which is "
        "what an adversarial loss is built to do. Only a judgment closer to perception (look "
        "at the IRIs; a survey) tells them apart.</p>"
    )


def build_report(folder: Path, spec: Any) -> Path:
    """Write ``folder/report/index.html`` (and its figures) for the study in ``folder``.

    Args:
        folder: the study folder, as its steps wrote it.
        spec: the study's spec (a :class:`~percalign.study.spec.StudySpec`, read from
            ``folder/study.toml``).
    """
    from percalign.report.figures import alignment_bars, save, trust_bars
    from percalign.report.sequential import sequential_section

    folder = Path(folder)
    scores_dir, trust_dir = folder / "scores", folder / "trust"
    summary = json.loads((scores_dir / "summary.json").read_text())
    order = {m.name: i for i, m in enumerate(spec.models)}
    runs = [r for r in (folder / "runs").glob("*") if (r / "manifest.json").is_file()]
    manifests = {r.name: read_manifest(r) for r in runs}
    # only the current spec's runs: a model or loss removed from the spec leaves its run
    # folder behind, and it must not reappear in the methods or the grids
    manifests = dict(
        sorted(
            (
                (name, man)
                for name, man in manifests.items()
                if man["model"]["name"] in order and man["config"]["loss"] in spec.inversion.losses
            ),
            key=lambda kv: (order[kv[1]["model"]["name"]], kv[0]),
        )
    )
    survey = None
    if (folder / "survey" / "survey.json").is_file():
        survey = json.loads((folder / "survey" / "survey.json").read_text())
    kind = summary.get("participants_kind")
    human_label = {
        "simulated": "simulated participants (bots)",
        "people": "people",
        "mixed": "people + simulated",
    }.get(kind or "", "participants")
    with atomic_folder(folder / "report", overwrite=True) as tmp:
        figures = tmp / "figures"
        parts: list[str] = []
        headings: dict[str, str] = {}

        def section(key: str, body: str, title: str | None = None) -> None:
            heading = headings[key] = html.escape(title or SECTIONS[key])
            parts.append(f'<section id="{key}"><h2>{heading}</h2>{body}</section>')

        answers = _read(scores_dir / "answers.csv", low_memory=False)
        facts = _answer_facts(answers, spec) if answers is not None and len(answers) else {}
        methods = _methods(spec, manifests, summary, survey, facts)
        section(
            "methods",
            f'<p class="methods">{html.escape(methods)}</p>'
            + "<h3>The models, as their weights record them</h3>"
            + _table(_provenance(manifests, spec)),
        )
        from inspect import signature

        from percalign.store.grid import run_grid

        # the grid PNGs show the first targets only (run_grid's own limit)
        shown_max = int(signature(run_grid).parameters["max_targets"].default)
        grids = []
        for name, man in manifests.items():
            grid = folder / "runs" / name / "grid.png"
            if grid.is_file():
                n_t = len(man["targets"])
                valid = sum(bool(r.get("valid")) for r in man["iris"])
                title = (
                    f"{man['model']['name']} · {man['config']['loss']} "
                    f"({min(n_t, shown_max)} of {n_t} targets; {valid} of {len(man['iris'])} "
                    "IRIs valid)"
                )
                grids.append(
                    f"<div class=grid><h3>{html.escape(title)}</h3>"
                    f"{_img(grid, f'IRIs of {name}')}</div>"
                )
        section(
            "iris",
            '<p class="note">Each row: a target, then each seed and the IRI made from it. Each '
            f"panel shows the first {shown_max} targets of its run (or all, when fewer); invalid "
            "IRIs are shown too and are not marked: the title says how many passed the gate."
            "</p>" + f"<div class=grids>{''.join(grids)}</div>",
        )
        validity = _read(scores_dir / "validity.csv")
        banners = []
        for man in manifests.values():
            model, loss = man["model"]["name"], man["config"]["loss"]
            none_valid = not any(r.get("valid") for r in man["iris"])
            for line in gate_warnings(man):
                line = f"{loss} loss on {model}: " + line.removeprefix(f"{model}: ")
                if none_valid:
                    line += " No IRI passed, so there is no alignment to read for it."
                banners.append(f'<p class="banner">{html.escape(line)}</p>')
        section(
            "validity",
            '<p class="note">Share of IRIs whose representation distance is '
            "below the validity threshold (only valid IRIs go to the judges and the survey), per "
            "seed type; the median step at which they first passed while optimized, and the "
            "share of their pixel values at 0 or 1.</p>"
            + "".join(banners)
            + (
                _table(_validity_table(validity))
                if validity is not None
                else "<p>No validity data.</p>"
            ),
        )
        every_loss = _read(scores_dir / "judges_by_model.csv")
        humans = _read(scores_dir / "humans_by_model.csv")
        body = ""
        compared = comparison_loss(spec.inversion.losses)
        judge_ci = (
            "95% CI: percentile bootstrap over targets, then valid IRIs within targets; exact "
            "(Clopper-Pearson, over targets) when every IRI has the same outcome"
        )
        if every_loss is not None:
            judges = every_loss[every_loss["loss"] == compared]
            chance = 50.0 if spec.judges.metric.endswith("2afc") else 100.0 / spec.judges.k
            fig = alignment_bars(judges, humans, human_label, chance, spec.judges.metric)
            png = save(fig, figures, "alignment")
            body += (
                f'<p class="note">Models compared on their {html.escape(compared)} IRIs; '
                "judges count valid IRIs only.</p>"
                + _img(png, "alignment per model")
                + _alignment_caption(human_label, judge_ci, kind, spec, compared)
            )
            body += (
                f"<h3>Judges, {html.escape(compared)} loss ({html.escape(spec.judges.metric)} %, "
                f"{judge_ci})</h3>" + _table(_judges_table(judges), digits=1) + _proxy_note(judges)
            )
        if humans is not None:
            label = html.escape(human_label.capitalize())
            body += (
                f"<h3>{label}: share of answers naming the target (%, 95% CI from the "
                "participant x target x item bootstrap)</h3>"
                + _table(_participants_table(humans), digits=1)
                + '<p class="note">p vs chance: two-sided bootstrap p that alignment equals '
                "chance; Holm: corrected over the rows of this table (one family, "
                f"{len(humans)} tests). Design effect: the variance of the mean relative to "
                "that of as many independent answers (how much the shared participants and "
                "targets cost).</p>"
            )
        section("alignment", body or "<p>No alignment yet.</p>")
        confusion = _read(scores_dir / "confusion.csv", index_col=[0, 1])
        body = "<p>Not a matching survey (no matching answers).</p>"
        if confusion is not None:
            body = (
                f'<p class="note">Per model, {html.escape(human_label)}: rows are the targets '
                "whose IRIs were shown, columns the target each was matched to (answers; the "
                "diagonal is correct). Chance is 1/k of a row.</p>"
            )
            for model, matrix in confusion.groupby(level="model", sort=False):
                body += f"<h3>{html.escape(str(model))}</h3>"
                body += _table(matrix.droplevel("model"), index=True)
        section("matching", body)
        by_loss = _read(scores_dir / "judges_by_loss.csv", index_col=0)
        body = "<p>No judged runs yet.</p>"
        if by_loss is not None and every_loss is not None:
            held = sorted(
                {
                    f"{man['config'].get('adversary')} (the adversary) for {man['config']['loss']}"
                    for man in manifests.values()
                    if man["config"]["loss_spec"]["adversarial"]
                }
            )
            marked, marks = _mark_losses(by_loss, every_loss)
            body = (
                f'<p class="note">{html.escape(spec.judges.metric)} (%) per model and loss '
                "family: mean (SD: sample standard deviation, ddof 1, not a CI) over the judges "
                "named in brackets, valid "
                "IRIs only; a single judge's value stands alone. No difference between loss "
                "families is tested here; the per-judge table below gives each cell's CI."
                + (f" Held out: {html.escape('; '.join(held))}." if held else "")
                + "</p>"
                + _table(marked, index=True)
                + marks
                + f"<h3>Per judge (%, {judge_ci}; seed_2afc: the paper's proxy, the IRI closer to "
                "its target than to its seed, same IRIs)</h3>"
                + _table(_judges_table(every_loss), digits=1)
                + _judge_failures(every_loss, spec.judges.metric)
            )
        section("losses", body)
        body = ""
        t = _read(scores_dir / "humans_table.csv", index_col=0)
        if t is not None:
            body += (
                f"<h3>{html.escape(human_label.capitalize())}: alignment % [95% CI from the "
                "participant x target x item bootstrap]</h3>" + _table(t, index=True)
            )
        t = _read(scores_dir / "judges_table.csv", index_col=0)
        if t is not None:
            body += (
                f"<h3>Judges: {spec.judges.metric} (%), mean (SD: sample standard deviation, not a "
                "CI) over judges "
                "(one judge: its value)</h3>" + _table(t, index=True)
            )
        section("table", body)
        comparisons = _read(scores_dir / "comparisons.csv")
        section(
            "comparisons",
            _table(_comparisons_table(comparisons), digits=1) + '<p class="note">Differences in '
            f"alignment (percentage points, a minus b) between the levels of each condition "
            f"named in <i>column</i> ({html.escape(human_label)}), 95% CI and two-sided p "
            "from one bootstrap that resamples participants (shared by the models), targets "
            "(shared where the models share them) and items within targets; Holm corrects "
            f"p over every row of this table (one family, {len(comparisons)} tests)."
            + html.escape(_compared_on(validity, compared))
            + "</p>"
            if comparisons is not None
            else "<p>Needs answers on two or more models.</p>",
        )
        looks = sequential_section(folder / "survey", human_label, _table)
        if looks is not None:
            section("sequential", looks)
        versus = _read(scores_dir / "judges_vs_humans.csv")
        section(
            "judges",
            _versus_section(
                versus,
                kind,
                summary,
                spec,
                human_label,
                len(by_group)
                if (by_group := _read(scores_dir / "humans.csv")) is not None
                else None,
            )
            if versus is not None
            else "<p>No answers yet: run the survey, then `percalign study run` again.</p>",
            title=f"Judges against {human_label}",
        )
        from percalign.report.trust import trust_section

        body = trust_section(
            trust_dir,
            _table,
            lambda summary: _img(save(trust_bars(summary), figures, "trust"), "trust accuracy"),
        )
        section("trust", body)
        exclusions = _read(scores_dir / "exclusions.csv")
        section(
            "exclusions", _table(exclusions) if exclusions is not None else "<p>No answers yet.</p>"
        )
        banner = ""
        if kind in ("simulated", "mixed"):
            banner = (
                '<p class="banner"><b>Simulated participants.</b> The survey answers in '
                "this report come from bots that take the survey through its web service, "
                "not from people.</p>"
            )
        # the sections' own headings: "Judges against people" only when they were people
        nav = "".join(f'<a href="#{k}">{v}</a>' for k, v in headings.items())
        title = html.escape(spec.study.name)
        page = (
            f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{title}</title>"
            f"<style>{CSS}</style></head><body><h1>{title}</h1>"
            f'<p class="sub">{html.escape(spec.study.description)}</p>{banner}'
            f"<nav>{nav}</nav>{''.join(parts)}</body></html>"
        )
        (tmp / "index.html").write_text(page)
    return folder / "report" / "index.html"
