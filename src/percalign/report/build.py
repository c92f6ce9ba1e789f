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

from percalign.store.runs import atomic_folder, gate_warnings, read_manifest
from percalign.study.scores import comparison_loss
from percalign.study.spec import load_spec

__all__ = ["SECTIONS", "build_report"]

#: the id and title of every section, in order (tests check that each is present)
SECTIONS = {
    "methods": "Methods",
    "iris": "IRIs: target | seed | IRI",
    "validity": "Validity of the IRIs",
    "alignment": "Alignment",
    "matching": "Matching: which target each target's IRIs were matched to",
    "losses": "The loss decides: alignment per loss family",
    "table": "Architecture x training",
    "comparisons": "Model comparisons",
    "judges": "Judges against people",
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


def _table(frame: pd.DataFrame, index: bool = False, digits: int = 3) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            text = "-" if v != v else f"{v:.{digits}g}" if abs(v) < 1e-3 else f"{v:.{digits}f}"
            return f"<td class=n>{text}</td>"
        if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
            return f"<td class=n>{v}</td>"
        return f"<td>{html.escape(str(v))}</td>"

    head = ([frame.index.name or ""] if index else []) + [str(c) for c in frame.columns]
    rows = []
    for idx, row in frame.iterrows():
        cells = ([fmt(idx)] if index else []) + [fmt(v) for v in row.tolist()]
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


def _preset_text(cfg: dict[str, Any], name: str | None) -> str:
    """The preset the spec named and each of its settings the run changed, as recorded.

    A manifest records ``preset`` only when every preset setting is kept; a spec that names
    a preset and changes its step count ran that preset with one setting changed."""
    from percalign.inversion.config import PRESETS

    if name not in PRESETS:
        return f"the '{cfg['preset']}' preset" if cfg.get("preset") else "no preset"
    changed = [
        f"{key} changed to {cfg[key]}"
        for key, value in PRESETS[name].settings.items()
        if key in cfg and cfg[key] is not None and cfg[key] != value
    ]
    return f"the '{name}' preset" + (f", {', '.join(changed)}" if changed else "")


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
        f"{cfg['schedule']} schedule; {_preset_text(cfg, preset)}) to minimize the relative "
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
        text.append(_survey_text(spec, design, scores, who, answers or {}))
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
    server = pd.to_numeric(answers.get("server_rt_ms"), errors="coerce")
    timed = int(server.notna().sum()) if server is not None else 0
    facts["clock"] = "none" if timed == 0 else "server" if timed == len(answers) else "mixed"
    own = pd.to_numeric(answers.get("rt_ms"), errors="coerce")
    if own is not None and own.notna().any() and own.nunique() == 1:
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
    spec: Any, design: dict[str, Any], scores: dict[str, Any], who: str, facts: dict[str, Any]
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
        plan += (
            f": {design['slots']} participant sessions for {design['items']} items; "
            f"{ran} ran" + (", so the plan was not met" if ran < design["slots"] else "")
        )
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
        f"50%): {html.escape(cases)}. Look at the IRIs: when they show their target, the "
        "judge, not the IRIs, is what fails here.</p>"
    )


def build_report(folder: Path) -> Path:
    """Write ``folder/report/index.html`` (and its figures) for the study in ``folder``."""
    from percalign.report.figures import alignment_bars, save, trust_bars

    folder = Path(folder)
    spec = load_spec(folder / "study.toml")
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
    }.get(kind or "", "people")
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
        grids = []
        for name, man in manifests.items():
            grid = folder / "runs" / name / "grid.png"
            if grid.is_file():
                title = f"{man['model']['name']} · {man['config']['loss']}"
                grids.append(
                    f"<div class=grid><h3>{html.escape(title)}</h3>"
                    f"{_img(grid, f'IRIs of {name}')}</div>"
                )
        section(
            "iris",
            '<p class="note">Each row: a target, then each seed and the IRI made '
            "from it.</p>" + f"<div class=grids>{''.join(grids)}</div>",
        )
        validity = _read(scores_dir / "validity.csv")
        section(
            "validity",
            '<p class="note">Share of IRIs whose representation distance is '
            "below the validity threshold (only valid IRIs go to people), per seed type; the "
            "median step at which they first passed while optimized, and the share of their "
            "pixel values at 0 or 1.</p>"
            + "".join(
                f'<p class="banner">{html.escape(line)}</p>'
                for man in manifests.values()
                for line in gate_warnings(man)
            )
            + (_table(validity) if validity is not None else "<p>No validity data.</p>"),
        )
        every_loss = _read(scores_dir / "judges_by_model.csv")
        humans = _read(scores_dir / "humans_by_model.csv")
        body = ""
        compared = comparison_loss(spec)
        if every_loss is not None:
            judges = every_loss[every_loss["loss"] == compared]
            chance = 50.0 if spec.judges.metric.endswith("2afc") else 100.0 / spec.judges.k
            fig = alignment_bars(judges, humans, human_label, chance, spec.judges.metric)
            png = save(fig, figures, "alignment")
            body += (
                f'<p class="note">Models compared on their {html.escape(compared)} IRIs; '
                "judges count valid IRIs only.</p>" + _img(png, "alignment per model")
            )
            body += (
                f"<h3>Judges, {html.escape(compared)} loss (%, 95% bootstrap CI over valid IRIs;"
                " iris of all)</h3>" + _table(judges, digits=1)
            )
        if humans is not None:
            label = html.escape(human_label.capitalize())
            body += f"<h3>{label} (share of answers naming the target)</h3>"
            body += _table(humans.drop(columns=["participants_kind"], errors="ignore"))
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
            body = (
                f'<p class="note">{html.escape(spec.judges.metric)} (%) per model and loss '
                "family: mean (SD: sample standard deviation, ddof 1, not a CI) over the judges "
                "named in brackets, valid "
                "IRIs only; a single judge's value stands alone."
                + (f" Held out: {html.escape('; '.join(held))}." if held else "")
                + "</p>"
                + _table(by_loss, index=True)
                + "<h3>Per judge (%, 95% bootstrap CI over targets, then valid IRIs; "
                "seed_2afc: the paper's proxy, the IRI closer to its target than to its "
                "seed)</h3>"
                + _table(every_loss, digits=1)
                + _judge_failures(every_loss, spec.judges.metric)
            )
        section("losses", body)
        body = ""
        t = _read(scores_dir / "humans_table.csv", index_col=0)
        if t is not None:
            body += f"<h3>{html.escape(human_label.capitalize())}</h3>" + _table(t, index=True)
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
            _table(comparisons) + '<p class="note">Differences in '
            f"alignment between the levels of each condition named in <i>column</i> "
            f"({html.escape(human_label)}), 95% CI and two-sided p "
            "from one bootstrap that resamples participants (shared by the models), targets "
            "(shared where the models share them) and items within targets; p_holm corrects "
            "p over every row of this table.</p>"
            if comparisons is not None
            else "<p>Needs answers on two or more models.</p>",
        )
        versus = _read(scores_dir / "judges_vs_humans.csv")
        section(
            "judges",
            _table(versus)
            if versus is not None
            else "<p>No answers yet: run the survey, then `percalign study run` again.</p>",
            title=None if kind in (None, "people") else f"Judges against {human_label}",
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
