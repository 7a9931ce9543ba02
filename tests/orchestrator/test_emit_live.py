"""The emit API against a real server: concurrent retries, and a JSONL log that fails."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from orchestrator_app.models import Delivery, EmittedMilestone
from orchestrator_app.services.milestone_log import milestone_log_catch_up
from tests.factories import MilestoneEventFactory
from tests.liveserver import asgi_server
from tests.orchestrator.factories import TargetFactory

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]
CONCURRENT = 24


def _at_once(url: str, token: str, bodies: list[dict], key: str) -> list[httpx.Response]:
    start_line = threading.Barrier(len(bodies))

    def post(body: dict) -> httpx.Response:
        with httpx.Client(timeout=30) as http:
            start_line.wait()
            return http.post(url, json=body, headers={"Authorization": f"Token {token}",
                                                      "Idempotency-Key": key})

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        return list(pool.map(post, bodies))


def test_concurrent_requests_with_one_key_make_exactly_one_milestone(operator_token, tmp_path):
    TargetFactory(name="a")
    same = {"event": MilestoneEventFactory()}
    two = [{"event": MilestoneEventFactory(claim=f"claim {i}")} for i in range(2)]
    with asgi_server({"MILESTONE_LOG_PATH": str(tmp_path / "m.jsonl")}) as server:
        url = f"{server}/api/orchestrator/milestones"
        retries = _at_once(url, operator_token, [same] * CONCURRENT, "concurrent-key")
        contested = _at_once(url, operator_token, [two[i % 2] for i in range(CONCURRENT)],
                             "contested-key")

    # Retries of one request: one milestone, and every answer is the first answer.
    assert {r.status_code for r in retries} == {202}
    assert len({r.text for r in retries}) == 1
    assert [r.headers.get("Idempotent-Replayed") for r in retries].count(None) == 1
    first = EmittedMilestone.objects.get(pk="concurrent-key")
    assert Delivery.objects.filter(idempotency_key=first.pk).count() == len(
        retries[0].json()["deliveries"])
    # Two different bodies racing for one key: the winner's retries 202, the other's 409.
    winner = EmittedMilestone.objects.get(pk="contested-key")
    codes: dict[bool, set[int]] = {}
    for i, response in enumerate(contested):
        won = two[i % 2]["event"]["claim"] == winner.event["claim"]
        codes.setdefault(won, set()).add(response.status_code)
    assert codes == {True: {202}, False: {409}}
    assert EmittedMilestone.objects.count() == 2


def test_a_log_that_cannot_be_written_still_answers_202_and_a_retry_the_same(
        operator_token, tmp_path):
    TargetFactory(name="a")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the log's folder should be")
    body = {"event": MilestoneEventFactory()}
    headers = {"Authorization": f"Token {operator_token}", "Idempotency-Key": "log-fails"}
    with asgi_server({"MILESTONE_LOG_PATH": str(blocker / "milestones.jsonl")}) as server:
        url = f"{server}/api/orchestrator/milestones"
        first = httpx.post(url, json=body, headers=headers, timeout=30)
        retry = httpx.post(url, json=body, headers=headers, timeout=30)
    assert first.status_code == 202, first.text
    assert retry.status_code == 202 and retry.json() == first.json()
    assert EmittedMilestone.objects.count() == 1


def test_the_log_catches_up_once_it_can_be_written(settings, tmp_path):
    TargetFactory(name="a")
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.MILESTONE_LOG_PATH = blocker / "milestones.jsonl"
    from orchestrator_app.services.emit import milestone_emit
    emitted = [milestone_emit(event=MilestoneEventFactory()) for _ in range(3)]  # on_commit ran
    with pytest.raises(OSError):
        milestone_log_catch_up()
    settings.MILESTONE_LOG_PATH = tmp_path / "fixed" / "milestones.jsonl"
    assert milestone_log_catch_up() == 3
    assert milestone_log_catch_up() == 0
    lines = [json.loads(x) for x in settings.MILESTONE_LOG_PATH.read_text().split("\n") if x]
    assert lines == [{"sentAtUtc": e.sent_at_utc, "event": e.event} for e in emitted]
