"""Signed ingest requests for the feed tests (the event factories are in tests/factories.py)."""

from __future__ import annotations

import time
from typing import Any

from django.conf import settings

from clawdbot import contract
from tests.factories import EnvelopeFactory


def legacy_secrets() -> list[str]:
    return contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)


def webhook_secrets() -> list[str]:
    return contract.parse_secret_list(settings.MILESTONE_WEBHOOK_SECRET)


def signed(
    envelope: dict[str, Any] | None = None,
    *,
    legacy: bool = True,
    webhook: bool = False,
    body: bytes | None = None,
    now: float | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and headers signed as the reference sender signs them."""
    envelope = envelope if envelope is not None else EnvelopeFactory()
    body = body if body is not None else contract.envelope_bytes(envelope)
    headers = contract.signed_headers(
        body=body,
        idempotency_key=str(envelope.get("idempotencyKey", "")),
        legacy_secrets=legacy_secrets() if legacy else [],
        webhook_secrets=webhook_secrets() if webhook else [],
        now=time.time() if now is None else now,
    )
    return body, headers
