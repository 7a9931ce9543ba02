"""Milestones for django-q2 tasks: mark a task's function, nothing else about it changes.

::

    from clawdbot_client.django_q import milestone_task

    @milestone_task("reports.nightly", scope="reports", claim="Nightly report built.")
    def build_nightly_report(day): ...

and once, at start-up (e.g. an ``AppConfig.ready``)::

    from clawdbot_client.django_q import connect
    connect(Client(base_url, token, spool_path=...))

The worker's ``pre_execute`` signal emits ``on-track`` for a marked function, its
``post_execute_in_worker`` signal ``completed`` or ``blocked`` (the task's own error and
traceback as ``log`` evidence). The keys come from the task's id, so a signal handled
twice is still one milestone per phase. The task's function is returned unwrapped: it runs,
fails and retries exactly as before, and a failure to emit is only logged.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from .client import Client
from .tracking import Run

log = logging.getLogger("clawdbot_client")
F = TypeVar("F", bound=Callable[..., Any])
MARK = "__clawdbot_milestone__"
_DISPATCH_UID = "clawdbot-client-django-q"
_client: Client | None = None


def milestone_task(milestone_id: str, *, scope: str, claim: str,
                   evidence: Sequence[Mapping[str, Any]] = (), next_action: str = ""
                   ) -> Callable[[F], F]:
    """Mark ``fn`` so that the hook emits its outcome; ``fn`` itself is returned as it is."""
    spec: dict[str, Any] = {"milestone_id": milestone_id, "scope": scope, "claim": claim,
            "evidence": tuple(evidence), "next_action": next_action}
    Run(**spec, run_id="check").check()

    def mark(fn: F) -> F:
        setattr(fn, MARK, spec)
        return fn

    return mark


def connect(client: Client) -> None:
    """Emit through ``client`` for every marked task this process runs (idempotent)."""
    from django_q.signals import post_execute_in_worker, pre_execute

    global _client
    _client = client
    pre_execute.connect(_started, dispatch_uid=_DISPATCH_UID)
    post_execute_in_worker.connect(_finished, dispatch_uid=_DISPATCH_UID)


def _run(func: Any, task: Mapping[str, Any]) -> Run | None:
    spec = getattr(func, MARK, None)
    if spec is None or _client is None:
        return None
    context = {"sourceTaskId": str(task.get("id", "")), "sourceRunId": str(task.get("name", ""))}
    return Run(**spec, run_id=str(task.get("id") or task.get("name")), context=context)


def _started(sender: object, func: Any, task: Mapping[str, Any], **kwargs: Any) -> None:
    run = _run(func, task)
    if run is not None:
        _emit(run, run.started(), "started")


def _finished(sender: object, func: Any, task: Mapping[str, Any], **kwargs: Any) -> None:
    run = _run(func, task)
    if run is None:
        return
    raised = sys.exc_info()[1]
    if "success" not in task and raised is not None:  # a sync task: sent while it raises
        _emit(run, run.blocked(raised), "blocked")
    elif task.get("success"):
        _emit(run, run.completed(), "completed")
    else:
        # django-q2 keeps the error as "<message> : <formatted traceback>".
        message, _, summary = str(task.get("result", "")).partition(" : ")
        last = summary.strip().splitlines()[-1] if summary.strip() else ""
        type_name = last.split(":", 1)[0].rsplit(".", 1)[-1] if ":" in last else "Error"
        _emit(run, run.blocked_from(type_name, message, summary or message, _where(summary)),
              "blocked")


def _where(summary: str) -> str:
    """``file:line in function`` of the last frame of a formatted traceback."""
    frames = [line.strip() for line in summary.splitlines() if line.strip().startswith("File ")]
    if not frames:
        return ""
    # File "/path/x.py", line 12, in fn
    parts = frames[-1].split(", ")
    path = parts[0].removeprefix("File ").strip('"')
    line = parts[1].removeprefix("line ") if len(parts) > 1 else "?"
    return f"{path}:{line} {parts[2] if len(parts) > 2 else ''}".strip()


def _emit(run: Run, event: dict[str, Any], phase: str) -> None:
    assert _client is not None
    try:
        _client.emit(event, run.key(phase), context=run.context)
    except Exception:
        log.exception("could not spool the %s milestone of task %s", phase, run.run_id)
