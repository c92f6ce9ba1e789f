"""The clients' retry policy and the load simulator's refusal to leave this machine."""

import random

import pytest
from _load import LoadReport, simulate

from percalign.errors import ConfigError
from percalign.survey.client import Backoff, retryable


def test_backoff_grows_to_its_cap_with_jitter_and_honours_retry_after():
    b = Backoff(tries=10, base_s=0.5, cap_s=4.0)
    rng = random.Random(0)
    waits = [b.delay(a, rng) for a in range(8)]
    assert all(0.25 <= w < 0.75 for w in waits[:1]) and all(w < 6.0 for w in waits)
    assert all(w >= 2.0 for w in waits[3:])  # capped at 4 s, times a jitter in [0.5, 1.5)
    assert b.delay(0, rng, retry_after="3") >= 3.0  # the server's hint wins when longer
    assert b.delay(0, rng, retry_after="60") <= 4.0 * 1.5  # but never beyond the cap
    assert b.delay(0, rng, retry_after="Wed, 21 Oct 2015 07:28:00 GMT") < 0.75
    assert [retryable(s) for s in (200, 404, 409, 429, 500, 503)] == [0, 0, 0, 1, 1, 1]


@pytest.mark.parametrize(("field", "value"), [("tries", 0), ("base_s", -1.0), ("cap_s", -2.0)])
def test_backoff_refuses_bad_settings(field, value):
    with pytest.raises(ConfigError, match=f"'{field}' parameter of Backoff"):
        Backoff(**{field: value})


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
