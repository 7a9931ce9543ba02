"""Reading the ``Idempotency-Key`` request header of the emit API (SPEC §7)."""

from __future__ import annotations

from rest_framework.request import Request

from clawdbot.contract import IDEMPOTENCY_KEY_MAX_LENGTH, idempotency_key_valid
from orchestrator_app.exceptions import MilestoneRejected

HEADER = "Idempotency-Key"


def idempotency_key_header(request: Request) -> str | None:
    """The header's value, ``None`` when absent; a ``MilestoneRejected`` naming the header
    when it cannot serve as the envelope's idempotencyKey (it also travels as webhook-id).
    """
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not idempotency_key_valid(key):
        raise MilestoneRejected(f"invalid {HEADER} header", errors={HEADER: [
            f"Must be 1 to {IDEMPOTENCY_KEY_MAX_LENGTH} printable ASCII characters, "
            "without leading or trailing spaces."]})
    if key.startswith("target-"):  # outbox-target-<name> is a target's own stream
        raise MilestoneRejected(f"invalid {HEADER} header",
                                errors={HEADER: ["Must not start with 'target-'."]})
    return key
