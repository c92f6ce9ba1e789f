"""Importing a module registers nothing; the registry registers on first use."""

import subprocess
import sys

import pytest

SOURCES = "[s.name for s in percalign.models.registry._SOURCES]"


def _fresh(code: str) -> str:
    """``code``'s output in a fresh interpreter (this one's registry is already filled)."""
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return done.stdout.strip()


@pytest.mark.slow
def test_importing_model_modules_registers_nothing():
    out = _fresh(
        "import percalign.models.registry as r, percalign.models.tiny, percalign.models.cifar,"
        " percalign.models.hub, percalign.training.zoo, percalign.models;"
        " print(sorted(r._REGISTERED.entries), [s.name for s in r._SOURCES])"
    )
    assert out == "[] ['registered']"


@pytest.mark.slow
def test_first_use_registers_the_models_and_the_zoo_without_models_importing_training():
    out = _fresh(
        "import sys, percalign.models as m; print('percalign.training' in sys.modules);"
        " print([s.name for s in m.registry.sources()]);"
        " print('tiny-cnn' in m.list_models(), 'cifar-resnet18' in m.list_models())"
    )
    assert out.splitlines() == [
        "False",
        "['registered', 'zoo', 'torchvision', 'timm']",
        "True True",
    ]
