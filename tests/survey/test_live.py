"""Bots through a live server (uvicorn on 127.0.0.1), then the export."""

import time

import pandas as pd
import pytest

from percalign.cli import main
from percalign.survey.app import create_app


@pytest.fixture(scope="module")
def served(make_study, live_server):
    study = make_study()
    with live_server(create_app(study, "tok")) as url:
        yield study, url


def test_bots_through_http_and_export(served, tmp_path, capsys):
    study, url = served
    assert (
        main(
            [
                "survey",
                "bots",
                str(study),
                "--url",
                url,
                "--n",
                "4",
                "--judge",
                "pixel",
                "--lapse",
                "0",
            ]
        )
        == 0
    )
    assert "4 simulated participants finished" in capsys.readouterr().out
    out = tmp_path / "responses.csv"
    assert main(["survey", "export", str(study), "--out", str(out), "--hash-ids"]) == 0
    table = pd.read_csv(out)
    assert len(table) == 4 * 6 and table["participant"].nunique() == 4
    assert not table.duplicated(["participant", "trial"]).any()
    assert set(table["platform"]) == {"bot"} and table["platform_pid"].str.len().eq(16).all()
    assert {
        "model",
        "layer",
        "seed_type",
        "iri_weights_sha256",
        "correct",
        "rt_ms",
        "is_catch",
        "correct_position",
        "choice",
    } <= set(table.columns)
    # a bot without lapses always picks the catch trial's identical candidate
    assert table[table["is_catch"]]["correct"].all()
    parquet = tmp_path / "responses.parquet"
    assert main(["survey", "export", str(study), "--out", str(parquet)]) == 0
    assert len(pd.read_parquet(parquet)) == len(table)
    # scoring reads the export directly, or the study folder itself
    assert main(["score", str(out), "--by", "model", "--bootstrap", "100"]) == 0
    assert main(["score", str(study), "--bootstrap", "100", "--judges", "pixel,ssim"]) == 0
    printed = capsys.readouterr().out
    versus = pd.read_csv(study / "scores" / "judges_vs_humans.csv").set_index("judge")
    # the bots decide with the pixel judge and never lapse: it must agree with them fully
    assert versus.loc["pixel", "majority"] == 1.0 and versus.loc["pixel", "kappa"] == 1.0
    assert "Recommended stand-in for people on these stimuli: pixel" in printed
    assert (study / "scores" / "humans.csv").is_file()


@pytest.mark.slow
def test_survey_serve_command_runs_a_server(served, tmp_path, free_port):
    import os
    import signal
    import subprocess
    import sys

    import httpx

    study, _ = served
    port = free_port()
    env = {**os.environ, "PERCALIGN_ADMIN_TOKEN": "cli-token"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "percalign",
            "survey",
            "serve",
            str(study),
            "--port",
            str(port),
            "--completion-code",
            "OK1",
            "--failed-code",
            "BAD1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        for _ in range(200):
            try:
                r = httpx.get(
                    f"http://127.0.0.1:{port}/api/admin/progress",
                    headers={"Authorization": "Bearer cli-token"},
                    timeout=1,
                )
                break
            except httpx.TransportError:
                time.sleep(0.1)
        assert r.status_code == 200 and "answers" in r.json()
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/?PROLIFIC_PID=" in out
    # the log names where the admin token is, never the token itself
    assert "$PERCALIGN_ADMIN_TOKEN" in out and "cli-token" not in out


def test_bots_and_export_report_problems_in_one_line(
    tmp_path, served, make_study, capsys, monkeypatch, free_port
):
    import percalign.survey.bots as bots

    study, _ = served
    dead = free_port()  # nothing listens there once the probe socket has closed
    monkeypatch.setattr(bots.time, "sleep", lambda _s: None)  # skip the backoff waits
    assert (
        main(
            [
                "survey",
                "bots",
                str(study),
                "--url",
                f"http://127.0.0.1:{dead}",
                "--n",
                "1",
                "--judge",
                "pixel",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1  # at once, in one line
    assert f"Nothing answers at http://127.0.0.1:{dead}" in err
    assert "percalign survey serve" in err
    empty = tmp_path / "empty.csv"
    other = make_study()
    assert main(["survey", "export", str(other), "--out", str(empty)]) == 0
    assert "participant" in empty.read_text().splitlines()[0]
    capsys.readouterr()
    assert main(["score", str(empty)]) == 1
    assert "holds no answers yet" in capsys.readouterr().err


def test_the_survey_service_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, percalign.survey.app, percalign.store.sessions; "
        "sys.exit('torch' in sys.modules)"
    )
    assert subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0
