"""Factories for the orchestrator tests (the event factories are in tests/factories.py)."""

from __future__ import annotations

import factory

from clawdbot.contract import generate_legacy_secret, generate_webhook_secret
from orchestrator_app.models import Target

LEGACY_SECRET = generate_legacy_secret()
WEBHOOK_SECRET = generate_webhook_secret()


class TargetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Target
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"receiver-{n}")
    url = "http://127.0.0.1:9/internal/milestones/ingest"
    legacy_secrets = LEGACY_SECRET
    webhook_secrets = WEBHOOK_SECRET
    timeout_s = 2.0
    retry_schedule = "0,0"  # three attempts, each due at once
