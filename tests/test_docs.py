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
