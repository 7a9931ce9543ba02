"""The ingest checks of SPEC §3-4, in the reference's order, as pure functions.

headers -> JSON -> idempotencyKey -> signature -> event. Each check raises an
``IngestRejected`` naming what is wrong; ``IngestCheck`` remembers what was learnt on
the way (the scheme, the idempotency key) so a rejection can be recorded with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from clawdbot import contract
from clawdbot.contract import storable
from feed_app.exceptions import BodyTooLarge, IngestRejected, SignatureRejected

LEGACY = "legacy"
WEBHOOK = "webhook"
_UNSTORABLE = {storable.NUL, storable.LONE_SURROGATE, storable.NOT_FINITE}


@dataclass(frozen=True)
class IngestRequest:
    """What the ingest needs of an HTTP request. ``body`` holds at most limit + 1 bytes."""

    body: bytes
    headers: Mapping[str, str]  # lower-case names
    remote_addr: str
    over_limit: bool = False
    body_bytes: int | None = None  # the declared length, when the body was not read


class IngestCheck:
    """Runs the checks on one request; ``scheme`` and ``key`` are known once checked."""

    def __init__(self, request: IngestRequest, *, now: datetime) -> None:
        self.request = request
        self.now = now
        self.schemes: list[str] = []
        self.scheme = "none"
        self.key: str | None = None
        self._valid: contract.Envelope | None = None

    def run(self) -> contract.Envelope:
        if self.request.over_limit:
            raise BodyTooLarge(settings.MILESTONE_INGEST_MAX_BYTES)
        self._headers()
        payload = self._json()
        envelope_errors = self._idempotency_key(payload)
        self._signature(payload)
        return self._envelope(payload, envelope_errors)

    def _header(self, name: str) -> str:
        return self.request.headers.get(name, "")

    def _headers(self) -> None:
        legacy = bool(self._header(contract.LEGACY_SIGNATURE_HEADER))
        webhook = bool(self._header(contract.WEBHOOK_SIGNATURE_HEADER))
        presented = [name for name, sent in ((LEGACY, legacy), (WEBHOOK, webhook)) if sent]
        self.scheme = "+".join(presented) or "none"
        if legacy and self._header(contract.LEGACY_TIMESTAMP_HEADER):
            self.schemes.append(LEGACY)
        complete_webhook = all(
            self._header(h) for h in (contract.WEBHOOK_ID_HEADER, contract.WEBHOOK_TIMESTAMP_HEADER)
        )
        if webhook and complete_webhook:
            self.schemes.append(WEBHOOK)
        if self.schemes:
            return
        if legacy:
            missing = contract.LEGACY_TIMESTAMP_HEADER
        elif webhook:
            missing = f"{contract.WEBHOOK_ID_HEADER} or {contract.WEBHOOK_TIMESTAMP_HEADER}"
        else:
            missing = f"{contract.LEGACY_SIGNATURE_HEADER} or {contract.WEBHOOK_SIGNATURE_HEADER}"
        raise SignatureRejected("missing_signature", f"missing signature header: {missing}")

    def _json(self) -> Any:
        try:
            return contract.parse_json(self.request.body)
        except contract.JsonInvalid as exc:
            raise IngestRejected(
                "invalid_json", "body is not valid JSON", errors={"body": [str(exc)]}
            ) from None

    def _idempotency_key(self, payload: Any) -> dict[str, list[str]]:
        """Validate the envelope; refuse now if the key is unusable, else return the errors."""
        try:
            self._valid = contract.validate_envelope(payload)
        except contract.MilestoneInvalid as exc:
            errors = exc.errors
        else:
            errors = {}
        key = payload.get("idempotencyKey") if isinstance(payload, dict) else None
        refused = key_rejection(errors)
        if refused is not None:
            raise refused
        self.key = key if contract.idempotency_key_valid(key) else None
        return errors

    def _signature(self, payload: Any) -> None:
        failures: list[SignatureRejected] = []
        for scheme in self.schemes:
            try:
                self._verify(scheme, payload)
            except SignatureRejected as exc:
                failures.append(exc)
            else:
                self.scheme = scheme
                return
        raise failures[0]

    def _verify(self, scheme: str, payload: Any) -> None:
        if scheme == LEGACY:
            secrets = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)
            signature = self._header(contract.LEGACY_SIGNATURE_HEADER)
            if not contract.legacy_verify(secrets, payload, signature):
                raise SignatureRejected("signature_invalid", "x-openclaw-signature does not match")
            return
        if self._header(contract.WEBHOOK_ID_HEADER) != self.key:
            raise SignatureRejected("webhook_id_mismatch", "webhook-id must equal idempotencyKey")
        try:
            contract.webhook_verify(
                contract.parse_secret_list(settings.MILESTONE_WEBHOOK_SECRET),
                self._header(contract.WEBHOOK_ID_HEADER),
                self._header(contract.WEBHOOK_TIMESTAMP_HEADER),
                self._header(contract.WEBHOOK_SIGNATURE_HEADER),
                self.request.body,
                now=self.now,
                tolerance_s=settings.MILESTONE_WEBHOOK_TOLERANCE_S,
            )
        except contract.SignatureError as exc:
            code = "timestamp_out_of_tolerance" if "too " in exc.reason else "signature_invalid"
            raise SignatureRejected(code, exc.reason) from None

    def _envelope(self, payload: Any, errors: dict[str, list[str]]) -> contract.Envelope:
        if self._valid is not None:
            return self._valid
        raise envelope_rejection(errors)


def key_rejection(errors: dict[str, list[str]]) -> IngestRejected | None:
    """The refusal of an envelope whose idempotencyKey is unusable (or that is no object)."""
    if "" in errors or "idempotencyKey" in errors:
        at = "" if "" in errors else "idempotencyKey"
        return IngestRejected(
            "missing_idempotency_key",
            "body must be a JSON object with a valid idempotencyKey",
            errors={at or "body": errors[at]},
        )
    return None


def envelope_rejection(errors: dict[str, list[str]]) -> IngestRejected:
    """The refusal of an envelope with a usable key but invalid or unstorable content."""
    unstorable = [p for p, msgs in errors.items() if _UNSTORABLE.intersection(msgs)]
    if unstorable:
        return IngestRejected(
            "unstorable_content",
            f"body holds content that cannot be stored at {unstorable[0]}",
            errors=errors,
        )
    return IngestRejected("invalid_event", "envelope or event is invalid", errors=errors)


def envelope_validate(payload: Any) -> contract.Envelope:
    """One already authenticated envelope (a batch item): valid, or the IngestRejected that
    the single ingest would answer for it."""
    try:
        return contract.validate_envelope(payload)
    except contract.MilestoneInvalid as exc:
        raise key_rejection(exc.errors) or envelope_rejection(exc.errors) from None
