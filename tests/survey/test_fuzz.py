"""Schemathesis fuzzes every operation of the service's OpenAPI schema on a live server.

Each operation is fuzzed with valid and with invalid data, once with whatever credentials
the generator makes up and once with real ones (a participant's session token and its id in
the path, the admin token), so the fuzzing reaches past authentication. Schemathesis checks
every response: no 5xx, status codes and bodies as documented, invalid data refused, auth
enforced. ``PERCALIGN_FUZZ_EXAMPLES`` sets the examples per run (default 15; the full run
in benchmarks/README.md uses 300).
"""

import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from percalign.survey.app import create_app

EXAMPLES = int(os.environ.get("PERCALIGN_FUZZ_EXAMPLES", "15"))
TOKEN = "fuzz-admin-token"


@pytest.fixture(scope="module")
def served(make_study, live_server):
    study = make_study()
    with live_server(create_app(study, TOKEN, completion_codes={"completed": "OK"})) as url:
        yield url


@pytest.fixture(scope="module")
def screens_served(make_study, live_server):
    """A study of matching screens (design clustering), whose trials are screens."""
    study = make_study("--design", "clustering", "--k", "3", "--trials-per-participant", "2")
    with live_server(create_app(study, TOKEN, completion_codes={"completed": "OK"})) as url:
        yield url


def _operations(url):
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


@pytest.mark.slow
def test_every_operation_survives_fuzzing(served):
    url = served
    operations = _operations(url)
    paths = {op.path for op in operations}
    assert {
        "/",
        "/admin",
        "/api/sessions",
        "/api/participants/{pid}/trials/{position}",
        "/api/participants/{pid}/answers",
        "/api/participants/{pid}/screens",
        "/api/participants/{pid}/comments",
        "/stimuli/{name}",
        "/api/admin/progress",
        "/api/admin/comments",
        "/api/admin/export.csv",
        "/api/admin/close",
    } <= paths
    assert _fuzz(url, operations) >= len(operations) * 2


@pytest.mark.slow
def test_participant_operations_survive_fuzzing_on_matching_screens(screens_served):
    """The participant operations again on a study whose trials are matching screens."""
    url = screens_served
    operations = [op for op in _operations(url) if op.path.startswith("/api/participants/")]
    assert "/api/participants/{pid}/screens" in {op.path for op in operations}
    assert _fuzz(url, operations) >= len(operations) * 2


def _fuzz(url, operations):
    """Fuzz ``operations``, with made-up and with real credentials; returns the calls."""
    session = httpx.post(f"{url}/api/sessions", json={"platform": "link", "pid": "fuzzed"}).json()
    participant = {"Authorization": f"Bearer {session['token']}"}
    admin = {"Authorization": f"Bearer {TOKEN}"}
    calls = 0
    for op in operations:
        fixed: list[dict] = [{}]
        if op.path.startswith("/api/participants/"):
            fixed.append(
                {"headers": participant, "path_parameters": {"pid": session["participant"]}}
            )
        elif op.path.startswith("/api/admin/"):
            fixed.append({"headers": admin})
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            for extra in fixed:

                @settings(
                    max_examples=EXAMPLES,
                    deadline=None,
                    database=None,
                    derandomize=True,
                    suppress_health_check=list(HealthCheck),
                )
                @given(case=op.as_strategy(generation_mode=mode, **extra))
                def fuzz(case):
                    nonlocal calls
                    calls += 1
                    case.call_and_validate(base_url=url)

                try:
                    fuzz()
                except Unsatisfiable:  # every input is fixed or absent: none to make invalid
                    assert mode is GenerationMode.NEGATIVE
    return calls
