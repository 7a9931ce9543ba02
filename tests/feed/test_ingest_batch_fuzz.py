"""Fuzzing the batch ingest: each item's answer is the one a single ingest gives it.

Every generated batch has a twin sequence of single ingests with the same envelopes under
other keys (a prefix), against the same database; the answers must match item by item.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.factories import EnvelopeFactory
from tests.feed.conftest import IngestClient
from tests.feed.test_ingest_batch import batch_of, send
from tests.feed.test_ingest_fuzz import PATHS, _mutate, json_values

pytestmark = pytest.mark.django_db

FUZZ = settings(max_examples=40, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

# An item: a fresh valid envelope, a mutated one, a repeat of an earlier item's key, or a
# key stored before the batch.
items = st.lists(st.one_of(
    st.tuples(st.just("fresh")),
    st.tuples(st.just("mutated"), st.sampled_from(PATHS), json_values, st.booleans()),
    st.tuples(st.just("repeat"), st.integers(min_value=0, max_value=30)),
    st.tuples(st.just("stored")),
), min_size=1, max_size=25)


def _rekeyed(envelope: Any, prefix: str) -> Any:
    twin = copy.deepcopy(envelope)
    if isinstance(twin, dict) and isinstance(twin.get("idempotencyKey"), str) \
            and twin["idempotencyKey"].startswith("k-"):
        twin["idempotencyKey"] = prefix + twin["idempotencyKey"]
    return twin


def _single_answer(response: Any) -> dict[str, Any]:
    body = response.json()
    if response.status_code == 200:
        return {"status": body["status"], "milestoneId": body["milestoneId"]}
    assert response.status_code == 400, body
    answer = {"status": "rejected", "reason": body["reason"]}
    if body.get("errors"):
        answer["errors"] = body["errors"]
    return answer


def _batch_answer(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k != "idempotencyKey"}


@FUZZ
@given(plan=items)
def test_each_batch_item_is_answered_as_its_single_ingest(db, plan):
    run = uuid.uuid4().hex[:8]
    stored = EnvelopeFactory(idempotencyKey=f"k-{run}-stored")
    envelopes: list[Any] = []
    for step in plan:
        if step[0] == "fresh":
            envelopes.append(EnvelopeFactory(idempotencyKey=f"k-{run}-{len(envelopes)}"))
        elif step[0] == "mutated":
            _, path, value, delete = step
            base = EnvelopeFactory(idempotencyKey=f"k-{run}-{len(envelopes)}")
            envelopes.append(_mutate(base, path, copy.deepcopy(value), delete))
        elif step[0] == "repeat" and envelopes:
            earlier = envelopes[step[1] % len(envelopes)]
            envelopes.append(EnvelopeFactory(idempotencyKey=earlier.get("idempotencyKey")
                                             if isinstance(earlier, dict) else None))
        else:
            envelopes.append(copy.deepcopy(stored))
    single = IngestClient()
    single.send(_rekeyed(stored, "s"))
    send(batch_of([_rekeyed(stored, "b")]))

    singles = [_single_answer(single.send(_rekeyed(e, "s"))) for e in envelopes]
    response = send(batch_of([_rekeyed(e, "b") for e in envelopes]))
    assert response.status_code == 200, response.content
    assert [_batch_answer(item) for item in response.json()["results"]] == singles
