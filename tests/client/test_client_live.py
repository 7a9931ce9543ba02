"""The client against a real server (the ASGI app ``make run`` serves, on the test DB)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys

import pytest
from clawdbot_client import AsyncClient, Client
from clawdbot_client.spool import Spool

from orchestrator_app.models import EmittedMilestone
from tests.factories import MilestoneEventFactory
from tests.helpers import wait_for
from tests.liveserver import _free_port, asgi_server

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def server_env(tmp_path) -> dict[str, str]:
    return {"MILESTONE_LOG_PATH": str(tmp_path / "milestones.jsonl"), "MILESTONE_INGEST_URL": ""}


def _stored_keys() -> list[str]:
    return list(EmittedMilestone.objects.order_by("position")
                .values_list("idempotency_key", flat=True))


def test_a_down_server_spools_and_the_restart_drains_each_once_in_order(
        operator_token, server_env, tmp_path):
    port = _free_port()
    client = Client(f"http://127.0.0.1:{port}", operator_token, spool_path=tmp_path / "s.jsonl")
    with asgi_server(server_env, port=port):
        first = client.emit(MilestoneEventFactory())
        assert client.flush(20) == 0
    spooled = [client.emit(MilestoneEventFactory()) for _ in range(10)]  # the server is down
    assert client.flush(0.5) == 10
    with asgi_server(server_env, port=port):
        assert client.flush(30) == 0
    client.close(timeout=0)
    assert _stored_keys() == [first, *spooled]


def _drain_command(url: str, path) -> list[str]:
    return [sys.executable, "-m", "clawdbot_client", "flush", "--url", url, "--spool", str(path),
            "--timeout", "120"]


def test_a_client_killed_mid_drain_loses_and_doubles_nothing(operator_token, server_env, tmp_path):
    path = tmp_path / "s.jsonl"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    offline = Client(url, operator_token, spool_path=path)
    keys = [offline.emit(MilestoneEventFactory()) for _ in range(150)]  # nothing answers yet
    offline.close(timeout=0)
    with asgi_server(server_env, port=port):
        env = {**os.environ, "CLAWDBOT_TOKEN": operator_token}
        drainer = subprocess.Popen(_drain_command(url, path), env=env, stdout=subprocess.PIPE)
        wait_for(lambda: EmittedMilestone.objects.count() >= 20, timeout=60, what="a drain")
        os.kill(drainer.pid, signal.SIGKILL)
        drainer.wait()
        left_at_kill = Spool(path).pending()
        assert 0 < left_at_kill < 150  # killed mid-drain, not before or after
        again = subprocess.run(_drain_command(url, path), env=env, capture_output=True,
                               text=True, timeout=120, check=True)
    assert again.stdout.strip() == "0"
    assert _stored_keys() == keys


class DeployFailed(Exception):
    pass


def _deploy_summariser() -> None:
    raise DeployFailed("summariser image not found")


def test_an_exception_inside_track_is_reraised_unchanged_with_a_blocked_milestone(
        operator_token, server_env, tmp_path):
    with asgi_server(server_env) as url:
        client = Client(url, operator_token, spool_path=tmp_path / "s.jsonl")
        with pytest.raises(DeployFailed) as caught, client.track(
                "deploy.summariser", scope="deploy", claim="Summariser deployed."):
            _deploy_summariser()
        assert client.flush(20) == 0
        client.close(timeout=0)
    assert str(caught.value) == "summariser image not found"
    assert caught.traceback[-1].name == "_deploy_summariser"  # the body's own traceback
    started, blocked = EmittedMilestone.objects.order_by("position")
    assert [started.event["riskStatus"], blocked.event["riskStatus"]] == ["on-track", "blocked"]
    assert {started.milestone_id, blocked.milestone_id} == {"deploy.summariser"}
    log = blocked.event["evidence"][0]
    assert log["type"] == "log"
    assert log["summary"] == "DeployFailed: summariser image not found"
    assert "_deploy_summariser" in log["path"]
    assert "Traceback (most recent call last)" in log["ref"] and "_deploy_summariser" in log["ref"]


def test_track_and_the_decorator_emit_on_track_then_completed(
        operator_token, server_env, tmp_path):
    with asgi_server(server_env) as url:
        client = Client(url, operator_token, spool_path=tmp_path / "s.jsonl")

        @client.milestone("reports.nightly", scope="reports", claim="Nightly report built.",
                          evidence=[{"type": "doc", "path": "reports/nightly.md",
                                     "summary": "the report"}])
        def build() -> str:
            return "built"

        assert build() == "built"
        assert client.flush(20) == 0
        client.close(timeout=0)
    events = [m.event for m in EmittedMilestone.objects.order_by("position")]
    assert [(e["riskStatus"], e["claim"]) for e in events] == [
        ("on-track", "Nightly report built."), ("completed", "Completed: Nightly report built.")]
    assert events[1]["evidence"][0]["path"] == "reports/nightly.md"


def test_the_asyncio_client_spools_and_drains_the_same_way(operator_token, server_env, tmp_path):
    port = _free_port()

    async def offline() -> list[str]:
        client = AsyncClient(f"http://127.0.0.1:{port}", operator_token,
                             spool_path=tmp_path / "s.jsonl")
        keys = [await client.emit(MilestoneEventFactory()) for _ in range(3)]
        async with client.track("job.async", scope="jobs", claim="Async job ran."):
            pass
        assert await client.aclose(timeout=0.2) == 5
        return keys

    async def online() -> int:
        async with AsyncClient(f"http://127.0.0.1:{port}", operator_token,
                               spool_path=tmp_path / "s.jsonl") as client:
            return await client.flush(30)

    keys = asyncio.run(offline())
    with asgi_server(server_env, port=port):
        assert asyncio.run(online()) == 0
    stored = EmittedMilestone.objects.order_by("position")
    assert [m.idempotency_key for m in stored][:3] == keys
    assert [m.event["riskStatus"] for m in stored][3:] == ["on-track", "completed"]
