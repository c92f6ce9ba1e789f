"""The clients' retry policy and the load simulator's refusal to leave this machine."""

import json
import random
import re

import pytest
from _load import LoadReport, simulate

from percalign.errors import ConfigError
from percalign.survey import pages
from percalign.survey.client import POLICY, Backoff, retryable


def test_backoff_grows_to_its_cap_with_jitter_and_honours_retry_after():
    b = Backoff(tries=10, base_s=0.5, cap_s=4.0)
    rng = random.Random(0)
    waits = [b.delay(a, rng) for a in range(8)]
    assert 0.25 <= waits[0] < 0.5 and all(w < 4.0 for w in waits)  # the cap, jitter included
    assert all(w >= 2.0 for w in waits[3:])  # capped at 4 s, times a jitter in [0.5, 1)
    assert len({round(w, 6) for w in waits[3:]}) == len(waits[3:])  # still spread at the cap
    assert b.delay(0, rng, retry_after="3") >= 3.0  # the server's hint wins when longer
    assert b.delay(0, rng, retry_after="60") == 4.0  # but never beyond the cap
    assert b.delay(0, rng, retry_after="Wed, 21 Oct 2015 07:28:00 GMT") < 0.5
    assert [retryable(s) for s in (200, 404, 409, 429, 500, 503)] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(("field", "value"), [("tries", 0), ("base_s", -1.0), ("cap_s", -2.0)])
def test_backoff_refuses_bad_settings(field, value):
    with pytest.raises(ConfigError, match=f"'{field}' parameter of Backoff"):
        Backoff(**{field: value})


def test_no_wait_exceeds_the_cap():
    b = Backoff(tries=4, base_s=1.0, cap_s=3.0)
    rng = random.Random(1)
    assert max(b.delay(a, rng) for a in range(50) for _ in range(20)) < 3.0


def _script_policy(html: str) -> dict:
    found = re.search(r"const RETRY = (\{[^}]*\});", html)
    assert found, "the page script defines no RETRY"
    return json.loads(found.group(1))


def test_the_page_retries_by_the_python_policy(monkeypatch):
    html, _ = pages.participant_page({})
    assert _script_policy(html) == {"tries": 20, "base_ms": 250, "cap_ms": 12000}
    assert _script_policy(html) == POLICY.for_page()
    script = html[html.index("const retryWait") :]
    # every wait and try count of the page's retries comes from RETRY, none is written in
    assert "retryWait(i)" in script and "tries=RETRY.tries" in script
    assert not re.search(r"\d\*2\*\*|\b12000\b|tries=\d", script)
    other = Backoff(tries=5, base_s=0.1, cap_s=2.0)
    monkeypatch.setattr(pages, "POLICY", other)
    html, _ = pages.participant_page({})
    assert _script_policy(html) == {"tries": 5, "base_ms": 100, "cap_ms": 2000}


def test_the_page_version_follows_the_policy(monkeypatch):
    before = pages.page_version({}, [], 400)
    monkeypatch.setattr(pages, "POLICY", Backoff(tries=3))
    assert pages.page_version({}, [], 400) != before


@pytest.mark.parametrize(
    "url", ["http://192.168.1.10:8000", "https://127.0.0.1:8000", "http://example.org:80", "x"]
)
def test_simulated_load_goes_to_this_machine_only(url):
    with pytest.raises(ConfigError, match=r"only to http://127\.0\.0\.1"):
        simulate(url, 1, bot_token="x")


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert LoadReport.percentile(values, 0.5) == 50.0
    assert LoadReport.percentile(values, 0.99) == 99.0
    assert LoadReport.percentile([7.0], 0.99) == 7.0
