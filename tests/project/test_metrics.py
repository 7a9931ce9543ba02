"""``/metrics``: Prometheus text, access, and the same counts whichever process answers."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from orchestrator_app.services.emit import milestone_emit
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.liveserver import asgi_server
from tests.orchestrator.factories import TargetFactory

INGEST = "/internal/milestones/ingest"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a scrape, parsed by Prometheus' own parser, by name and labels."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


@pytest.mark.django_db
def test_metrics_are_for_operators_and_callers_on_this_host(client, operator_token):
    far = {"REMOTE_ADDR": "203.0.113.9"}
    refused = client.get("/metrics", **far)
    assert refused.status_code == 401
    assert "operator token" in refused.json()["reason"]
    assert client.get("/metrics", **far, HTTP_AUTHORIZATION=f"Token {operator_token}"
                      ).status_code == 200
    local = client.get("/metrics", REMOTE_ADDR="127.0.0.1")
    assert local.status_code == 200
    assert local["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_the_outbox_state_is_read_from_the_database(client):
    TargetFactory(name="slow", url="http://127.0.0.1:9/ingest")
    for _ in range(3):
        milestone_emit(event=MilestoneEventFactory())
    samples = _samples(client.get("/metrics").content.decode())
    assert samples[("clawdbot_outbox_due", (("target", "slow"),))] == 3
    assert samples[("clawdbot_outbox_oldest_due_seconds", (("target", "slow"),))] >= 0
    assert samples[("clawdbot_outbox_deliveries", (("status", "pending"),))] >= 3
    assert samples[("clawdbot_dead_letters", (("side", "outbox"),))] == 0
    assert samples[("clawdbot_workers_alive", ())] == 0
    assert samples[("clawdbot_event_log_position", ())] > 0


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_counts_are_the_same_whichever_of_several_web_processes_answers(tmp_path):
    with asgi_server({"WEB_CONCURRENCY": "2", "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
                     ) as url, httpx.Client(base_url=url, timeout=10) as http:
        envelopes = [EnvelopeFactory() for _ in range(12)]
        for envelope in envelopes:
            body, headers = signed(envelope)
            assert http.post(INGEST, content=body, headers=headers).status_code == 200
        for envelope in envelopes[:4]:  # sent again: duplicates
            body, headers = signed(envelope)
            assert http.post(INGEST, content=body, headers=headers).json()["status"] == \
                "duplicate"
        bad_body, bad_headers = signed()
        bad_headers = {**bad_headers, "x-openclaw-signature": "0" * 64}
        assert http.post(INGEST, content=bad_body, headers=bad_headers).status_code == 401
        scrapes = []
        for _ in range(8):  # a new connection each time: either process may answer
            response = httpx.get(f"{url}/metrics", timeout=10)
            assert response.status_code == 200
            scrapes.append(_samples(response.text))
    for samples in scrapes:
        ingest = {labels: value for (name, labels), value in samples.items()
                  if name == "clawdbot_ingest_total"}
        assert ingest[(("reason", ""), ("status", "accepted"))] == 12
        assert ingest[(("reason", ""), ("status", "duplicate"))] == 4
        assert sum(v for labels, v in ingest.items() if ("status", "rejected") in labels) == 1
        assert samples[("clawdbot_ws_connections", ())] == 0
