"""The wire contract both apps share: schema, canonical JSON and both signature schemes.

Pure Python with no Django imports, so it can be tested and reused anywhere.
"""

from __future__ import annotations

from .canonical import MAX_DEPTH, JsonInvalid, canonical_json, js_number, parse_json
from .schema import (
    DEFAULT_SOURCE,
    EVIDENCE_TYPES,
    IDEMPOTENCY_KEY_MAX_LENGTH,
    RISK_STATUSES,
    SOURCES,
    Envelope,
    Evidence,
    Milestone,
    MilestoneInvalid,
    parse_timestamp,
    validate_envelope,
    validate_milestone,
)
from .signing import (
    LEGACY_SIGNATURE_HEADER,
    LEGACY_TIMESTAMP_HEADER,
    WEBHOOK_ID_HEADER,
    WEBHOOK_SECRET_PREFIX,
    WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER,
    WEBHOOK_TOLERANCE_S,
    SignatureError,
    envelope_bytes,
    generate_legacy_secret,
    generate_webhook_secret,
    js_iso_timestamp,
    legacy_sign,
    legacy_verify,
    parse_secret_list,
    signed_headers,
    webhook_sign,
    webhook_verify,
)
from .storable import describe_unstorable, find_unstorable

__all__ = [
    "DEFAULT_SOURCE",
    "EVIDENCE_TYPES",
    "IDEMPOTENCY_KEY_MAX_LENGTH",
    "LEGACY_SIGNATURE_HEADER",
    "LEGACY_TIMESTAMP_HEADER",
    "MAX_DEPTH",
    "RISK_STATUSES",
    "SOURCES",
    "WEBHOOK_ID_HEADER",
    "WEBHOOK_SECRET_PREFIX",
    "WEBHOOK_SIGNATURE_HEADER",
    "WEBHOOK_TIMESTAMP_HEADER",
    "WEBHOOK_TOLERANCE_S",
    "Envelope",
    "Evidence",
    "JsonInvalid",
    "Milestone",
    "MilestoneInvalid",
    "SignatureError",
    "canonical_json",
    "describe_unstorable",
    "envelope_bytes",
    "find_unstorable",
    "generate_legacy_secret",
    "generate_webhook_secret",
    "js_iso_timestamp",
    "js_number",
    "legacy_sign",
    "legacy_verify",
    "parse_json",
    "parse_secret_list",
    "parse_timestamp",
    "signed_headers",
    "validate_envelope",
    "validate_milestone",
    "webhook_sign",
    "webhook_verify",
]
