"""The pipeline's own milestones end to end: a real web server delivering to itself, a real
worker, a receiver that dies and recovers, and the live page in Chromium."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.browser import BROWSER_MARKS
from tests.factories import MilestoneEventFactory
from tests.liveserver import _free_port, asgi_server
from tests.orchestrator.factories import TargetFactory
from tests.orchestrator.test_worker import _qcluster

SHOTS = Path(os.environ.get("CLAWDBOT_SCREENSHOTS", "/tmp"))
AT_RISK = "Deliveries to target flaky are failing."
RECOVERED = "Deliveries to target flaky succeed again."

pytestmark = [
    *BROWSER_MARKS, pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def flaky(receiver):
    """Made before the browser starts: Playwright's sync API runs an event loop, and
    Django refuses database calls from a thread that has one."""
    receiver.control(default={"status": 503})
    return TargetFactory(name="flaky", url=receiver.url, retry_schedule="0")



def test_a_target_that_dies_and_recovers_shows_live_on_the_page(
        operator_token, receiver, flaky, browser, tmp_path):
    port = _free_port()
    env = {"MILESTONE_INGEST_URL": f"http://127.0.0.1:{port}/internal/milestones/ingest",
           "MILESTONE_LOG_PATH": str(tmp_path / "milestones.jsonl"),
           "CLAWDBOT_PIPELINE_MILESTONES": "1", "CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S": "2"}
    with asgi_server(env, port=port) as server:
        worker = _qcluster(**env)
        try:
            page = browser.new_page()
            page.goto(server + "/")
            page.wait_for_selector("#status[data-state=live]")

            def emit() -> None:
                response = httpx.post(f"{server}/api/orchestrator/milestones",
                                      json={"event": MilestoneEventFactory()}, timeout=30,
                                      headers={"Authorization": f"Token {operator_token}"})
                assert response.status_code == 202

            emit()  # flaky answers 503 twice: dead-letter
            at_risk = page.locator("#feed li.milestone", has_text=AT_RISK)
            at_risk.wait_for(timeout=60_000)
            assert at_risk.locator(".risk").inner_text() == "at-risk"
            assert at_risk.locator(".scope").inner_text() == "delivery"
            page.screenshot(path=str(SHOTS / "pipeline-at-risk.png"), full_page=True)

            receiver.control(default={"status": 200})
            emit()  # delivered to flaky: it has recovered
            recovered = page.locator("#feed li.milestone", has_text=RECOVERED)
            recovered.wait_for(timeout=60_000)
            assert recovered.locator(".risk").inner_text() == "completed"
            page.screenshot(path=str(SHOTS / "pipeline-recovered.png"), full_page=True)
            assert page.locator("#feed li.milestone", has_text=AT_RISK).count() == 1
        finally:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
