import json

import pytest
import torch

import percalign as pa
from percalign.errors import MissingFileError, OutputExistsError
from percalign.inversion import InversionConfig, invert, null_distribution
from percalign.store import atomic_folder, read_manifest, read_png, save_run, write_png


@pytest.fixture(scope="module")
def run():
    model = pa.models.load("tiny-cnn")
    images = pa.data.load_images("digits", 4, size=32)
    targets = pa.data.to_channels(images.images, 3)
    nulls = {o: null_distribution(model, targets, o) for o in ("block2", "penultimate")}
    result = invert(
        model,
        targets,
        layers=["block2", "penultimate"],
        seeds="super-noise,image",
        labels=images.labels,
        config=InversionConfig(steps=5, optimizer="adam"),
        thresholds={name: null.threshold for name, null in nulls.items()},
    )
    return model, images, result, nulls


def test_png_round_trip_is_exact(tmp_path):
    x = torch.round(torch.rand(3, 9, 7) * 255) / 255
    write_png(tmp_path / "x.png", x)
    assert torch.equal(read_png(tmp_path / "x.png"), x)
    g = torch.round(torch.rand(1, 5, 5) * 255) / 255
    write_png(tmp_path / "g.png", g)
    assert torch.equal(read_png(tmp_path / "g.png"), g)


def test_run_folder_has_images_and_a_complete_manifest(tmp_path, run):
    model, images, result, nulls = run
    out = save_run(
        tmp_path / "out",
        result,
        model=model,
        target_ids=images.ids,
        target_labels=images.labels.tolist(),
        nulls=nulls,
        extra={"note": "x"},
    )
    m = read_manifest(out)
    assert m["model"]["weights_sha256"] == model.weights_sha256
    assert m["config"]["steps"] == 5 and m["config"]["lr"] == 0.1
    assert m["config"]["parameterization"] == "sigmoid" and m["config"]["preset"] is None
    assert m["config"]["parameterization_eps"] == 1e-3
    for rec, i in zip(m["iris"], range(len(result))):  # the convergence diagnostics
        assert rec["at_zero"] == pytest.approx(float((result.iris[i] == 0).float().mean()), abs=1e-4)
        assert rec["at_one"] == pytest.approx(float((result.iris[i] == 1).float().mean()), abs=1e-4)
        step = int(result.first_valid_step[i])
        assert rec["first_valid_step"] == (None if step < 0 else step)
    assert m["packages"]["torch"] and "git_commit" in m["code"] and m["note"] == "x"
    assert len(m["iris"]) == len(result) == 16 and len(m["targets"]) == 4
    for rec in m["iris"]:
        for key in ("iri", "seed", "target"):
            assert (out / rec[key]).is_file()
        assert rec["valid"] in (True, False) and rec["layer"] in ("block2", "penultimate")
    image_seeds = [r for r in m["iris"] if r["seed_type"] == "image"]
    assert all(
        r["seed_source_id"] in images.ids and r["seed_source_id"] != r["target_id"]
        for r in image_seeds
    )
    assert set(m["validity"]) == {"block2", "penultimate"}
    # the recorded distance is that of the saved 8-bit image
    rec = m["iris"][-1]
    iri = read_png(out / rec["iri"]).unsqueeze(0)
    target = read_png(out / rec["target"]).unsqueeze(0)
    feats = model.extractor([rec["layer"]])
    with torch.no_grad():
        a, b = feats(iri)[rec["layer"]].flatten(1), feats(target)[rec["layer"]].flatten(1)
    assert ((a - b).norm() / b.norm()).item() == pytest.approx(rec["distance"], rel=1e-4)


def test_existing_output_is_refused_unless_overwrite(tmp_path, run):
    model, images, result, _ = run
    save_run(tmp_path / "o", result, model=model, target_ids=images.ids)
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_run(tmp_path / "o", result, model=model, target_ids=images.ids)
    save_run(tmp_path / "o", result, model=model, target_ids=images.ids, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_a_failed_write_leaves_nothing(tmp_path):
    with pytest.raises(RuntimeError), atomic_folder(tmp_path / "never") as tmp:
        (tmp / "half.png").write_bytes(b"x")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_manifest_of_a_non_run_folder(tmp_path):
    with pytest.raises(MissingFileError, match="not an inversion run folder"):
        read_manifest(tmp_path)


def test_manifest_is_plain_json(tmp_path, run):
    model, images, result, _ = run
    out = save_run(tmp_path / "j", result, model=model, target_ids=images.ids)
    json.loads((out / "manifest.json").read_text())
