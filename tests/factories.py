"""Factories shared by both sides' tests: milestone events, their evidence, envelopes."""

from __future__ import annotations

import factory


class EvidenceFactory(factory.DictFactory):
    type = "log"
    path = "workspace/orchestrator_state.json"
    summary = "lastStartedAt set in orchestrator state"


class MilestoneEventFactory(factory.DictFactory):
    milestoneId = factory.Sequence(lambda n: f"runtime.validation.{n}")  # noqa: N815
    timestampUtc = factory.Sequence(  # noqa: N815
        lambda n: f"2026-02-28T12:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    )
    scope = "runtime"
    claim = "Orchestrator started successfully."
    evidence = factory.List([factory.SubFactory(EvidenceFactory)])
    riskStatus = "on-track"  # noqa: N815
    nextAction = "Monitor task queue for first incoming tasks."  # noqa: N815
    source = "orchestrator"


class EnvelopeFactory(factory.DictFactory):
    idempotencyKey = factory.Sequence(lambda n: f"key-{n:06d}")  # noqa: N815
    sentAtUtc = "2026-02-28T12:34:56.000Z"  # noqa: N815
    event = factory.SubFactory(MilestoneEventFactory)
