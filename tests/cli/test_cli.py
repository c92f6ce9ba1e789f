"""The CLI as a user runs it: in a subprocess for the acceptance command, in-process otherwise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from percalign.cli import main

INVERT = [
    "invert",
    "--model",
    "tiny-cnn",
    "--images",
    "digits",
    "--n-images",
    "8",
    "--seeds",
    "super-noise,image",
    "--steps",
    "200",
]


def test_acceptance_invert_command(tmp_path):
    out = tmp_path / "OUT"
    proc = subprocess.run(
        [sys.executable, "-m", "percalign", *INVERT, "--out", str(out)],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["iris"]) == 16 and len(list((out / "iris").glob("*.png"))) == 16
    assert len(list((out / "targets").glob("*.png"))) == 8
    assert {r["seed_type"] for r in manifest["iris"]} == {"super-noise", "image"}
    assert all(
        r["layer"] == "penultimate" and isinstance(r["valid"], bool) for r in manifest["iris"]
    )
    assert manifest["config"]["steps"] == 200 and manifest["code"]["git_commit"]
    assert "Wrote 16 IRIs" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["OUT"]  # no temporary folder left


def test_invert_without_optimizer_options_uses_the_default_preset(tmp_path, capsys):
    out = tmp_path / "d"
    code = main(
        [
            "invert",
            "--model",
            "tiny-cnn",
            "--n-images",
            "4",
            "--split",
            "test",
            "--seeds",
            "super-noise",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    config = json.loads((out / "manifest.json").read_text())["config"]
    assert config["preset"] == "default" and config["parameterization"] == "sigmoid"
    assert (config["optimizer"], config["lr"], config["steps"]) == ("adam", 0.1, 2000)
    printed = capsys.readouterr()
    assert "preset default: sigmoid pixels, adam, lr 0.1, cosine" in printed.err
    assert "first valid" in printed.out


def test_paper_preset_and_stop_at_valid_are_recorded(tmp_path):
    out = tmp_path / "p"
    code = main(
        [
            "invert",
            "--model",
            "tiny-cnn",
            "--n-images",
            "2",
            "--preset",
            "paper",
            "--steps",
            "20",
            "--stop-at",
            "valid:0.5",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    config = manifest["config"]
    assert config["preset"] is None  # paper settings but 20 steps: not the paper's loop
    assert (config["parameterization"], config["optimizer"], config["lr"]) == (
        "pixel",
        "normalized-gd",
        1.0,
    )
    assert config["stop_at_valid"] == 0.5
    assert {r["seed_type"] for r in manifest["iris"]} == {"super-noise"}  # the preset's seeds
    for r in manifest["iris"]:
        assert {"at_zero", "at_one", "first_valid_step"} <= r.keys()


def test_resnet18_random_weights_at_64(tmp_path, capsys):
    code = main(
        [
            "invert",
            "--model",
            "resnet18",
            "--weights",
            "none",
            "--image-size",
            "64",
            "--images",
            "samples",
            "--n-images",
            "2",
            "--steps",
            "3",
            "--layer",
            "layer3,penultimate",
            "--null-images",
            "8",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    assert code == 0
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert {r["layer"] for r in manifest["iris"]} == {"layer3", "penultimate"}
    assert manifest["model"]["input_size"] == [64, 64]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "tiny-cn"], "Unknown model 'tiny-cn'. Did you mean 'tiny-cnn'"),
        (["--layer", "blok2"], "Did you mean 'block2'"),
        (["--steps", "0"], "'steps' parameter of InversionConfig must be an int in [1, inf)"),
        (["--images", "nowhere/*.png"], "No image files found"),
        (["--seeds", "pink"], "Unknown seed type 'pink'"),
        (["--loss", "adversarial"], "alexnet-owt-7be5be79.pth"),
        (["--weights", "/no/such.pt"], "does not exist"),
        (["--device", "cdua"], "Unknown device 'cdua' for --device. Did you mean 'cuda'"),
        (["--n-images", "0"], "'n' parameter of load_images"),
        (["--steps", "many"], "invalid int value"),
        (["--preset", "papr"], "Unknown inversion preset 'papr'. Did you mean 'paper'"),
        (["--parameterization", "sigmod"], "Did you mean 'sigmoid'"),
        (["--loss", "adversarial", "--adversary", "sism"], "Unknown judge 'sism'"),
        (["--stop-at", "valid", "--null-images", "1"], "--stop-at valid needs the validity null"),
        (["--stop-at", "soon"], "--stop-at takes 'valid', 'valid:MARGIN' or 'never'"),
        (["--stop-at", "valid:2"], "'stop_at_valid' parameter of InversionConfig"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, capsys, args, message):
    argv = [*INVERT, "--out", str(tmp_path / "o"), *args]
    # later options win in argparse, so each bad value overrides the valid default above
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("percalign: error: ")
    assert message in err[0]
    assert not (tmp_path / "o").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:FutureWarning")
def test_wrong_channel_count_from_a_folder(tmp_path, capsys):
    from PIL import Image

    Image.new("RGB", (8, 8)).save(tmp_path / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "b.png")
    import torch
    from torch import nn

    net = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Flatten(), nn.Linear(72, 2))
    path = tmp_path / "gray.pt"
    torch.jit.script(net).save(str(path))
    code = main(
        [
            "invert",
            "--model",
            str(path),
            "--mean",
            "0.5",
            "--std",
            "0.5",
            "--image-size",
            "8",
            "--images",
            str(tmp_path / "*.png"),
            "--n-images",
            "2",
            "--steps",
            "2",
            "--layer",
            "output",
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 1
    assert "only grayscale -> RGB" in capsys.readouterr().err


def test_existing_output_needs_overwrite(tmp_path, capsys):
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "keep.txt").write_text("precious")
    assert main([*INVERT, "--steps", "2", "--out", str(tmp_path / "o")]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (tmp_path / "o" / "keep.txt").read_text() == "precious"


def test_debug_shows_the_traceback(tmp_path):
    from percalign.errors import UnknownNameError

    with pytest.raises(UnknownNameError):
        main(["--debug", *INVERT, "--model", "nope", "--out", str(tmp_path / "o")])


def test_models_list_and_show(capsys):
    assert main(["models", "list"]) == 0
    listed = capsys.readouterr().out
    assert all(n in listed for n in ("tiny-cnn", "tiny-resnet", "tiny-vgg", "tiny-vit"))
    assert main(["models", "show", "tiny-resnet"]) == 0
    shown = capsys.readouterr().out
    assert "3 x 32 x 32" in shown and "layer2" in shown and "layer2.0.conv1" not in shown
    assert "penultimate = input of 'fc'" in shown and "8x32x32" in shown


@pytest.fixture
def without_cuda(monkeypatch):
    """This machine as if it had no GPU, whatever it has (so the test runs on GPU machines)."""
    from percalign import _device

    monkeypatch.setattr(_device, "cuda_available", lambda: False)


TRAIN_TINY = ["train", "--epochs", "1", "--limit", "64", "--width", "4", "--name", "never-saved"]


@pytest.mark.parametrize(
    "argv",
    [
        [*TRAIN_TINY, "--device", "cuda"],
        [*INVERT, "--out", "OUT", "--device", "cuda:0"],
        ["trust", "--models", "tiny-cnn,tiny-vgg", "--out", "OUT", "--device", "cuda"],
        ["study", "run", "study.toml", "--device", "cuda"],
    ],
    ids=["train", "invert", "trust", "study"],
)
def test_cuda_asked_for_without_cuda_is_one_line(tmp_path, capsys, monkeypatch, without_cuda, argv):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "study.toml").write_text('[[models]]\nname = "tiny-cnn"\n')
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cuda" in err[0] and "CUDA is not available here" in err[0]
    assert not (tmp_path / "OUT").exists()


def test_judge_device_without_cuda_is_one_line(tmp_path, capsys, without_cuda):
    out = tmp_path / "run"
    assert main([*INVERT[:-1], "5", "--n-images", "2", "--out", str(out), "--device", "cpu"]) == 0
    capsys.readouterr()
    assert main(["judge", str(out), "--device", "cuda"]) == 1
    assert "CUDA is not available here" in capsys.readouterr().err


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_train_device_cuda_on_this_machine_says_cuda_is_missing(capsys):
    assert main([*TRAIN_TINY, "--device", "cuda"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CUDA is not available here" in err[0]


def test_auto_device_is_the_cpu_without_cuda(without_cuda):
    from percalign._device import resolve_device

    assert resolve_device("auto") == "cpu" and resolve_device(None) == "cpu"


def test_models_show_falls_back_to_random_weights_offline(capsys):
    assert main(["models", "show", "resnet18", "--depth", "1"]) == 0
    out = capsys.readouterr().out
    assert "random weights" in out and "layer4" in out and "512x7x7" in out


def test_python_dash_m_help():
    proc = subprocess.run(
        [sys.executable, "-m", "percalign", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "invert" in proc.stdout


def test_demo_writes_its_spec_runs_the_study_and_says_where_everything_is(
    tmp_path, capsys, monkeypatch
):
    from percalign.cli import demo

    # the packaged spec trains four models for minutes; the wiring is the same for a tiny one
    spec = (Path(__file__).parents[1] / "study" / "tiny_study.toml").read_text()
    monkeypatch.setattr(demo, "demo_spec_text", lambda: spec)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (out / "study.toml").read_text() == spec
    assert (out / "report" / "index.html").is_file()
    assert "Alignment by judges" in printed and "Trust when models disagree" in printed
    assert "simulated participants" in printed
    assert f"percalign survey serve {(out / 'survey').resolve()}" in printed
    assert main(["demo", "--out", str(out)]) == 0  # the second run reuses everything
    assert "Report:" in capsys.readouterr().out


def test_train_command_saves_a_loadable_model(capsys):
    args = [
        "train",
        "--dataset",
        "digits",
        "--arch",
        "small-cnn",
        "--recipe",
        "standard",
        "--epochs",
        "1",
        "--limit",
        "128",
        "--width",
        "8",
        "--name",
        "cli-cnn-std",
        "--overwrite",
    ]
    assert main(args) == 0
    assert "Saved to" in capsys.readouterr().out
    assert main(["models", "show", "cli-cnn-std"]) == 0
    assert "standard" in capsys.readouterr().out
    assert main(args[:-1]) == 1  # the name exists and --overwrite is gone
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--recipe", "trade"], "Did you mean 'trades'"),
        (["--arch", "resnet19"], "Did you mean 'cifar-resnet18'"),
        (["--dataset", "digitz"], "Did you mean 'digits'"),
        (["--recipe", "adv-l2", "--eps", "-1"], "'eps' parameter"),
        (["--recipe", "standard", "--eps", "1"], "--eps has no effect"),
        (["--dataset", "cifar10"], "cifar-10-batches-py"),
        (["--name", "bad/name"], "must be letters"),
    ],
)
def test_train_bad_input(capsys, args, message):
    assert main([*TRAIN_TINY, *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_score_an_exported_table(tmp_path, capsys):
    import pandas as pd

    rows = [
        {
            "participant": p,
            "item": f"{m}{i}",
            "model": m,
            "layer": "penultimate",
            "correct": int((p + i) % 4 != 0) if m == "robust" else int((p + i) % 2 == 0),
        }
        for m in ("robust", "standard")
        for p in range(12)
        for i in range(10)
    ]
    path = tmp_path / "responses.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert (
        main(
            [
                "score",
                str(path),
                "--by",
                "model,layer",
                "--compare",
                "model",
                "--bootstrap",
                "200",
                "--out",
                str(tmp_path / "scores"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "robust" in printed and "Pairwise differences" in printed
    scores = pd.read_csv(tmp_path / "scores" / "humans.csv").set_index("model")
    assert scores.loc["robust", "alignment"] == pytest.approx(0.75)
    assert scores.loc["standard", "alignment"] == pytest.approx(0.5)
    summary = json.loads((tmp_path / "scores" / "summary.json").read_text())
    assert summary["by"] == ["model", "layer"] and summary["declared_by"] is None
    assert [r["alignment"] for r in summary["alignment"]] == list(scores["alignment"])
    pairs = pd.read_csv(tmp_path / "scores" / "comparisons.csv")
    assert list(pairs[["column", "a", "b"]].iloc[0]) == ["model", "robust", "standard"]
    assert main(["score", str(path), "--by", "modle"]) == 1
    assert "lacks column(s) ['modle']" in capsys.readouterr().err
    assert main(["score", str(tmp_path)]) == 1
    assert "is not a study folder" in capsys.readouterr().err


def test_score_with_exclusions_paper_table_and_power(tmp_path, capsys):
    import pandas as pd

    rows = []
    for p in range(10):
        rows.append(
            {
                "participant": p,
                "item": "catch",
                "arch": "cnn",
                "training": "robust",
                "correct": int(p != 0),
                "is_catch": True,
                "rt_ms": 900,
            }
        )
        rows += [
            {
                "participant": p,
                "item": f"{a}{t}{i}",
                "arch": a,
                "training": t,
                "correct": int((p + i) % (4 if t == "robust" else 2) != 0),
                "is_catch": False,
                "rt_ms": 900,
            }
            for a in ("cnn", "resnet")
            for t in ("robust", "standard")
            for i in range(6)
        ]
    path = tmp_path / "r.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    assert (
        main(
            [
                "score",
                str(path),
                "--by",
                "training,arch",
                "--table",
                "training,arch",
                "--halfwidth",
                "0.1",
                "--bootstrap",
                "100",
                "--out",
                str(tmp_path / "s"),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "Without exclusions" in printed and "catch accuracy below 0.8': 1 participants" in printed
    )
    assert "robust, resnet: variance components" in printed and "+-0.1 needs" in printed
    report = pd.read_csv(tmp_path / "s" / "exclusions.csv")
    assert report["participants"].sum() == 1
    table = pd.read_csv(tmp_path / "s" / "humans_table.csv", index_col=0)
    assert list(table.index) == ["robust", "standard"] and list(table.columns) == ["cnn", "resnet"]
    # the table is its own grouping: its columns need not be in --by, only in the answers
    assert main(["score", str(path), "--by", "training", "--table", "training,arch"]) == 0
    assert "resnet" in capsys.readouterr().out
    assert main(["score", str(path), "--by", "training", "--table", "training,archh"]) == 1
    assert "lacks column(s) ['archh']" in capsys.readouterr().err
    assert main(["score", str(path), "--table", "training"]) == 1
    assert "--table takes ROWS,COLUMNS" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "head", "features", "pool"),
    [("resnet50", "fc", 2048, ")"), ("vit_b_16", "heads.head", 768, ", token pool cls)")],
)
def test_paper_imagenet_models_at_224_show_their_penultimate(capsys, name, head, features, pool):
    assert main(["models", "show", name, "--weights", "none", "--depth", "0"]) == 0
    shown = capsys.readouterr().out
    assert "3 x 224 x 224" in shown
    assert "mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225)" in shown
    assert f"penultimate = input of '{head}' ({features} features{pool}" in shown


@pytest.mark.slow
def test_two_224_px_images_invert_for_5_steps_on_cpu(tmp_path):
    out = tmp_path / "run"
    argv = ["invert", "--model", "resnet50", "--weights", "none", "--images", "samples"]
    argv += ["--n-images", "2", "--seeds", "super-noise", "--steps", "5", "--null-images", "4"]
    argv += ["--out", str(out)]
    assert main([*argv, "--device", "cpu"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["iris"]) == 2 and manifest["model"]["input_size"] == [224, 224]
    assert all(r["layer"] == "penultimate" for r in manifest["iris"])
