"""README.md and docs/architecture.md name only things the code has (docs/study.md is checked
against the study spec by its own tests)."""

import re
from pathlib import Path

import pytest

from percalign.inversion.config import LOSS_FAMILIES
from percalign.inversion.seeds import SEED_KINDS

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", ROOT / "docs" / "architecture.md"]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_loss_families_named_in_the_docs_exist(page):
    named = set(re.findall(r"`(penalt[a-z0-9-]*)`", page.read_text()))
    assert named <= set(LOSS_FAMILIES), f"{page.name} names {sorted(named - set(LOSS_FAMILIES))}"


def test_the_readme_lists_every_loss_family_and_seed_type():
    readme = (ROOT / "README.md").read_text()
    for name in [*LOSS_FAMILIES, *SEED_KINDS]:
        assert f"`{name}`" in readme, name


_SKIP_DIRS = {".git", ".venv", "__pycache__", "build", "dist", "demo-out", "node_modules"}
_TEXT = {".py", ".md", ".toml", ".txt", ".sh", ".cfg", ".yml", ".yaml", ".html", ".js", ".ini"}
_MD_NAME = re.compile(r"(?<![\w/.-])([\w./-]*[\w-]\.md)\b")
_LINK = re.compile(r"\]\(([^)\s#]+)[^)]*\)")


def _project_files(root: Path) -> list[Path]:
    """The repository's text files (no virtual environment, caches or build outputs)."""
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        skipped = any(p in _SKIP_DIRS or p.endswith((".egg-info", "_cache")) for p in parts)
        if path.is_file() and not skipped and (path.suffix in _TEXT or path.name == "Makefile"):
            found.append(path)
    return found


def dangling_references(root: Path) -> list[str]:
    """``FILE: NAME`` for each Markdown file named, or relative link made, by a project file
    that the repository does not hold."""
    files = _project_files(root)
    names = {p.name for p in files}
    missing = set()
    for path in files:
        text = path.read_text(errors="replace")
        for name in _MD_NAME.findall(text):
            here = (root / name).exists() or (path.parent / name).exists()
            if not here and not ("/" not in name and name in names):
                missing.add(f"{path.relative_to(root)}: {name}")
        if path.suffix == ".md":
            for target in _LINK.findall(text):
                external = "://" in target or target.startswith("mailto:")
                if not external and not (path.parent / target).exists():
                    missing.add(f"{path.relative_to(root)}: {target}")
    return sorted(missing)


def test_no_project_file_points_outside_the_repository():
    assert dangling_references(ROOT) == []


def test_a_reference_to_a_file_the_repository_lacks_is_found(tmp_path):
    md = ".md"  # (the names are built, so that this file names none of them)
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / f"guide{md}").write_text(f"See [the notes](notes{md}), `guide{md}`.\n")
    (tmp_path / "code.py").write_text(f'"""As PAPER{md} says; docs/guide{md} has it."""\n')
    assert dangling_references(tmp_path) == [f"code.py: PAPER{md}", f"docs/guide{md}: notes{md}"]
