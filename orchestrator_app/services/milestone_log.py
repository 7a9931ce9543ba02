"""The emitter's JSONL log (``MILESTONE_LOG_PATH``), written by a follower of the event log.

The log is a side effect of a committed emit, so it must never turn that emit into an
error answer, nor lose a line when the file cannot be written for a while (full disk,
wrong permissions, a missing mount). It is therefore not written by the emit itself: a
follower reads ``outbox.milestone_emitted`` events after its checkpoint (a row of
``eventstore_checkpoint``, locked while it writes, so processes take turns), appends their
lines in position order, fsyncs, and only then moves the checkpoint. Every emit calls it
after commit, and so does the worker's minute sweep: when a write fails the failure is
logged loudly, the checkpoint stays where it was, and the next call writes what was
missed. Delivery is at least once: a process killed between the fsync and the checkpoint's
commit writes those lines again on the next call (``backfill_milestones`` is idempotent by
milestoneId, so a duplicated line is harmless to it).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db import transaction

from clawdbot.eventstore import store
from clawdbot.eventstore.models import ProjectionCheckpoint
from orchestrator_app import events as ev

log = logging.getLogger(__name__)

#: The checkpoint's name; migration 0003 starts it at the log's end when it is installed.
CHECKPOINT = "orchestrator-milestone-log"
BATCH_SIZE = 1000


def log_line(*, sent_at_utc: str, event: Mapping[str, Any]) -> bytes:
    """One line in the reference emitter's format, ``{"sentAtUtc", "event"}``."""
    line = {"sentAtUtc": sent_at_utc, "event": event}
    return (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


def milestone_log_catch_up() -> int:
    """Append every emitted milestone the log lacks; return how many lines were written.

    Raises ``OSError`` when the file cannot be written (the checkpoint then stays put).
    """
    written = 0
    while True:
        with transaction.atomic():
            checkpoint, _ = ProjectionCheckpoint.objects.select_for_update().get_or_create(
                name=CHECKPOINT)
            batch = store.read_all(after=checkpoint.position, limit=BATCH_SIZE,
                                   types=[ev.MILESTONE_EMITTED])
            if not batch:
                return written
            _append(b"".join(log_line(sent_at_utc=e.data["sentAtUtc"], event=e.data["event"])
                             for e in batch))
            checkpoint.position = batch[-1].position
            checkpoint.save(update_fields=["position", "updated_at"])
        written += len(batch)


def milestone_log_catch_up_safely() -> int:
    """``milestone_log_catch_up`` for after-commit hooks and sweeps: never raises.

    A failure is logged at ERROR with its cause and how far behind the log is; the
    milestones are safe in the event store and a later call writes them.
    """
    try:
        return milestone_log_catch_up()
    except Exception:
        log.exception("milestone log %s could not be written; the missed lines stay queued "
                      "and are written by the next emit or sweep", settings.MILESTONE_LOG_PATH)
        return 0


def _append(data: bytes) -> None:
    path = settings.MILESTONE_LOG_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
