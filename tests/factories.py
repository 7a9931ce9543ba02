"""Factories shared by both sides' tests: milestone events, their evidence, envelopes."""

from __future__ import annotations

import factory


class EvidenceFactory(factory.DictFactory):
    type = "log"
    path = "workspace/orchestrator_state.json"
    summary = "lastStartedAt set in orchestrator state"


class MilestoneEventFactory(factory.DictFactory):
    milestoneId = factory.Sequence(lambda n: f"runtime.validation.{n}")
    timestampUtc = factory.Sequence(
        lambda n: f"2026-02-28T12:{n // 60 % 60:02d}:{n % 60:02d}.000Z"
    )
    scope = "runtime"
    claim = "Orchestrator started successfully."
    evidence = factory.List([factory.SubFactory(EvidenceFactory)])
    riskStatus = "on-track"
    nextAction = "Monitor task queue for first incoming tasks."
    source = "orchestrator"


class EnvelopeFactory(factory.DictFactory):
    idempotencyKey = factory.Sequence(lambda n: f"key-{n:06d}")
    sentAtUtc = "2026-02-28T12:34:56.000Z"
    event = factory.SubFactory(MilestoneEventFactory)
