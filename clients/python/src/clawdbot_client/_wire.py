"""What travels: the spool item, the POST, and how an answer is classified (SPEC §7)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from ._contract import MilestoneInvalid, idempotency_key_valid, validate_milestone
from .spool import Outcome, Sent

EMIT_PATH = "/api/orchestrator/milestones"
#: Answers that mean "not now": the item stays first in line and is tried again.
_LATER = {401, 403, 404, 408, 425, 429}
_MAX_RETRY_AFTER_S = 300.0

log = logging.getLogger("clawdbot_client")


def now_utc() -> str:
    """JavaScript's ``toISOString()`` form, as the reference emitter writes it."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def spool_item(event: Mapping[str, Any], idempotency_key: str | None,
               context: Mapping[str, Any] | None) -> dict[str, Any]:
    """Validate ``event`` (``MilestoneInvalid`` naming the fields) and wrap it for the spool.

    A missing ``timestampUtc`` is now, a missing ``source`` is ``orchestrator``.
    """
    event = {"timestampUtc": now_utc(), "source": "orchestrator", **event}
    validate_milestone(event)
    key = idempotency_key if idempotency_key is not None else secrets.token_hex(16)
    if not idempotency_key_valid(key) or key.startswith("target-"):
        raise MilestoneInvalid({"idempotency_key": [
            "Must be 1 to 200 printable ASCII characters, not starting with 'target-'."]})
    body: dict[str, Any] = {"event": event}
    if context:
        body["context"] = dict(context)
    return {"key": key, "body": body, "queuedAtUtc": now_utc()}


def request_args(base_url: str, token: str, item: Mapping[str, Any]) -> dict[str, Any]:
    return {"url": base_url.rstrip("/") + EMIT_PATH, "json": item["body"],
            "headers": {"Authorization": f"Token {token}", "Idempotency-Key": item["key"]}}


def outcome(item: Mapping[str, Any], response: httpx.Response | None,
            error: Exception | None = None) -> Sent:
    """What one send of ``item`` came to, logging a refusal (it is final: the milestone is
    dropped from the spool). Shared by the sync and asyncio clients."""
    sent = classify(response, error)
    if sent.outcome is Outcome.REFUSED:
        log.error("the server refused milestone %s for good: %s", item["key"], sent.detail)
    return sent


def classify(response: httpx.Response | None, error: Exception | None = None) -> Sent:
    """2xx done; 408/425/429/5xx, auth or routing trouble and network errors later (a
    misconfigured client must not throw milestones away); any other 4xx refused."""
    if response is None:
        return Sent(Outcome.LATER, f"{type(error).__name__}: {error}")
    code = response.status_code
    detail = f"HTTP {code}: {response.text[:2000]}"
    if 200 <= code < 300:
        return Sent(Outcome.DONE, detail)
    if code in _LATER or code >= 500:
        return Sent(Outcome.LATER, detail, _retry_after(response))
    return Sent(Outcome.REFUSED, detail)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    try:
        seconds = float(value) if value.isascii() else None
    except ValueError:
        return None
    if seconds is None or not seconds >= 0:
        return None
    return min(seconds, _MAX_RETRY_AFTER_S)
