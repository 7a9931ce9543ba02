"""Emit ClawDBot milestones from Python (SPEC §2, §7), without Django.

``Client`` and ``AsyncClient`` validate each milestone against the contract's schema,
spool it durably and send it with an ``Idempotency-Key`` in the background, in order,
exactly once. ``track`` / ``milestone`` turn a piece of work into on-track, completed and
blocked milestones. ``clawdbot_client.django_q`` does the same for marked django-q2 tasks.
"""

from __future__ import annotations

from ._contract import MilestoneInvalid, validate_milestone
from .aio import AsyncClient
from .client import Client, default_spool_path
from .spool import Spool
from .tracking import Run

__all__ = ["AsyncClient", "Client", "MilestoneInvalid", "Run", "Spool", "default_spool_path",
           "validate_milestone"]
