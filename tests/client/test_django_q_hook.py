"""The django-q2 hook, through django-q2's own worker code (``sync=True`` runs the real
worker and its signals in this process)."""

from __future__ import annotations

import os
import signal

import pytest
from clawdbot_client import Client, Spool
from clawdbot_client.django_q import connect
from django_q.tasks import async_task, result

from tests.client import djq_tasks
from tests.helpers import wait_for
from tests.orchestrator.test_worker import _qcluster

pytestmark = pytest.mark.django_db


@pytest.fixture
def client(tmp_path, settings):
    settings.MILESTONE_DISPATCHER = False  # the sync worker sends post_spawn too
    made = Client("http://127.0.0.1:9", "token", spool_path=tmp_path / "spool.jsonl")
    connect(made)
    yield made
    made.close(timeout=0)


def test_a_marked_task_emits_on_track_then_completed_and_returns_as_before(client):
    task_id = async_task("tests.client.djq_tasks.build_report", "2026-03-01", sync=True)
    assert result(task_id) == "report for 2026-03-01"
    items = client.spool.items()
    assert [i["key"] for i in items] == [f"{task_id}-started", f"{task_id}-completed"]
    assert [i["body"]["event"]["riskStatus"] for i in items] == ["on-track", "completed"]
    assert items[0]["body"]["context"]["sourceTaskId"] == task_id


def test_a_failing_marked_task_emits_blocked_with_its_traceback_and_still_fails(client):
    with pytest.raises(djq_tasks.ReportFailed):
        async_task("tests.client.djq_tasks.build_broken_report", sync=True)
    started, blocked = client.spool.items()
    event = blocked["body"]["event"]
    assert event["riskStatus"] == "blocked"
    log = event["evidence"][0]
    assert log["type"] == "log" and log["summary"].startswith("ReportFailed: no data for the day")
    assert "build_broken_report" in log["ref"]


def test_an_unmarked_task_emits_nothing(client):
    task_id = async_task("tests.client.djq_tasks.unmarked", sync=True)
    assert result(task_id) == 1
    assert client.spool.items() == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_emits_for_marked_tasks(tmp_path):
    spool = Spool(tmp_path / "hook.jsonl")
    worker = _qcluster(CLAWDBOT_TEST_HOOK_SPOOL=str(spool.path), MILESTONE_DISPATCHER="0")
    try:
        ok = async_task("tests.client.djq_tasks.build_report", "2026-03-02")
        broken = async_task("tests.client.djq_tasks.build_broken_report")
        wait_for(lambda: len(spool.items()) == 4, timeout=60, what="four milestones")
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
    by_key = {i["key"]: i["body"]["event"] for i in spool.items()}
    assert by_key[f"{ok}-completed"]["riskStatus"] == "completed"
    blocked = by_key[f"{broken}-blocked"]
    assert blocked["evidence"][0]["summary"] == "ReportFailed: no data for the day"
    assert "djq_tasks.py" in blocked["evidence"][0]["path"]
    assert "build_broken_report" in blocked["evidence"][0]["ref"]
