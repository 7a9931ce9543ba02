"""The ingest checks of SPEC §3-4, in the reference's order, as functions.

size -> headers -> JSON -> idempotencyKey -> signature -> event. Each step is a function
of what the request holds (and of the steps before it) that returns what it found, or
raises an ``IngestRejected`` naming what is wrong. ``ingest_check`` runs them and returns a
``Verdict``: ``Passed`` with the envelope, or ``Refused`` with the rejection and what was
learnt on the way (the scheme, the idempotency key), so that it can be recorded with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Validation:
    """The envelope checked against the schema: valid (``envelope``) or not (``errors``)."""

    envelope: contract.Envelope | None
    errors: dict[str, list[str]] = field(default_factory=dict)


@dataclass(frozen=True)
class Passed:
    """Every check passed: the envelope, and the schemes that verified it (``legacy``,
    ``webhook`` or ``legacy+webhook``)."""

    envelope: contract.Envelope
    scheme: str


@dataclass(frozen=True)
class Refused:
    """A check refused the request: why, and what was learnt before (to record it with).

    ``scheme`` is what was presented (``legacy``, ``webhook``, ``legacy+webhook``,
    ``none``); ``key`` the idempotencyKey once it was readable.
    """

    rejection: IngestRejected
    scheme: str
    key: str | None


Verdict = Passed | Refused


def ingest_check(request: IngestRequest, *, now: datetime) -> Verdict:
    """Run every step on ``request``; never raises ``IngestRejected``, returns it."""
    scheme, key = "none", None
    try:
        size_check(request)
        scheme = schemes_presented(request.headers)
        schemes = schemes_verifiable(request.headers)
        payload = body_json(request.body)
        validation = envelope_validate(payload)
        key = idempotency_key(payload, validation)
        scheme = signature_verify(request, payload, schemes=schemes, key=key, now=now)
        envelope = envelope_valid(validation)
    except IngestRejected as exc:
        return Refused(exc, scheme, key)
    return Passed(envelope, scheme)


def size_check(request: IngestRequest) -> None:
    if request.over_limit:
        raise BodyTooLarge(settings.MILESTONE_INGEST_MAX_BYTES)


def schemes_presented(headers: Mapping[str, str]) -> str:
    """The schemes whose signature header was sent: ``legacy+webhook``, …, or ``none``."""
    sent = [name for name, header in ((LEGACY, contract.LEGACY_SIGNATURE_HEADER),
                                      (WEBHOOK, contract.WEBHOOK_SIGNATURE_HEADER))
            if headers.get(header)]
    return "+".join(sent) or "none"


def schemes_verifiable(headers: Mapping[str, str]) -> list[str]:
    """Every scheme whose signature header was sent, each with all the headers it needs.

    A request carrying both header sets must pass both (SPEC §3), so a signature sent
    without its companion headers is refused as missing rather than ignored in favour of
    the other scheme; a request with no signature header at all is refused too.
    """
    schemes = []
    if headers.get(contract.LEGACY_SIGNATURE_HEADER):
        if not headers.get(contract.LEGACY_TIMESTAMP_HEADER):
            _missing(contract.LEGACY_TIMESTAMP_HEADER)
        schemes.append(LEGACY)
    if headers.get(contract.WEBHOOK_SIGNATURE_HEADER):
        absent = [h for h in (contract.WEBHOOK_ID_HEADER, contract.WEBHOOK_TIMESTAMP_HEADER)
                  if not headers.get(h)]
        if absent:
            _missing(" and ".join(absent))
        schemes.append(WEBHOOK)
    if not schemes:
        _missing(f"{contract.LEGACY_SIGNATURE_HEADER} or {contract.WEBHOOK_SIGNATURE_HEADER}")
    return schemes


def _missing(what: str) -> None:
    raise SignatureRejected("missing_signature", f"missing signature header: {what}")


def body_json(body: bytes) -> Any:
    try:
        return contract.parse_json(body)
    except contract.JsonInvalid as exc:
        raise IngestRejected(
            "invalid_json", "body is not valid JSON", errors={"body": [str(exc)]}
        ) from None


def envelope_validate(payload: Any) -> Validation:
    """The schema's verdict on the whole envelope; raises nothing (later steps decide)."""
    try:
        return Validation(contract.validate_envelope(payload))
    except contract.MilestoneInvalid as exc:
        return Validation(None, exc.errors)


def idempotency_key(payload: Any, validation: Validation) -> str | None:
    """The envelope's idempotencyKey; refuses a body that is not an object with a valid one."""
    errors = validation.errors
    if "" in errors or "idempotencyKey" in errors:
        at = "" if "" in errors else "idempotencyKey"
        raise IngestRejected(
            "missing_idempotency_key",
            "body must be a JSON object with a valid idempotencyKey",
            errors={at or "body": errors[at]},
        )
    key = payload.get("idempotencyKey") if isinstance(payload, dict) else None
    return key if contract.idempotency_key_valid(key) else None


def signature_verify(
    request: IngestRequest, payload: Any, *, schemes: list[str], key: str | None,
    now: datetime, key_name: str = "idempotencyKey",
) -> str:
    """Verify every one of ``schemes`` (a request that sends both must pass both); return
    them joined (``legacy+webhook``), or raise the first one's refusal. ``key`` is what
    webhook-id must equal: the body's ``key_name`` field."""
    for scheme in schemes:
        if scheme == LEGACY:
            legacy_verify(request.headers, payload)
        else:
            webhook_verify(request, key=key, now=now, key_name=key_name)
    return "+".join(schemes)


def legacy_verify(headers: Mapping[str, str], payload: Any) -> None:
    secrets = contract.parse_secret_list(settings.MILESTONE_SIGNING_SECRET)
    signature = headers.get(contract.LEGACY_SIGNATURE_HEADER, "")
    if not contract.legacy_verify(secrets, payload, signature):
        raise SignatureRejected("signature_invalid", "x-openclaw-signature does not match")


def webhook_verify(
    request: IngestRequest, *, key: str | None, now: datetime, key_name: str = "idempotencyKey"
) -> None:
    headers = request.headers
    msg_id = headers.get(contract.WEBHOOK_ID_HEADER, "")
    if msg_id != key:
        raise SignatureRejected("webhook_id_mismatch", f"webhook-id must equal {key_name}")
    try:
        contract.webhook_verify(
            contract.parse_secret_list(settings.MILESTONE_WEBHOOK_SECRET),
            msg_id,
            headers.get(contract.WEBHOOK_TIMESTAMP_HEADER, ""),
            headers.get(contract.WEBHOOK_SIGNATURE_HEADER, ""),
            request.body,
            now=now,
            tolerance_s=settings.MILESTONE_WEBHOOK_TOLERANCE_S,
        )
    except contract.SignatureError as exc:
        out_of_tolerance = exc.code is contract.SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE
        code = "timestamp_out_of_tolerance" if out_of_tolerance else "signature_invalid"
        raise SignatureRejected(code, exc.reason) from None


def envelope_valid(validation: Validation) -> contract.Envelope:
    """The valid envelope; refuses an invalid one, naming unstorable content first."""
    if validation.envelope is not None:
        return validation.envelope
    errors = validation.errors
    unstorable = [p for p, msgs in errors.items() if _UNSTORABLE.intersection(msgs)]
    if unstorable:
        raise IngestRejected(
            "unstorable_content",
            f"body holds content that cannot be stored at {unstorable[0]}",
            errors=errors,
        )
    inexact = [p for p, msgs in errors.items() if storable.INEXACT_INTEGER in msgs]
    if inexact:
        raise IngestRejected(
            "inexact_integer",
            f"body holds an integer beyond 2**53 at {inexact[0]} that JavaScript rounds, so "
            "the signature does not cover it as sent",
            errors=errors,
        )
    raise IngestRejected("invalid_event", "envelope or event is invalid", errors=errors)
