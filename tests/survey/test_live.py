"""Bots through a live server (uvicorn on 127.0.0.1), then the export."""

import socket
import threading
import time

import pandas as pd
import pytest
import uvicorn

from percalign.cli import main
from percalign.survey.app import create_app


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    base = tmp_path_factory.mktemp("live")
    run = base / "run"
    assert (
        main(
            [
                "invert",
                "--model",
                "tiny-vgg",
                "--images",
                "digits",
                "--n-images",
                "4",
                "--seeds",
                "super-noise,image",
                "--steps",
                "3",
                "--out",
                str(run),
            ]
        )
        == 0
    )
    study = base / "STUDY"
    assert (
        main(
            [
                "survey",
                "build",
                str(study),
                "--runs",
                str(run),
                "--include-invalid",
                "--trials-per-participant",
                "6",
                "--judgments-per-item",
                "2",
            ]
        )
        == 0
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(study, "tok"), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield study, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


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
    # scoring reads the export directly
    assert main(["score", str(out), "--by", "model", "--bootstrap", "100"]) == 0
