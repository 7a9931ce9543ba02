"""django-q2 tasks for the hook's tests: plain functions, marked and nothing more."""

from __future__ import annotations

import os

from clawdbot_client import Client
from clawdbot_client.django_q import connect, milestone_task

# A real worker imports this module before it runs a task from it; the test that starts
# one names the spool here (an application would connect in its AppConfig.ready()).
if os.environ.get("CLAWDBOT_TEST_HOOK_SPOOL"):
    connect(Client("http://127.0.0.1:9", "token",
                   spool_path=os.environ["CLAWDBOT_TEST_HOOK_SPOOL"]))


@milestone_task("reports.nightly", scope="reports", claim="Nightly report built.")
def build_report(day: str) -> str:
    return f"report for {day}"


class ReportFailed(Exception):
    pass


@milestone_task("reports.broken", scope="reports", claim="Broken report built.")
def build_broken_report() -> None:
    raise ReportFailed("no data for the day")


def unmarked() -> int:
    return 1
