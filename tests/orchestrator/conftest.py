"""Fixtures of the orchestrator tests: settings isolation, a fake transport, a receiver."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrator_app.transport import TransportResponse
from tests.orchestrator.factories import LEGACY_SECRET, WEBHOOK_SECRET

RECEIVER = Path(__file__).with_name("receiver.py")


@pytest.fixture(autouse=True)
def _outbox_settings(settings, tmp_path):
    """No implicit default target; the JSONL log under tmp_path; short leases."""
    settings.MILESTONE_INGEST_URL = ""
    settings.MILESTONE_LOG_PATH = tmp_path / "milestones.jsonl"
    settings.MILESTONE_RETRY_SCHEDULE = "0,0"
    settings.MILESTONE_LEASE_MARGIN_S = 1.0


@dataclass
class FakeTransport:
    """Answers from a script (then ``default``) and remembers every request."""

    script: list[TransportResponse] = field(default_factory=list)
    default: TransportResponse = field(
        default_factory=lambda: TransportResponse(200, b'{"ok":true,"status":"accepted"}'))
    requests: list[dict[str, Any]] = field(default_factory=list)

    def post(self, url: str, *, body: bytes, headers: Any, timeout: float,
             max_body: int = 0) -> TransportResponse:
        self.requests.append({"url": url, "body": body, "headers": dict(headers),
                              "timeout": timeout})
        return self.script.pop(0) if self.script else self.default


@pytest.fixture
def transport() -> FakeTransport:
    return FakeTransport()


class Receiver:
    """A receiver process (``receiver.py``) verifying with the factories' secrets."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(RECEIVER), "--legacy-secret", LEGACY_SECRET,
             "--webhook-secret", WEBHOOK_SECRET], stdout=subprocess.PIPE, text=True)
        port = int(self.proc.stdout.readline().split()[1])
        self.base = f"http://127.0.0.1:{port}"
        self.url = f"{self.base}/internal/milestones/ingest"

    def control(self, *, script: list[dict] | None = None, default: dict | None = None) -> None:
        body = {"script": script or [], "default": default or {"status": 200}}
        httpx.post(f"{self.base}/_control", content=json.dumps(body), timeout=5)

    def log(self) -> list[dict]:
        return httpx.get(f"{self.base}/_log", timeout=5).json()["requests"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


@pytest.fixture
def receiver_b():
    made = Receiver()
    yield made
    made.stop()
