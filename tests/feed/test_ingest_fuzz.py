"""Fuzzing the ingest: thousands of malformed bodies and headers, never a 5xx, and nothing
stored but dead-letter rows (property tests on the real view and database)."""

from __future__ import annotations

import json
import string

import pytest
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clawdbot import contract
from clawdbot.eventstore import store
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory
from tests.feed.conftest import IngestClient
from tests.feed.factories import signed

pytestmark = pytest.mark.django_db

FUZZ = settings(
    max_examples=700,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
HEADER_NAMES = ["x-openclaw-signature", "x-openclaw-timestamp", "webhook-id",
                "webhook-timestamp", "webhook-signature"]
header_values = st.text(alphabet=string.printable.strip() + " é", max_size=80)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text()
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _only_dead_letters_added(before: tuple[int, int, int]) -> None:
    """One rejection counted in the dead-letter (a row or an aggregate's count), no event."""
    events, rejections, items = before
    assert FeedItem.objects.count() == items
    assert store.count() == events
    assert _rejections() == rejections + 1


def _rejections() -> int:
    return DeadLetter.objects.aggregate(n=Sum("count"))["n"] or 0


def _counts() -> tuple[int, int, int]:
    return store.count(), _rejections(), FeedItem.objects.count()


@FUZZ
@given(body=st.binary(max_size=600), headers=st.dictionaries(st.sampled_from(HEADER_NAMES),
                                                             header_values))
def test_random_bytes_and_headers_are_rejected_without_5xx(db, body, headers):
    before = _counts()
    response = IngestClient().post(body, headers)
    assert response.status_code in (400, 401), response.content
    assert response.json()["ok"] is False
    _only_dead_letters_added(before)


@FUZZ
@given(payload=json_values)
def test_signed_random_json_is_rejected_with_a_400(db, payload):
    before = _counts()
    body = json.dumps(payload).encode("utf-8", "surrogatepass")
    _, headers = signed({"idempotencyKey": "x"}, body=body)
    response = IngestClient().post(body, headers)
    assert response.status_code == 400, response.content
    _only_dead_letters_added(before)


def _mutate(envelope: dict, path: list[str], value: object, delete: bool) -> dict:
    node = envelope
    for key in path[:-1]:
        node = node[key]
    if delete:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
    return envelope


PATHS = [["idempotencyKey"], ["sentAtUtc"], ["event"], ["event", "milestoneId"],
         ["event", "timestampUtc"], ["event", "scope"], ["event", "claim"],
         ["event", "evidence"], ["event", "riskStatus"], ["event", "nextAction"],
         ["event", "source"]]


@FUZZ
@given(path=st.sampled_from(PATHS), value=json_values, delete=st.booleans(),
       webhook=st.booleans())
def test_signed_mutated_envelopes_are_accepted_only_when_valid(db, path, value, delete, webhook):
    envelope = _mutate(EnvelopeFactory(), path, value, delete)
    before = _counts()
    body = contract.envelope_bytes(envelope)
    key = envelope.get("idempotencyKey")
    _, headers = signed({"idempotencyKey": key if isinstance(key, str) else ""}, body=body,
                        legacy=not webhook, webhook=webhook)
    response = IngestClient().post(body, headers)
    assert response.status_code in (200, 400, 401), response.content
    if response.status_code != 200:
        _only_dead_letters_added(before)
        return
    assert response.json()["status"] in ("accepted", "duplicate")
    contract.validate_envelope(contract.parse_json(body))  # the contract agrees it is valid
