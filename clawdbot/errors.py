"""The base of every domain exception; ``clawdbot.api.exception_handler`` renders them."""

from __future__ import annotations


class DomainError(Exception):
    """A failure with a place in the HTTP contract.

    ``status_code`` is the HTTP status, ``reason`` a sentence naming what is wrong, and
    ``errors`` (optional) maps field paths to messages. ``headers`` are added to the reply
    (``Retry-After`` for 503).
    """

    status_code = 400
    status = "rejected"

    def __init__(
        self,
        reason: str,
        *,
        errors: dict[str, list[str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, object]:
        body: dict[str, object] = {"ok": False, "status": self.status, "reason": self.reason}
        if self.errors:
            body["errors"] = self.errors
        return body


class ServiceUnavailable(DomainError):
    """503 with ``Retry-After``; the body keeps the ``"status": "rejected"`` of SPEC §4."""

    status_code = 503

    def __init__(self, reason: str = "database unavailable", retry_after_s: int = 5) -> None:
        super().__init__(reason, headers={"Retry-After": str(retry_after_s)})
