import json
import shutil

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from percalign.cli import main
from percalign.store.db import Base, ItemRow, SlotTrialRow, StimulusRow, connect, migrate
from percalign.store.study import study_url


def test_migration_from_an_empty_database_matches_the_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate(url)
    engine = connect(url)
    with engine.connect() as conn:
        diffs = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diffs == []
    migrate(url)  # idempotent


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("runs")
    folders = []
    for model in ("tiny-cnn", "tiny-vgg"):
        out = base / model
        assert (
            main(
                [
                    "invert",
                    "--model",
                    model,
                    "--images",
                    "digits",
                    "--n-images",
                    "4",
                    "--seeds",
                    "super-noise,image",
                    "--steps",
                    "3",
                    "--out",
                    str(out),
                ]
            )
            == 0
        )
        folders.append(out)
    return folders


def test_survey_build_acceptance_command(tmp_path, runs, capsys):
    study = tmp_path / "STUDY"
    code = main(
        [
            "survey",
            "build",
            str(study),
            "--runs",
            *map(str, runs),
            "--design",
            "2afc",
            "--trials-per-participant",
            "40",
            "--judgments-per-item",
            "5",
            "--include-invalid",
        ]
    )
    assert code == 0
    printed = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    assert "16 items" in printed
    # 16 items, 4 catch and 2 repeats: the build says so instead of "slots of 40 trials"
    assert "slots of 22 trials" in printed and "slots of 40" not in printed
    assert "Asked for 40 trials per participant, but a slot holds 22" in printed
    info = json.loads((study / "survey.json").read_text())
    assert info["design"]["judgments_per_item"] == 5
    engine = connect(study_url(study))
    with Session(engine) as s:
        stimuli = s.scalars(select(StimulusRow)).all()
        # 16 IRIs + 16 seeds (8 of them natural images that are also targets) + 4 targets
        assert len({st.id for st in stimuli}) == len(stimuli)
        assert all((study / st.path).is_file() for st in stimuli)
        iri = next(st for st in stimuli if st.kind == "iri")
        assert {
            "model",
            "weights_sha256",
            "layer",
            "loss",
            "optimizer",
            "seed_type",
            "steps",
            "distance",
            "valid",
            "code",
        } <= set(iri.provenance)
        assert s.scalar(select(func.count()).select_from(ItemRow)) >= 16
        trials = s.scalars(select(SlotTrialRow)).all()
        assert len({t.slot for t in trials}) == info["design"]["slots"]
    engine.dispose()
    assert main(["survey", "build", str(study), "--runs", str(runs[0])]) == 1
    assert "--overwrite" in capsys.readouterr().err


def _run_with_validity(tmp_path, run, flags):
    """A copy of ``run`` whose IRIs carry the given validity flags (cycled)."""
    copy = tmp_path / f"run-{''.join('v' if f else 'x' for f in flags)}"
    shutil.copytree(run, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    for i, record in enumerate(manifest["iris"]):
        record["valid"] = flags[i % len(flags)]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    return copy, len(manifest["iris"])


def test_invalid_iris_are_left_out_by_default(tmp_path, runs, capsys):
    mixed, n = _run_with_validity(tmp_path, runs[0], [False, True])
    assert main(["survey", "build", str(tmp_path / "S"), "--runs", str(mixed)]) == 0
    out = capsys.readouterr().out
    assert f"({n // 2} invalid IRIs left out)" in out
    design = json.loads((tmp_path / "S" / "survey.json").read_text())["design"]
    assert design["excluded_invalid"] == n // 2
    args = ["survey", "build", str(tmp_path / "all"), "--runs", str(mixed), "--include-invalid"]
    assert main(args) == 0
    assert "invalid IRIs left out" not in capsys.readouterr().out

    valid, _ = _run_with_validity(tmp_path, runs[0], [True])
    assert main(["survey", "build", str(tmp_path / "V"), "--runs", str(valid)]) == 0
    assert "left out" not in capsys.readouterr().out  # nothing was left out: nothing is said

    invalid, _ = _run_with_validity(tmp_path, runs[0], [False])
    assert main(["survey", "build", str(tmp_path / "X"), "--runs", str(invalid)]) == 1
    assert "every one failed the validity gate" in capsys.readouterr().err
    assert not (tmp_path / "X").exists()


def test_a_built_study_is_private_warns_of_unset_consent_and_practises_on_two_images(
    tmp_path, runs, capsys
):
    from percalign.store.study import read_meta

    study = tmp_path / "S"
    args = ["survey", "build", str(study), "--runs", str(runs[0]), "--include-invalid"]
    assert main(args) == 0
    assert "[RESEARCHER], [CONTACT], [PAY], [WITHDRAWAL]" in capsys.readouterr().out
    assert (study / "percalign.db").stat().st_mode & 0o777 == 0o600
    practice = read_meta(study_url(study))["practice"]
    assert len(practice) == 2 and practice[0]["query"] != practice[1]["query"]
    texts = tmp_path / "texts.toml"
    texts.write_text(
        'consent = "Run by Ann Lee (ann@example.org); pays 1 GBP; you may stop at any time."\n'
    )
    assert main([*args, "--overwrite", "--texts", str(texts)]) == 0
    assert "placeholders" not in capsys.readouterr().out


def test_a_copy_of_an_answered_survey_has_its_trials_and_texts_but_no_answers(
    make_study, tmp_path, capsys
):
    import asyncio

    import httpx

    from percalign.cli.survey import _warnings
    from percalign.store.study import bot_token, read_meta
    from percalign.survey.app import create_app

    study = make_study("--design", "clustering", "--k", "3", "--catch-rate", "0.2")
    app = create_app(study, "tok")

    async def bot_starts():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            body = {"platform": "bot", "pid": "b0", "bot_token": bot_token(study)}
            assert (await c.post("/api/sessions", json=body)).status_code == 200

    asyncio.run(bot_starts())
    url = study_url(study)
    warned = _warnings(study, url)
    assert len(warned) == 2 and "[RESEARCHER]" in warned[0] and "1 simulated" in warned[1]
    texts = tmp_path / "texts.toml"
    texts.write_text('consent = "Run by Ann (ann@example.org); pays 2 GBP; stop any time."\n')
    copy = tmp_path / "people"
    assert main(["survey", "copy", str(study), str(copy), "--texts", str(texts)]) == 0
    assert "Built" in capsys.readouterr().out
    original, fresh = (json.loads((f / "plan.json").read_text()) for f in (study, copy))
    assert fresh["slots"] == original["slots"] and fresh["items"] == original["items"]
    assert fresh["settings"] == original["settings"]
    meta = read_meta(study_url(copy))
    assert meta["texts"]["consent"].startswith("Run by Ann")
    assert meta["texts"]["instructions"] == read_meta(url)["texts"]["instructions"]
    assert meta["attention"] == read_meta(url)["attention"]
    assert _warnings(copy, study_url(copy)) == []  # no placeholders, no simulated answers
    assert main(["survey", "copy", str(tmp_path), str(tmp_path / "x")]) == 1
    assert "not a study folder" in capsys.readouterr().err
    (tmp_path / "survey.json").write_text("{}")
    assert main(["survey", "copy", str(tmp_path), str(tmp_path / "x")]) == 1
    assert "no survey.json naming its runs" in capsys.readouterr().err
