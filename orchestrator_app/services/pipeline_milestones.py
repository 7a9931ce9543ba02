"""The pipeline's own milestones: delivery health per target, on the same feed as the rest.

Opt-in (``CLAWDBOT_PIPELINE_MILESTONES``; ``make run`` turns it on). A target is *at risk*
while it is paused or while the last outcome of its deliveries was dead-letter; it has
*recovered* once it is unpaused and a delivery to it succeeded again. Each change is
reported as a milestone ``pipeline.delivery.<target>``, scope ``delivery``: ``at-risk``
with evidence linking the dead-lettered deliveries (or the pause), then ``completed``.

Rate limit by constraint: the key is ``pipeline-<target>-<window number>``, so a target
gets at most one of these milestones per ``CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S``, however
many workers watch (the event store's NO_STREAM decides). A change that falls in a window
already used is reported in the next one if it still holds: a flapping target gives one
milestone per window, and the state it settles in is always reported in the end.

No cascade: these milestones are delivered like any other, also to a dead target, but the
deliveries *of* pipeline milestones never count towards a target's health. So a target
that keeps failing gives one at-risk milestone, not one about the failure of the last.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import close_old_connections, connection
from django.utils import timezone

from clawdbot.contract import js_iso_timestamp
from clawdbot.eventstore import store
from clawdbot.eventstore.store import ConcurrencyError
from orchestrator_app import events as ev
from orchestrator_app.models import Delivery, EmittedMilestone, Status, Target
from orchestrator_app.services.emit import milestone_emit

log = logging.getLogger(__name__)

PREFIX = "pipeline.delivery."
ACTOR = "pipeline"
POLL_S = 1.0
_TERMINAL = (Status.DELIVERED, Status.DUPLICATE, Status.DEAD_LETTER)
_WATCHED = (ev.DELIVERY_DEAD_LETTERED, ev.DELIVERY_SUCCEEDED, ev.TARGET_PAUSED,
            ev.TARGET_RESUMED)
#: How many dead-lettered deliveries an at-risk milestone links one by one.
LINKED = 5


def milestone_id(target: str) -> str:
    return f"{PREFIX}{target}"


def _key(target: str, now: float) -> str:
    window = max(1.0, settings.CLAWDBOT_PIPELINE_MILESTONE_WINDOW_S)
    return f"pipeline-{target}-{int(now // window)}"


def _reported(target: str) -> str:
    """The risk last reported for ``target`` (``completed`` when never: healthy)."""
    last = (EmittedMilestone.objects.filter(milestone_id=milestone_id(target))
            .order_by("-position").values_list("event", flat=True).first())
    return last["riskStatus"] if last else "completed"


def _last_outcome(target: str) -> str | None:
    """The last terminal status of a delivery to ``target``, pipeline milestones aside."""
    return (Delivery.objects.filter(target=target, status__in=_TERMINAL)
            .exclude(milestone_id__startswith=PREFIX).order_by("-position")
            .values_list("status", flat=True).first())


def _event(target: Target, dead: bool) -> dict[str, Any]:
    now = js_iso_timestamp(timezone.now())
    name = target.name
    base = {"milestoneId": milestone_id(name), "timestampUtc": now, "scope": "delivery",
            "source": "orchestrator"}
    if not target.paused_at and not dead:
        return {**base, "riskStatus": "completed",
                "claim": f"Deliveries to target {name} succeed again.",
                "evidence": [{"type": "log", "path": f"/api/orchestrator/deliveries?target={name}",
                              "summary": f"{name} is unpaused and accepted a delivery"}],
                "nextAction": "Requeue its dead letters if they are still wanted."}
    evidence = []
    if target.paused_at:
        evidence.append({"type": "log", "path": f"/api/orchestrator/targets/{name}",
                         "summary": f"{name} paused: {target.paused_reason or 'no reason'}"[:500]})
    dead_rows = list(Delivery.objects.filter(target=name, status=Status.DEAD_LETTER)
                     .exclude(milestone_id__startswith=PREFIX).order_by("-position")[:LINKED])
    if dead:
        evidence.append({"type": "log",
                         "path": f"/api/orchestrator/deliveries?target={name}&status=dead-letter",
                         "summary": f"deliveries to {name} dead-lettered"})
    evidence += [{"type": "log", "path": f"/admin/orchestrator_app/delivery/{d.pk}/change/",
                  "summary": f"{d.milestone_id}: {d.last_error or 'dead-letter'}"[:500],
                  "ref": str(d.pk)} for d in dead_rows]
    return {**base, "riskStatus": "at-risk",
            "claim": f"Deliveries to target {name} are failing"
                     + (" (paused)" if target.paused_at else "") + ".",
            "evidence": evidence,
            "nextAction": f"Check {name}'s receiver, then resume it or requeue its dead letters."}


def target_health_report(*, name: str, now: float | None = None,
                         dead: bool | None = None) -> bool:
    """Report ``name``'s health if it changed since the last report; return whether it
    is settled (reported, or unchanged). ``False``: this window is used, try later.

    ``dead``: whether the last delivery outcome was dead-letter, when the caller follows
    the events; otherwise read from the deliveries.
    """
    target = Target.objects.filter(name=name).first()
    if target is None:
        return True
    if dead is None:
        dead = _last_outcome(name) == Status.DEAD_LETTER
    risk = "at-risk" if target.paused_at or dead else "completed"
    if risk == _reported(name):
        return True
    try:
        milestone_emit(event=_event(target, dead), actor=ACTOR,
                       idempotency_key=_key(name, time.time() if now is None else now),
                       context={"sourceRunId": "pipeline-health", "actor": ACTOR})
    except ConcurrencyError:
        return False
    log.warning("pipeline milestone: target %s is %s", name, risk)
    return True


@dataclass
class HealthWatch:
    """Follows delivery and pause events (in memory; a new process starts by looking at
    every target once) and reports the targets they touch."""

    after: int | None = None
    dead: dict[str, bool] = field(default_factory=dict)  # last outcome was dead-letter
    unsettled: set[str] = field(default_factory=set)
    clock: Callable[[], float] = time.time

    def step(self) -> None:
        if self.after is None:
            self.after = store.last_position()
            self.unsettled = set(Target.objects.values_list("name", flat=True))
        events = store.read_all(after=self.after, types=_WATCHED, limit=1000)
        if events:
            self.after = events[-1].position
            self._note(events)
        for name in sorted(self.unsettled):
            if target_health_report(name=name, dead=self.dead.get(name), now=self.clock()):
                self.unsettled.discard(name)

    def _note(self, events: list[store.RecordedEvent]) -> None:
        ids = {e.data["deliveryId"] for e in events if "deliveryId" in e.data}
        targets = dict(Delivery.objects.filter(pk__in=ids).exclude(
            milestone_id__startswith=PREFIX).values_list("pk", "target"))
        for e in events:
            if e.type in (ev.TARGET_PAUSED, ev.TARGET_RESUMED):
                self.unsettled.add(e.data["target"])
                continue
            name = targets.get(uuid.UUID(e.data["deliveryId"]))
            if name is not None:
                self.dead[name] = e.type == ev.DELIVERY_DEAD_LETTERED
                self.unsettled.add(name)


def watch_forever(*, stop: threading.Event) -> None:
    watch = HealthWatch()
    while not stop.wait(POLL_S):
        try:
            watch.step()
        except Exception:  # the database went away, say: start afresh next time
            log.exception("pipeline health check failed")
            watch = HealthWatch()
            close_old_connections()
            connection.close()
    connection.close()


def start_in_background() -> threading.Thread:
    thread = threading.Thread(target=watch_forever, kwargs={"stop": threading.Event()},
                              name="pipeline-milestones", daemon=True)
    thread.start()
    return thread
