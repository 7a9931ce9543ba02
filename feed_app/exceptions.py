"""Domain errors of the feed side, rendered by ``clawdbot.api.exception_handler``."""

from __future__ import annotations

from clawdbot.errors import DomainError


class IngestRejected(DomainError):
    """An ingest request the contract refuses (SPEC §4); recorded in the dead-letter.

    ``code`` is a short, stable name of the reason (``signature_invalid``, ``invalid_json``,
    ...) for filtering; ``reason`` is the sentence the sender sees.
    """

    def __init__(
        self,
        code: str,
        reason: str,
        *,
        status_code: int = 400,
        errors: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(reason, errors=errors)
        self.code = code
        self.status_code = status_code


class SignatureRejected(IngestRejected):
    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason, status_code=401)


class BodyTooLarge(IngestRejected):
    def __init__(self, limit: int) -> None:
        super().__init__(
            "body_too_large", f"body is larger than {limit} bytes", status_code=413
        )


class BadQuery(DomainError):
    """A read API query parameter is malformed (a cursor that is not one, say)."""


class MilestoneNotFound(DomainError):
    status_code = 404
    status = "not_found"


#: Every ``IngestRejected.code`` the ingest can record (the admin filters by these).
REASON_CODES = (
    "missing_signature",
    "signature_invalid",
    "timestamp_out_of_tolerance",
    "webhook_id_mismatch",
    "invalid_json",
    "missing_idempotency_key",
    "unstorable_content",
    "inexact_integer",
    "invalid_event",
    "body_too_large",
)
