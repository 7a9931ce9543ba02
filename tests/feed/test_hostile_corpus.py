"""The hostile request corpus (tests/data/hostile_requests.json) against a real server.

Every request is sent as written (signed at run time where the case says so) to the
ASGI server ``make run`` serves; each must get its expected status, a rejection at an
ingest path its expected reason code in the dead-letter, an accepted envelope must be
stored verbatim, and no request may get a 5xx.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import pytest

from clawdbot import contract
from feed_app.models import DeadLetter
from tests import hostile_corpus
from tests.liveserver import asgi_server

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

INGEST_PATHS = ("/internal/milestones/ingest", "/internal/milestones/ingest/batch")


def test_the_corpus_has_every_class_and_sixty_requests_or_more():
    cases = hostile_corpus.cases()
    assert len(cases) >= 60
    assert len({c["name"] for c in cases}) == len(cases)
    assert {"signature", "replay", "transport", "encoding", "values", "limits", "proxies",
            "columns", "integers", "read", "content"} <= {c["class"] for c in cases}


@pytest.fixture
def server(tmp_path):
    env = {"MILESTONE_REJECTION_DETAILS_PER_MINUTE": "100000",  # one row per rejection
           "MILESTONE_LOG_PATH": str(tmp_path / "milestones.jsonl"),
           "CLAWDBOT_TRUSTED_PROXIES": ""}
    with asgi_server(env) as url:
        yield url


def test_every_hostile_request_gets_its_expected_answer_and_none_a_5xx(server, operator_token):
    parts = urlsplit(server)
    address = (parts.hostname, parts.port)
    failures: list[str] = []
    server_errors: list[str] = []
    with httpx.Client(base_url=server, timeout=30) as reader:
        for case in hostile_corpus.cases():
            problems = _run(case, address, parts.netloc, operator_token, reader, server_errors)
            failures += [f"{case['name']}: {p}"[:400] for p in problems]
    assert not server_errors, "\n".join(["5xx:", *server_errors, "other failures:", *failures])
    assert not failures, "\n".join(failures)


def _run(case: dict[str, Any], address: tuple[str, int], host: str, token: str,
         reader: httpx.Client, server_errors: list[str]) -> list[str]:
    expect = case["expect"]
    last_letter = DeadLetter.objects.order_by("-id").values_list("id", flat=True).first() or 0
    request = hostile_corpus.prepare(case, host=host, token=token)
    for _ in range(case.get("repeat", 1)):
        answer = hostile_corpus.send(address, request)
        if answer.status >= 500 or answer.status == 0:
            server_errors.append(f"{case['name']}: {answer.status} {answer.body[:200]!r}")
            return []
    problems = []
    if answer.status != expect["status"]:
        problems.append(f"status {answer.status}, expected {expect['status']}: "
                        f"{answer.body[:300]!r}")
        return problems
    body = answer.json()
    if "outcome" in expect and (body or {}).get("status") != expect["outcome"]:
        problems.append(f"answer {body!r}, expected status {expect['outcome']!r}")
    if "errorsInclude" in expect and expect["errorsInclude"] not in (body or {}).get("errors", {}):
        problems.append(f"errors {body!r} do not name {expect['errorsInclude']!r}")
    if "batchItems" in expect:
        got = [item["status"] for item in (body or {}).get("results", [])]
        if got != expect["batchItems"]:
            problems.append(f"batch items {got}, expected {expect['batchItems']}")
    letters = list(DeadLetter.objects.filter(id__gt=last_letter).order_by("id"))
    if case["path"] in INGEST_PATHS and "reason" in expect:
        problems += _check_letter(letters, expect)
    elif letters and "batchItems" not in expect:
        problems.append(f"recorded {[ltr.reason_code for ltr in letters]} for a non-rejection")
    if expect.get("stored"):
        problems += _check_stored(case, expect, reader)
    return problems


def _check_letter(letters: list[DeadLetter], expect: dict[str, Any]) -> list[str]:
    if len(letters) != 1:
        return [f"{len(letters)} dead-letter rows, expected 1"]
    (letter,) = letters
    problems = []
    if (letter.http_status, letter.reason_code) != (expect["status"], expect["reason"]):
        problems.append(f"dead-letter {letter.http_status} {letter.reason_code!r}, expected "
                        f"{expect['status']} {expect['reason']!r} ({letter.reason})")
    if "remoteAddr" in expect and letter.remote_addr != expect["remoteAddr"]:
        problems.append(f"dead-letter address {letter.remote_addr!r}, "
                        f"expected {expect['remoteAddr']!r}")
    return problems


def _check_stored(case: dict[str, Any], expect: dict[str, Any],
                  reader: httpx.Client) -> list[str]:
    sent = contract.parse_json(hostile_corpus.body_of(case))
    key = expect.get("key", sent["idempotencyKey"])
    response = reader.get(f"/api/milestones/{quote(key, safe='')}")
    if response.status_code != 200:
        return [f"stored milestone answers {response.status_code}"]
    stored = response.json()["item"] if "item" in response.json() else response.json()
    event = {k: v for k, v in stored.items() if k in sent["event"]}
    problems = []
    # Equal as JavaScript reads them: jsonb keeps 1e21 as 1000000000000000000000.
    if contract.canonical_json(event) != contract.canonical_json(sent["event"]):
        problems.append("the stored event is not the event sent")
    for field, value in expect.get("storedEvent", {}).items():
        if stored.get(field) != value:
            problems.append(f"stored {field} is {stored.get(field)!r}, expected {value!r}")
    return problems
