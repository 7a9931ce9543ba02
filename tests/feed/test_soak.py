"""A small soak (``make soak`` at 5,000 envelopes): exactly once under concurrent senders.

64 wrk connections send 5,000 signed envelopes to the server ``make run`` serves, 10 %
of them repeats of an earlier one (possibly still in flight) and 5 % invalid (wrong secret,
or an event without its claim). Every valid key must be stored exactly once and answered
accepted once and duplicate for each repeat, every invalid request must be counted as a
rejection of its reason (aggregate rows included: one address sends them all, past the
per-minute detail limit), and nothing may answer 5xx. Timing is not asserted here.
"""

from __future__ import annotations

import shutil

import pytest

from bench.soak import soak
from tests.liveserver import asgi_server

pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk (Debian package) not installed"),
    pytest.mark.timeout(600),
]


def test_soak_5000_envelopes_every_valid_key_stored_once_every_invalid_counted():
    with asgi_server() as url:
        verdict = soak(url, None, 5000, deadline_s=480)
    assert verdict.problems == []
    assert verdict.figures["rejection_aggregate_rows"] >= 1  # the rate limit was exercised
