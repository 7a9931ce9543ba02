"""django-q2 tasks: thin entry points over the delivery services.

``sweep`` runs every minute from a django-q2 Schedule (created by migration 0002 and again
at worker start): for up to ``SWEEP_BUDGET_S`` it attempts deliveries overdue by more than
``SWEEP_MARGIN_S`` whose lease is free or expired, so nothing stalls even if no dispatcher
is running. It also lets the emitter's JSONL log catch up on lines a failed write missed.
"""

from __future__ import annotations

import logging
import time

from django.db import connection, transaction

from orchestrator_app.services.delivery import deliveries_run
from orchestrator_app.services.milestone_log import milestone_log_catch_up_safely
from orchestrator_app.transport import Transport, default_transport

log = logging.getLogger(__name__)

SWEEP_SCHEDULE_NAME = "orchestrator-outbox-sweep"
SWEEP_FUNC = "orchestrator_app.tasks.sweep"
#: A dispatcher normally fires a due delivery within a second; past this it is "stalled".
SWEEP_MARGIN_S = 30.0
SWEEP_LOCK_KEY = 0x0C1A_7DB0_5E3E
#: Half of django-q's 60 s task timeout: room for one last attempt to a slow receiver.
SWEEP_BUDGET_S = 30.0


def sweep(*, transport: Transport | None = None, budget_s: float = SWEEP_BUDGET_S) -> int:
    """Attempt overdue deliveries one at a time, each recorded before the next is sent.

    django-q kills a task at ``Q_CLUSTER["timeout"]``: an attempt sent but not recorded
    would be sent again by every later sweep and never reach dead-letter, so there is no
    batch to lose, and no attempt starts once ``budget_s`` is spent (the next sweep, a
    minute later, goes on).
    """
    milestone_log_catch_up_safely()
    deadline = time.monotonic() + budget_s
    done = 0
    while batch := deliveries_run(transport=transport or default_transport(), limit=1,
                                  overdue_s=SWEEP_MARGIN_S):
        done += len(batch)
        if time.monotonic() >= deadline:
            break
    if done:
        log.warning("outbox sweep attempted %d overdue deliveries", done)
    return done


def sweep_schedule_ensure() -> None:
    """Create the sweep's Schedule if it is missing (idempotent; safe from many workers)."""
    from django_q.models import Schedule

    with transaction.atomic(), connection.cursor() as cursor:
        # Schedule.name is not unique: serialise workers that start together.
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [SWEEP_LOCK_KEY])
        if not Schedule.objects.filter(name=SWEEP_SCHEDULE_NAME).exists():
            Schedule.objects.create(name=SWEEP_SCHEDULE_NAME, func=SWEEP_FUNC,
                                    schedule_type=Schedule.MINUTES, minutes=1, repeats=-1)
