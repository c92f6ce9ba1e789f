"""Judges against a human 2AFC set the test makes: format, side randomization, ceilings, CLI."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage import data

from percalign.cli import main
from percalign.errors import ConfigError, InputShapeError, MissingFileError
from percalign.judges import PixelL2, human_ceiling, read_triplets, validate_judges

SOURCES = ("astronaut", "camera", "coffee", "chelsea", "rocket", "horse")


def _save(array: np.ndarray, path) -> str:
    Image.fromarray(np.clip(array, 0, 255).astype(np.uint8)).save(path)
    return path.name


def _small(name: str, size: int) -> np.ndarray:
    image = np.asarray(getattr(data, name)(), dtype=np.float64)
    if image.ndim == 3 and image.shape[2] == 4:
        image = image[..., :3]
    if image.dtype == bool or image.max() <= 1:
        image = image * 255
    pil = Image.fromarray(image.astype(np.uint8)).resize((size, size))
    return np.asarray(pil, dtype=np.float64)


def _human_set(root, votes, ties=0, size=32, winner_first=True, sizes=None):
    """A set whose people always prefer the slightly noisy candidate (votes[k] = (for it,
    against it)); ``ties`` rows more have two identical candidates. The winner is listed
    first, as some public sets do."""
    rng = np.random.default_rng(0)
    rows = []
    for k, (win, lose) in enumerate(votes):
        ref = _small(SOURCES[k % len(SOURCES)], size)
        near = _save(ref + rng.normal(0, 4, ref.shape), root / f"near{k}.png")
        far = _save(ref + rng.normal(0, 60, ref.shape), root / f"far{k}.png")
        ref_name = _save(ref, root / f"ref{k}.png")
        a, b, va, vb = (near, far, win, lose) if winner_first else (far, near, lose, win)
        rows.append({"reference": ref_name, "a": a, "b": b, "votes_a": va, "votes_b": vb})
    for k in range(ties):
        ref = _small(SOURCES[k % len(SOURCES)], size)
        same = _save(ref + rng.normal(0, 10, ref.shape), root / f"same{k}.png")
        rows.append(
            {
                "reference": _save(ref, root / f"tref{k}.png"),
                "a": same,
                "b": same,
                "votes_a": 3,
                "votes_b": 2,
            }
        )
    path = root / "people.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


VOTES = [(5, 0), (4, 1), (3, 2), (5, 0), (4, 1), (3, 0), (2, 1), (5, 0)]


def test_a_judge_that_picks_what_people_picked_agrees_fully(tmp_path):
    path = _human_set(tmp_path, VOTES)
    summary, picks = validate_judges([PixelL2()], read_triplets(path, seed=3), n_boot=200)
    row = summary.iloc[0]
    # all 8 agree: the exact interval over 8 references, not a bootstrap's [1, 1]
    assert row["majority"] == 1.0 and row["majority_hi"] == 1.0
    assert row["majority_lo"] == pytest.approx(0.025 ** (1 / len(VOTES)))
    share = np.mean([w / (w + v) for w, v in VOTES])
    assert row["votes"] == pytest.approx(share)
    assert row["votes_lo"] <= share <= row["votes_hi"] and row["votes_lo"] < share
    # picks come back in the CSV's own sides, whatever the randomization did
    assert (picks["pick"] == "a").all()


def test_sides_are_randomized_so_a_judge_that_cannot_tell_does_not_inherit_the_listing(tmp_path):
    path = _human_set(tmp_path, [], ties=40)
    triplets = read_triplets(path, seed=0)
    swapped = triplets.table["swapped"].to_numpy()
    assert 0 < swapped.sum() < len(swapped)
    summary, _ = validate_judges([PixelL2()], triplets, n_boot=100)
    # equal distances pick the first side shown: right exactly where the winner stayed first
    assert summary.iloc[0]["majority"] == pytest.approx(1 - swapped.mean())
    assert 0.3 < summary.iloc[0]["majority"] < 0.7
    other = read_triplets(path, seed=1).table["swapped"].to_numpy()
    assert not np.array_equal(swapped, other)


def test_human_ceilings_on_hand_computed_rows():
    # row 1 unanimous (halves always agree), row 2 split 1-1 (halves always disagree)
    ceiling = human_ceiling(np.array([3, 1]), np.array([0, 1]), n_splits=50)
    assert ceiling["majority"] == pytest.approx(0.5) and ceiling["low"] == ceiling["high"] == 0.5
    assert ceiling["votes"] == pytest.approx((1.0 + 0.0) / 2)
    # one vote: no pair of people, so no ceiling from that row
    assert human_ceiling(np.array([1, 4]), np.array([0, 0]))["votes"] == pytest.approx(1.0)
    # a 3-2 row: halves of 2 and 3 votes; agreement varies between splits
    many = human_ceiling(np.full(30, 3), np.full(30, 2), n_splits=400, seed=1)
    assert many["low"] < many["majority"] < many["high"]
    assert many["votes"] == pytest.approx((3 * 2 + 2 * 1) / (5 * 4))


@pytest.mark.parametrize(
    ("edit", "error", "words"),
    [
        (lambda t: t.drop(columns="votes_b"), ConfigError, "lacks the column(s) ['votes_b']"),
        (lambda t: t.assign(votes_a=-1), ConfigError, "votes are whole numbers >= 0"),
        (lambda t: t.assign(votes_a=1.5), ConfigError, "votes are whole numbers >= 0"),
        (lambda t: t.assign(votes_a=0, votes_b=0), ConfigError, "has no votes"),
        (lambda t: t.assign(a=""), ConfigError, "has no a path"),
        (lambda t: t.iloc[:0], ConfigError, "has no rows"),
    ],
)
def test_bad_files_are_refused_in_one_line(tmp_path, edit, error, words):
    path = _human_set(tmp_path, VOTES[:2])
    edit(pd.read_csv(path)).to_csv(path, index=False)
    with pytest.raises(error) as caught:
        read_triplets(path)
    assert words in str(caught.value) and "\n" not in str(caught.value)


def test_missing_images_and_mixed_sizes_are_refused_and_size_fixes_them(tmp_path):
    path = _human_set(tmp_path, VOTES[:2])
    table = pd.read_csv(path)
    table.loc[1, "b"] = "nowhere.png"
    table.to_csv(path, index=False)
    with pytest.raises(MissingFileError, match=r"Row 1 of .* names image 'nowhere\.png'"):
        read_triplets(path)
    path = _human_set(tmp_path, VOTES[:2])
    _save(_small("camera", 48), tmp_path / "ref1.png")
    with pytest.raises(InputShapeError, match="--size"):
        validate_judges([PixelL2()], read_triplets(path), n_boot=10)
    summary, _ = validate_judges([PixelL2()], read_triplets(path, size=24), n_boot=10)
    assert summary.iloc[0]["rows"] == 2


def test_cli_prints_each_judge_beside_the_people_and_writes_picks(tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    path = _human_set(images, VOTES)
    moved = tmp_path / "people.csv"
    path.rename(moved)
    picks = tmp_path / "picks.csv"
    argv = ["judge", "--validate", str(moved), "--judges", "pixel,ssim", "--bootstrap", "100"]
    assert main([*argv, "--image-root", str(images), "--picks", str(picks)]) == 0
    printed = capsys.readouterr().out
    assert "pixel" in printed and "ssim" in printed and "people (ceiling)" in printed
    assert "a range, not a CI" in printed
    written = pd.read_csv(picks)
    assert len(written) == 2 * len(VOTES) and set(written["judge"]) == {"pixel", "ssim"}
    # without --image-root the paths are looked up beside the CSV, where they are not
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--image-root" in err[0]


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["judge"], "either an inversion folder OUT or --validate FILE"),
        (["judge", "OUT", "--validate", "x.csv"], "either an inversion folder OUT or --validate"),
        (["judge", "OUT", "--size", "32"], "--size applies only with --validate"),
        (["judge", "--validate", "missing.csv"], "No human 2AFC file at missing.csv"),
    ],
)
def test_cli_refuses_mixed_or_missing_inputs_in_one_line(
    tmp_path, monkeypatch, capsys, argv, words
):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and words in err[0]
