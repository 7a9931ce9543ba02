"""Domain errors of the orchestrator side, rendered by ``clawdbot.api.exception_handler``."""

from __future__ import annotations

from clawdbot.errors import DomainError


class MilestoneRejected(DomainError):
    """The event breaks the milestone schema; ``errors`` names the fields. Nothing recorded."""

    status_code = 400


class InvalidCursor(DomainError):
    """A page cursor the API did not hand out."""

    status_code = 400


class UnknownTarget(DomainError):
    status_code = 404


class DeliveryNotFound(DomainError):
    status_code = 404


class DeliveryNotTriageable(DomainError):
    """An operator action does not fit the delivery's status (e.g. requeue a delivered one)."""

    status_code = 409


class IdempotencyKeyReused(DomainError):
    """An ``Idempotency-Key`` already answered a request with a different body."""

    status_code = 409
