"""Sample milestones a first ``make run`` emits into an empty database."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from clawdbot.contract import js_iso_timestamp


def sample_milestones(now: datetime) -> list[dict[str, Any]]:
    """Six realistic milestones of one orchestrator's morning, oldest first, ending ``now``."""
    def at(minutes_ago: int) -> str:
        return js_iso_timestamp(now - timedelta(minutes=minutes_ago))

    def ms(mid: str, ago: int, scope: str, claim: str, evidence: list[dict[str, str]],
           risk: str, nxt: str, source: str = "orchestrator") -> dict[str, Any]:
        return {"milestoneId": mid, "timestampUtc": at(ago), "scope": scope, "claim": claim,
                "evidence": evidence, "riskStatus": risk, "nextAction": nxt, "source": source}

    return [
        ms("runtime.orchestrator.started", 50, "runtime", "Orchestrator started successfully.",
           [{"type": "log", "path": "workspace/orchestrator_state.json",
             "summary": "lastStartedAt set in orchestrator state"}],
           "on-track", "Monitor task queue for first incoming tasks."),
        ms("ingest.rss.sweep-completed", 40, "ingest",
           "RSS sweep fetched 42 new items from 12 feeds.",
           [{"type": "metric", "path": "metrics/rss_sweep.json",
             "summary": "42 items, 0 fetch errors, 3.1 s"}],
           "on-track", "Classify new items and queue summaries.", "agent"),
        ms("approvals.deploy.requested", 30, "approvals",
           "Deployment of the summariser v2 awaits operator approval.",
           [{"type": "pr", "path": "github.com/clawdbot/summariser/pull/118",
             "summary": "Switches to batched prompts; CI green", "ref": "#118"}],
           "at-risk", "Wait for an operator to approve or reject the deployment."),
        ms("approvals.deploy.approved", 20, "approvals",
           "Operator approved the summariser v2 deployment.",
           [{"type": "issue", "path": "github.com/clawdbot/summariser/issues/120",
             "summary": "Approval recorded with rollback plan"}],
           "on-track", "Roll out to 10 % of traffic and watch error rates.", "operator"),
        ms("batch.nightly.completed", 10, "batch",
           "Nightly batch processed 1,204 documents with no failures.",
           [{"type": "runbook", "path": "docs/runbooks/nightly-batch.md",
             "summary": "All 7 stages passed; duration 18 min"}],
           "completed", "Archive inputs and rotate the batch logs."),
        ms("reports.demand.summary", 0, "reports",
           "Weekly demand summary published: top requests are exports and SSO.",
           [{"type": "doc", "path": "reports/demand/2026-w09.md",
             "summary": "Summary of 318 requests grouped into 14 themes"}],
           "on-track", "Share the summary with product and plan the next sprint."),
    ]
