"""Settings for every test and doctest: offline, with a private cache folder."""

from __future__ import annotations

import os
import tempfile

# Set before percalign is imported anywhere: no test may reach the network or a real cache.
_HOME = tempfile.mkdtemp(prefix="percalign-test-home-")
os.environ["PERCALIGN_OFFLINE"] = "1"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["PERCALIGN_HOME"] = _HOME
os.environ["TORCH_HOME"] = os.path.join(_HOME, "torch")
os.environ["HF_HOME"] = os.path.join(_HOME, "hf")
