"""The batch ingest over real HTTP, on the ASGI server ``make run`` serves: mixed batches,
a replay, wrong signatures, and the WebSocket sees batch items as single ingests."""

from __future__ import annotations

import http.client
import json
import socket

import httpx
import pytest
from websockets.sync.client import connect

from clawdbot import contract
from feed_app.models import DeadLetter, FeedItem
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.feed.test_ingest_batch import batch_of, signed_batch
from tests.liveserver import asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def test_batches_over_http_mixed_replayed_and_forged():
    first = [EnvelopeFactory() for _ in range(30)]
    invalid = EnvelopeFactory(event=MilestoneEventFactory(riskStatus="fine"))
    second = [EnvelopeFactory() for _ in range(20)]
    mixed = batch_of(second[:10] + [invalid] + first[:5] + second[:3] + second[10:])
    with asgi_server() as server, httpx.Client(base_url=server, timeout=30) as client:
        url = f"{server.replace('http', 'ws', 1)}/ws/milestones/?after=0"
        with connect(url, open_timeout=10) as ws:
            answers = []
            for batch in (batch_of(first), mixed):
                body, headers = signed_batch(batch, webhook=batch is mixed)
                answers.append(client.post("/internal/milestones/ingest/batch", content=body,
                                           headers=headers))
            messages = [json.loads(ws.recv(timeout=10)) for _ in range(50)]
        replay_body, replay_headers = signed_batch(mixed, webhook=True)
        replay = client.post("/internal/milestones/ingest/batch", content=replay_body,
                             headers=replay_headers)
        forged_body = contract.envelope_bytes({**mixed, "envelopes": mixed["envelopes"][:2]})
        forged = client.post("/internal/milestones/ingest/batch", content=forged_body,
                             headers=replay_headers)
        single_body, single_headers = signed(second[0])
        single = client.post("/internal/milestones/ingest", content=single_body,
                             headers=single_headers)

    assert [a.status_code for a in answers] == [200, 200]
    assert [r["status"] for r in answers[0].json()["results"]] == ["accepted"] * 30
    statuses = [r["status"] for r in answers[1].json()["results"]]
    assert statuses == ["accepted"] * 10 + ["rejected"] + ["duplicate"] * 8 + ["accepted"] * 10
    assert [r["status"] for r in replay.json()["results"]] == (
        ["duplicate"] * 10 + ["rejected"] + ["duplicate"] * 18)
    assert forged.status_code == 401 and forged.json()["ok"] is False
    assert single.status_code == 200 and single.json()["status"] == "duplicate"

    stored = [e["idempotencyKey"] for e in first + second[:10] + second[10:]]
    assert list(FeedItem.objects.order_by("position").values_list(
        "idempotency_key", flat=True)) == stored
    assert [m["idempotencyKey"] for m in messages] == stored, "WebSocket in position order"
    positions = [m["position"] for m in messages]
    assert positions == sorted(positions)
    assert sorted(DeadLetter.objects.values_list("reason_code", flat=True)) == [
        "invalid_event", "invalid_event", "signature_invalid"]


def _post(sock: socket.socket, path: str, body: bytes, headers: dict[str, str]
          ) -> http.client.HTTPResponse:
    """One request on ``sock`` (kept open by the client); the answer, read whole."""
    lines = [f"POST {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
             *(f"{k}: {v}" for k, v in {"Content-Type": "application/json", **headers}.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    response = http.client.HTTPResponse(sock)
    response.begin()
    response.read()
    return response

def test_a_batch_answer_closes_its_connection_and_a_single_ingest_keeps_it():
    """A batch is seconds of one process's CPU: answered with ``Connection: close``, the
    sender's next batch is accepted by whichever web process is free instead of queueing
    behind a busy one; single ingests stay on their keep-alive connection."""
    body, headers = signed_batch(batch_of([EnvelopeFactory() for _ in range(3)]))
    single_body, single_headers = signed(EnvelopeFactory())
    with asgi_server() as server:
        address = ("127.0.0.1", int(server.rsplit(":", 1)[1]))
        with socket.create_connection(address, timeout=10) as sock:
            single = _post(sock, "/internal/milestones/ingest", single_body, single_headers)
            assert single.status == 200 and single.getheader("connection") is None
            answer = _post(sock, "/internal/milestones/ingest/batch", body, headers)
            assert answer.status == 200 and answer.getheader("connection") == "close"
            assert sock.recv(1) == b"", "the server closed the connection after the batch"
    assert FeedItem.objects.count() == 4
