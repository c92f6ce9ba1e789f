"""The layers of docs/architecture.md, as import-linter contracts in pyproject.toml."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _lint(src: Path) -> subprocess.CompletedProcess:
    """lint-imports on the percalign package found in ``src``, with this checkout's contracts."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_layers_hold():
    done = _lint(ROOT / "src")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 kept, 0 broken" in done.stdout


def test_an_import_upward_breaks_the_contract(tmp_path):
    shutil.copytree(ROOT / "src" / "percalign", tmp_path / "percalign")
    model = tmp_path / "percalign" / "models" / "model.py"
    model.write_text(model.read_text() + "\nfrom percalign.training import zoo  # upward\n")
    done = _lint(tmp_path)
    assert done.returncode == 1
    assert "percalign.models is not allowed to import percalign.training" in done.stdout
