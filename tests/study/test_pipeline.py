"""A tiny study end to end: every step, skip when done, re-run what a change touches,
kill -9 at several points and resume to the same outputs, and the report."""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from percalign.cli import main
from percalign.errors import ConfigError
from percalign.report import SECTIONS
from percalign.study.pipeline import LEDGER, run_study
from percalign.study.spec import load_spec

SPEC = (Path(__file__).parent / "tiny_study.toml").read_text()

ALL_STEPS = {
    "invert:tiny-cnn__regularizer-free",
    "invert:tiny-vgg__regularizer-free",
    "judge:tiny-cnn__regularizer-free",
    "judge:tiny-vgg__regularizer-free",
    "survey",
    "bots",
    "score",
    "trust",
    "report",
}


def _spec(folder: Path, text: str = SPEC) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "study.toml"
    path.write_text(text)
    return path


def digest(folder: Path) -> dict[str, str]:
    """What a study produced, without the clocks: image and table contents, and answers."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder).as_posix()
        if not path.is_file() or rel.startswith(("report/", "survey/", ".")) or "/." in rel:
            continue
        if (
            path.suffix == ".png"
            or rel.endswith(("judgments.csv", "per_input.csv"))
            or (rel.startswith("scores/") and path.suffix == ".csv" and "answers" not in rel)
        ):
            found[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    answers = pd.read_csv(folder / "scores" / "answers.csv")
    rows = answers[["platform_pid", "trial", "item", "choice", "correct"]]
    found["answers"] = hashlib.sha256(
        rows.sort_values(["platform_pid", "trial"]).to_csv(index=False).encode()
    ).hexdigest()
    return found


@pytest.fixture(scope="module")
def done(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("study") / "s"
    spec = load_spec(_spec(folder))
    pipeline = run_study(spec, folder, log=lambda _m: None)
    assert set(pipeline.executed) == ALL_STEPS
    return folder


def test_every_step_ran_and_was_recorded(done):
    ledger = json.loads((done / LEDGER).read_text())["steps"]
    assert set(ledger) == ALL_STEPS
    answers = pd.read_csv(done / "scores" / "answers.csv")
    assert len(answers) == 16 and set(answers["platform"]) == {"bot"}
    assert not answers.duplicated(["participant", "trial"]).any()
    humans = pd.read_csv(done / "scores" / "humans.csv")
    assert set(humans["participants_kind"]) == {"simulated"}
    assert (done / "trust" / "summary.csv").is_file()


def test_report_has_every_section_and_no_broken_image(done):
    page = (done / "report" / "index.html").read_text()
    for key in SECTIONS:
        shown = f'<section id="{key}">' in page
        assert shown == (key != "sequential")  # a fixed plan has no looks to report
    assert "tiny &lt;b&gt;study&lt;/b&gt;" in page  # spec strings are escaped
    assert "Simulated participants." in page
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) >= 4  # two grids, the alignment and trust figures
    for src in sources:
        assert src.startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))).verify()
    for stem in ("alignment", "trust"):
        assert (done / "report" / "figures" / f"{stem}.pdf").stat().st_size > 1000
    methods = re.search(r'<p class="methods">(.*?)</p>', page, re.S).group(1)
    assert "tiny-cnn" in methods and "3 steps of adam" in methods and "simulated" in methods
    assert "Human alignment" not in methods  # bots' answers are never called human
    # answers per item as they happened, not as planned ("at least 2" was the plan)
    answers = pd.read_csv(done / "scores" / "answers.csv")
    per_item = answers[~answers["is_catch"].astype(bool)].groupby("item").size()
    summary = json.loads((done / "scores" / "summary.json").read_text())
    assert sum(r["participants"] for r in summary["excluded"]) == 0  # per_item is the kept
    assert f"minimum {per_item.min()}, median {per_item.median():g})" in methods
    # (the rule names, listed in the methods, may say "at least" of their own thresholds)
    unruled = methods
    for rule in summary["excluded"]:
        assert html.escape(rule["rule"]) in methods  # every rule applied is named
        unruled = unruled.replace(html.escape(rule["rule"]), "")
    assert "at least" not in unruled
    # the navigation names the sections as they are headed: bots are not people
    nav = re.search(r"<nav>(.*?)</nav>", page, re.S).group(1)
    assert "Judges against simulated participants" in nav and "people" not in nav


def test_a_rerun_does_nothing_and_a_change_reruns_only_what_depends_on_it(done, tmp_path):
    folder = tmp_path / "s"
    import shutil

    shutil.copytree(done, folder)
    again = run_study(load_spec(folder / "study.toml"), folder, log=lambda _m: None)
    assert again.executed == []
    changed = SPEC.replace('names = ["pixel"]', 'names = ["pixel", "ssim"]')
    _spec(folder, changed)
    again = run_study(load_spec(folder / "study.toml"), folder, log=lambda _m: None)
    # the judges' names also feed the trust rule (trust.judges defaults to them)
    assert set(again.executed) == {
        "judge:tiny-cnn__regularizer-free",
        "judge:tiny-vgg__regularizer-free",
        "score",
        "trust",
        "report",
    }
    judged = pd.read_csv(folder / "runs" / "tiny-cnn__regularizer-free" / "judgments.csv")
    assert set(judged["judge"]) == {"pixel", "ssim"}
    # the bots decide with ssim: its agreement with them is flagged, pixel's is not
    versus = pd.read_csv(folder / "scores" / "judges_vs_humans.csv").set_index("judge")
    assert "not evidence of agreement" in versus.loc["ssim", "note"]
    assert pd.isna(versus.loc["pixel", "note"])
    # new IRIs would orphan the answers already collected: refused, nothing changed
    _spec(folder, changed.replace("steps = 3\n\n[judges]", "steps = 4\n\n[judges]"))
    with pytest.raises(ConfigError, match="already holds 16 answers"):
        run_study(load_spec(folder / "study.toml"), folder, log=lambda _m: None)
    # so would questions declared after the first answer: they are part of the plan
    _spec(folder, changed + '\n[scoring]\ncompare = "model"\nbudget = 10\nlook_every = 2\n')
    with pytest.raises(ConfigError, match="already holds 16 answers"):
        run_study(load_spec(folder / "study.toml"), folder, log=lambda _m: None)
    assert len(pd.read_csv(folder / "scores" / "answers.csv")) == 16


def test_a_study_keyed_by_the_earlier_version_is_rekeyed_once_keeping_its_answers(done, tmp_path):
    """``old_format_ledger.json`` is the ledger the hand-written keys wrote for this spec (the
    code before keys were derived from declarations): its steps are re-keyed, not re-run, and
    the survey keeps its answers (re-building it would be refused)."""
    import shutil

    folder = tmp_path / "s"
    shutil.copytree(done, folder)
    old = (Path(__file__).parent / "old_format_ledger.json").read_text()
    (folder / LEDGER).write_text(old)
    lines: list[str] = []
    again = run_study(load_spec(folder / "study.toml"), folder, log=lines.append)
    # the report's key holds the code version, the score's the answers (these were given by
    # other simulated participants than the old ledger's): those two may run again
    assert set(again.executed) <= {"score", "report"}
    rekeyed = {
        line.removeprefix("Step ").split(": recorded")[0] for line in lines if "re-keyed" in line
    }
    assert ALL_STEPS - {"score", "report"} <= rekeyed
    ledger = json.loads((folder / LEDGER).read_text())["steps"]
    assert all(entry["key_format"] == 2 for entry in ledger.values())
    assert len(pd.read_csv(folder / "scores" / "answers.csv")) == 16
    lines.clear()
    assert run_study(load_spec(folder / "study.toml"), folder, log=lines.append).executed == []
    assert not [line for line in lines if "re-keyed" in line]  # once


def _ledger_steps(folder: Path) -> int:
    try:
        return len(json.loads((folder / LEDGER).read_text())["steps"])
    except (OSError, ValueError, KeyError):
        return 0


TEMPORARY = re.compile(r"^\..+\.(tmp|old)(-[0-9a-f]{8})?$")


def _assert_nothing_looks_finished_that_is_not(folder: Path) -> None:
    """What a killed study leaves: temporaries (hidden, named as such) and finished parts.

    Every hidden entry is a temporary or trash entry (or the study's ``.lock``, which holds
    no output); the ledger parses; every run folder
    under its final name has its whole manifest and one IRI image per manifest record.
    """
    for path in folder.rglob(".*"):
        if path != folder / ".lock":
            assert TEMPORARY.match(path.name), f"{path} is hidden but not a temporary"
    if (folder / LEDGER).exists():
        json.loads((folder / LEDGER).read_text())
    for run in sorted((folder / "runs").glob("[!.]*")) if (folder / "runs").is_dir() else []:
        manifest = json.loads((run / "manifest.json").read_text())
        assert len(list((run / "iris").glob("*.png"))) == len(manifest["iris"]), run


def test_the_killed_study_check_catches_half_written_parts(tmp_path):
    folder = tmp_path / "s"
    (folder / "runs" / ".m__l.tmp-0123abcd" / "iris").mkdir(parents=True)
    _assert_nothing_looks_finished_that_is_not(folder)  # a temporary may be left
    (folder / "runs" / "m__l" / "iris").mkdir(parents=True)
    with pytest.raises(FileNotFoundError):  # a run folder without its manifest
        _assert_nothing_looks_finished_that_is_not(folder)
    (folder / "runs" / "m__l" / "manifest.json").write_text('{"iris": [{}]}')
    with pytest.raises(AssertionError, match="m__l"):  # a manifest without its images
        _assert_nothing_looks_finished_that_is_not(folder)
    (folder / "runs" / "m__l" / "iris" / "0.png").write_bytes(b"")
    _assert_nothing_looks_finished_that_is_not(folder)
    (folder / LEDGER).write_text('{"steps": {"invert"')
    with pytest.raises(json.JSONDecodeError):  # a half-written ledger
        _assert_nothing_looks_finished_that_is_not(folder)
    (folder / LEDGER).unlink()
    (folder / ".pipeline.json.partial").write_text("")
    with pytest.raises(AssertionError, match="not a temporary"):
        _assert_nothing_looks_finished_that_is_not(folder)


@pytest.mark.slow
def test_kill_at_several_points_and_resume_to_the_same_outputs(done, tmp_path):
    folder = tmp_path / "k"
    spec = _spec(folder)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "percalign", "study", "run", str(spec)]
    killed = 0
    for after in (1, 4, 6):  # during the inversions, the judging, and the bots or scoring
        proc = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 240
        while _ledger_steps(folder) < after and proc.poll() is None:
            assert time.monotonic() < deadline, "the study made no progress"
            time.sleep(0.05)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        _assert_nothing_looks_finished_that_is_not(folder)
    assert killed == 3, "each run should have been killed mid-way"
    assert main(["study", "run", str(spec)]) == 0
    assert set(folder.rglob(".*")) == {folder / ".lock"}, "the resumed run swept every temporary"
    assert digest(folder) == digest(done)
    ledger = json.loads((folder / LEDGER).read_text())["steps"]
    assert set(ledger) == ALL_STEPS


def test_score_study_gives_the_pipelines_cis_on_the_same_answers(tmp_path, capsys):
    # the CLI and the score step key participants alike (platform:pid), so the crossed
    # bootstrap resamples the same participants in the same order; with session ids (random
    # per session) the CLI's CIs differed from the step's. A non-default seed and non-default
    # exclusions: the CLI must read them from the study, not use its own defaults.
    folder = tmp_path / "s"
    text = SPEC.replace("[bots]\nn = 2", "[bots]\nn = 8\nlapse = 0.5")
    text = text.replace("[trust]\nenabled = true", "[trust]\nenabled = false")
    text = text.replace("seed = 0", "seed = 7")
    rules = {"min_catch_accuracy": 0.5, "min_rt_ms": 40.0, "max_fast_share": 0.6}
    text += "\n[exclusions]\n" + "".join(f"{k} = {v}\n" for k, v in rules.items())
    run_study(load_spec(_spec(folder, text)), folder, log=lambda _m: None)
    out = tmp_path / "scores"
    assert main(["score", str(folder / "survey"), "--by", "model", "--out", str(out)]) == 0
    cli = pd.read_csv(out / "humans.csv")
    step = pd.read_csv(folder / "scores" / "humans.csv")
    # one layout: the command writes the score step's files about the answers, alike
    written = {p.name for p in out.iterdir()}
    assert {"answers.csv", "exclusions.csv", "humans.csv", "summary.json"} <= written
    assert written <= {p.name for p in (folder / "scores").iterdir()}
    for name in ("answers.csv", "exclusions.csv", "humans_by_model.csv", "comparisons.csv"):
        pd.testing.assert_frame_equal(
            pd.read_csv(out / name), pd.read_csv(folder / "scores" / name)
        )
    columns = ["model", "alignment", "ci_low", "ci_high", "design_effect", "p_chance"]
    pd.testing.assert_frame_equal(cli[columns], step[columns])
    assert cli["ci_low"].lt(cli["ci_high"]).any()  # a CI that resampling can move
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seed"] == 7 and summary["overrides"] == {}
    assert {k: summary["exclusions"][k] for k in rules} == rules
    # a flag that overrides the declared analysis is recorded, and changes the CIs
    again = tmp_path / "again"
    assert main(["score", str(folder), "--by", "model", "--seed", "3", "--out", str(again)]) == 0
    summary = json.loads((again / "summary.json").read_text())
    assert summary["overrides"] == {"seed": {"declared": 7, "used": 3}}
    moved = pd.read_csv(again / "humans.csv")
    assert not moved["ci_low"].equals(cli["ci_low"]) or not moved["ci_high"].equals(cli["ci_high"])
    assert "Overrides the study's declared seed: 7 -> 3" in capsys.readouterr().out
    # the bots decide with ssim (the default): never recommended on their answers
    judged = tmp_path / "judged"
    assert main(["score", str(folder), "--judges", "pixel,ssim", "--out", str(judged)]) == 0
    printed = capsys.readouterr().out
    assert "ssim decides the simulated participants" in printed
    assert "Recommended stand-in for people on these stimuli: ssim" not in printed


def test_single_judge_cells_show_the_value_alone(done):
    table = pd.read_csv(done / "scores" / "judges_table.csv", index_col=0)
    cells = table.to_numpy().ravel()
    assert all(c.endswith("(1 judge)") and "+-" not in c for c in cells if isinstance(c, str))
    # one source per number: the paper-style table shows each model's value of the by-loss
    # table (tiny-cnn is cnn x random, tiny-vgg vgg x random)
    by_loss = pd.read_csv(done / "scores" / "judges_by_loss.csv", index_col=0)
    for model, arch in (("tiny-cnn", "cnn"), ("tiny-vgg", "vgg")):
        shown = str(table.loc[arch, "random"]).split(" ")[0]
        assert shown == str(by_loss.loc[model, "regularizer-free"]).split(" ")[0]


def test_adding_a_step_is_one_declaration(done, tmp_path):
    import shutil

    from percalign.study.graph import Step
    from percalign.study.pipeline import Pipeline
    from percalign.study.steps import STEPS

    folder = tmp_path / "s"
    shutil.copytree(done, folder)

    def count(inputs, todo):
        def work(part):
            rows = pd.read_csv(inputs.folder / "runs" / part / "judgments.csv")
            (inputs.folder / "runs" / part / "count.txt").write_text(str(len(rows)))

        inputs.run_each(todo, work)

    extra = Step(
        "count",
        reads=("judge",),
        settings=("models.name", "inversion.losses"),
        output=lambda i, p: i.folder / "runs" / p / "count.txt",
        run=count,
        parts=lambda i: list(i.keys("judge")),
    )
    pipeline = Pipeline(load_spec(folder / "study.toml"), folder, log=lambda _m: None)
    pipeline.steps = (*STEPS, extra)
    pipeline.run()
    assert sorted(pipeline.executed) == [
        "count:tiny-cnn__regularizer-free",
        "count:tiny-vgg__regularizer-free",
    ]
    assert (folder / "runs" / "tiny-cnn__regularizer-free" / "count.txt").read_text() == "8"


def test_a_clustering_survey_is_scored_by_matching_and_reported(tmp_path):
    text = SPEC.replace("[survey]\n", '[survey]\ndesign = "clustering"\nk = 2\n')
    text = text.replace("[trust]\nenabled = true", "[trust]\nenabled = false")
    folder = tmp_path / "s"
    run_study(load_spec(_spec(folder, text)), folder, log=lambda _m: None)
    answers = pd.read_csv(folder / "scores" / "answers.csv")
    per_iri = pd.read_csv(folder / "scores" / "matching.csv")
    assert (per_iri["chance"] == 0.5).all() and set(per_iri["model"]) == {"tiny-cnn", "tiny-vgg"}
    confusion = pd.read_csv(folder / "scores" / "confusion.csv", index_col=[0, 1])
    trials = answers[~answers["is_catch"].astype(bool)]
    assert confusion.to_numpy().sum() == len(trials)  # every matched IRI counted once
    diagonal = sum(confusion.loc[(m, t), t] for m, t in confusion.index if t in confusion.columns)
    assert diagonal == trials["correct"].sum()
    page = (folder / "report" / "index.html").read_text()
    section = page.split('<section id="matching">')[1].split("</section>")[0]
    assert "tiny-cnn" in section and "<table>" in section


def test_the_methods_name_the_settings_of_the_papers_loop():
    from percalign.inversion import InversionConfig
    from percalign.report.build import _loop_text, _param_text

    paper = InversionConfig.from_preset("paper").to_dict()
    text = _param_text(paper) + _loop_text(paper)
    assert "starting from the raw noise" in text
    assert "fake ReLU" in text and "shared by all targets" in text
    default = InversionConfig().to_dict()
    assert _loop_text(default) == "" and "raw noise" not in _param_text(default)
