"""The production shape on one machine: two web servers on two ports and two workers, all
on one database, once without Redis and once with it (SPEC §6; docs/OPERATIONS.md).

- A WebSocket client of one server receives what is ingested through the other, and what
  the orchestrator API of one server emits, delivered by a worker to the other's ingest.
- Two workers share the outbox without sending anything twice.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from urllib.parse import urlparse

import httpx
import pytest
from websockets.sync.client import connect

from orchestrator_app.models import Delivery, DeliveryAttempt, Status
from tests.factories import EnvelopeFactory, MilestoneEventFactory
from tests.feed.factories import signed
from tests.helpers import wait_for
from tests.liveserver import _answers, _free_port, procfile_process
from tests.orchestrator.conftest import Receiver
from tests.orchestrator.factories import TargetFactory

REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
DELIVERIES = 40


def _redis_answers(url: str) -> bool:
    parsed = urlparse(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 6379),
                                      timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


pytestmark = [pytest.mark.slow, pytest.mark.timeout(300),
              pytest.mark.django_db(transaction=True)]

WITHOUT_REDIS = pytest.param({}, id="postgres-only")
WITH_REDIS = pytest.param(
    {"REDIS_URL": REDIS_URL}, id="redis",
    marks=[pytest.mark.redis, pytest.mark.skipif(not _redis_answers(REDIS_URL),
                                                 reason=f"no Redis answers at {REDIS_URL}")])


@pytest.fixture(params=[WITHOUT_REDIS, WITH_REDIS])
def shape(request, tmp_path) -> Iterator[dict]:
    """Two web servers (two ports) and two workers sharing the test database, each started
    from its Procfile line (the commands docker-compose.yml runs)."""
    port_a, port_b = _free_port(), _free_port()
    # A django-q2 cluster name of its own, so nothing queued in Redis by another run is
    # taken by these workers.
    env = {**request.param, "Q_CLUSTER_NAME": f"clawdbot-test-{uuid.uuid4().hex[:8]}",
           "MILESTONE_INGEST_URL": f"http://127.0.0.1:{port_b}/internal/milestones/ingest",
           "MILESTONE_RETRY_SCHEDULE": "0", "HOST": "127.0.0.1", "WEB_CONCURRENCY": "1",
           "Q_WORKERS": "1", "MILESTONE_LEASE_MARGIN_S": "1", "LOG_LEVEL": "WARNING",
           "CLAWDBOT_PIPELINE_MILESTONES": "0", "MILESTONE_LOG_PATH": os.devnull}
    logs = tmp_path / "logs"
    logs.mkdir()
    with ExitStack() as stack:
        processes = {}
        for name, role, port in [("web-a", "web", port_a), ("web-b", "web", port_b),
                                 ("worker-1", "worker", None), ("worker-2", "worker", None)]:
            log = stack.enter_context((logs / name).open("wb"))
            extra = {"PORT": str(port)} if port else {}
            processes[name] = procfile_process(role, {**env, **extra}, log)
            stack.callback(_stop_group, processes[name])
        urls = {"a": f"http://127.0.0.1:{port_a}", "b": f"http://127.0.0.1:{port_b}"}

        def up() -> bool:
            exited = [name for name, proc in processes.items() if proc.poll() is not None]
            assert not exited, f"{exited} exited: {(logs / exited[0]).read_text()[-2000:]}"
            return all(_answers(url) for url in urls.values())

        wait_for(up, timeout=30, what="both web servers to answer")
        yield {**urls, "env": env}


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.stop()


def _stop_group(process) -> None:
    """SIGTERM the role's process group, as a process manager would; SIGKILL what is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=15)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _ws(base: str, after: int = 0):
    return connect(base.replace("http", "ws", 1) + f"/ws/milestones/?after={after}",
                   open_timeout=10)


def _next(socket_, timeout: float = 15) -> dict:
    return json.loads(socket_.recv(timeout=timeout))


def test_a_socket_of_one_server_receives_what_another_server_stored(shape, operator_token):
    with _ws(shape["a"]) as on_a, _ws(shape["b"]) as on_b:
        # Ingested through B: both servers' sockets receive it.
        envelope = EnvelopeFactory()
        body, headers = signed(envelope)
        answer = httpx.post(shape["b"] + "/internal/milestones/ingest", content=body,
                            headers=headers, timeout=10)
        assert answer.json()["status"] == "accepted", answer.text
        first_a, first_b = _next(on_a), _next(on_b)
        assert first_a == first_b
        assert first_a["idempotencyKey"] == envelope["idempotencyKey"]

        # Emitted through A's orchestrator API, delivered by a worker to B's ingest: A's
        # socket receives it.
        event = MilestoneEventFactory()
        emitted = httpx.post(shape["a"] + "/api/orchestrator/milestones", json={"event": event},
                             headers={"Authorization": f"Token {operator_token}"}, timeout=10)
        assert emitted.status_code == 202, emitted.text
        second = _next(on_a, timeout=30)
        assert second["event"] == event
        assert second["position"] > first_a["position"]
        assert _next(on_b)["position"] == second["position"]


def test_two_workers_share_the_outbox_without_a_double_send(shape, operator_token, receiver):
    # Each delivery takes the receiver 0.2 s: one worker's room for a target fills, and
    # the other worker claims the rest.
    receiver.control(default={"status": 200, "delayS": 0.2})
    TargetFactory(name="shared", url=receiver.url, supports_batch=False)
    keys = []
    with httpx.Client(timeout=10, headers={"Authorization": f"Token {operator_token}"}) as http:
        for i in range(DELIVERIES):
            base = shape["a"] if i % 2 else shape["b"]
            answer = http.post(base + "/api/orchestrator/milestones",
                               json={"event": MilestoneEventFactory()})
            assert answer.status_code == 202, answer.text
            keys.append(answer.json()["idempotencyKey"])

    to_receiver = Delivery.objects.filter(idempotency_key__in=keys, target="shared")
    wait_for(lambda: to_receiver.filter(status=Status.DELIVERED).count() == DELIVERIES,
             timeout=90, what=f"{DELIVERIES} deliveries to the receiver")
    received = [entry["key"] for entry in receiver.log()]
    assert not any(entry["error"] for entry in receiver.log())  # every signature verified
    assert sorted(received) == sorted(keys)  # each exactly once
    attempts = DeliveryAttempt.objects.filter(delivery__in=to_receiver)
    assert attempts.count() == DELIVERIES
    # Both workers took part (each attempt names its worker: host and process).
    assert attempts.values("worker").distinct().count() >= 2
