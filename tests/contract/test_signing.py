"""Both signature schemes: rotation, tampering, replay window and malformed headers."""

from __future__ import annotations

import base64
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from clawdbot.contract import (
    SignatureError,
    SignatureFailure,
    envelope_bytes,
    generate_legacy_secret,
    generate_webhook_secret,
    js_iso_timestamp,
    legacy_sign,
    legacy_verify,
    parse_json,
    parse_secret_list,
    signed_headers,
    webhook_sign,
    webhook_verify,
)

OLD_WEBHOOK = "whsec_" + base64.b64encode(b"old-key-old-key-old-key-old-key!").decode()
NEW_WEBHOOK = "whsec_" + base64.b64encode(b"new-key-new-key-new-key-new-key!").decode()
NOW = 1_772_282_096
BODY = b'{"idempotencyKey":"k-1","event":{"claim":"done"}}'
PAYLOAD = {"event": {"claim": "done"}, "idempotencyKey": "k-1"}


def verify(
    signature: str | None,
    body: bytes = BODY,
    *,
    secrets: list[str] | None = None,
    msg_id: str | None = "k-1",
    timestamp_header: str | None = str(NOW),
    now: datetime | float = NOW,
    tolerance_s: int = 300,
) -> None:
    """webhook_verify with this module's defaults."""
    webhook_verify(
        [NEW_WEBHOOK] if secrets is None else secrets,
        msg_id,
        timestamp_header,
        signature,
        body,
        now=now,
        tolerance_s=tolerance_s,
    )


def signed(secret: str = NEW_WEBHOOK, timestamp: int = NOW, body: bytes = BODY) -> str:
    return webhook_sign(secret, "k-1", timestamp, body)


# -- secrets ----------------------------------------------------------------------------------


def test_parse_secret_list_trims_and_drops_empties_in_order() -> None:
    assert parse_secret_list(" new , ,old,, ") == ["new", "old"]
    assert parse_secret_list("") == parse_secret_list(None) == []


def test_generated_secrets_have_the_expected_shape_and_work() -> None:
    legacy, webhook = generate_legacy_secret(), generate_webhook_secret()

    assert re.fullmatch(r"[0-9a-f]{64}", legacy)
    assert webhook.startswith("whsec_")
    assert len(base64.b64decode(webhook.removeprefix("whsec_"))) == 32
    assert generate_webhook_secret() != webhook
    verify(signed(webhook), secrets=[webhook])


# -- legacy --------------------------------------------------------------------------------------


def test_legacy_signature_is_lowercase_hex_over_the_canonical_form() -> None:
    signature = legacy_sign("s3cret", {"b": 1, "a": [1.0, "é"]})

    assert re.fullmatch(r"[0-9a-f]{64}", signature)
    assert signature == legacy_sign("s3cret", {"a": [1, "é"], "b": 1})


def test_legacy_rotation_first_secret_signs_and_any_verifies() -> None:
    secrets = parse_secret_list("new-secret,old-secret")
    from_old_sender = legacy_sign("old-secret", PAYLOAD)

    assert legacy_verify(secrets, PAYLOAD, from_old_sender)
    assert legacy_verify(secrets, PAYLOAD, legacy_sign(secrets[0], PAYLOAD))
    assert not legacy_verify(["new-secret"], PAYLOAD, from_old_sender)


def test_legacy_verify_rejects_changed_content_and_ignores_hex_case() -> None:
    signature = legacy_sign("s", PAYLOAD)

    assert legacy_verify(["s"], PAYLOAD, signature.upper())
    assert not legacy_verify(["s"], {**PAYLOAD, "extra": 1}, signature)
    assert not legacy_verify(["s"], PAYLOAD, "")
    assert not legacy_verify(["s"], PAYLOAD, "not hex ✗")


def test_legacy_verify_needs_a_configured_secret() -> None:
    with pytest.raises(ValueError, match="no legacy signing secret"):
        legacy_verify([], PAYLOAD, "00")


# -- Standard Webhooks ----------------------------------------------------------------------------


def test_webhook_rotation_first_secret_signs_and_any_verifies() -> None:
    verify(signed(OLD_WEBHOOK), secrets=[NEW_WEBHOOK, OLD_WEBHOOK])
    with pytest.raises(SignatureError, match="no webhook-signature entry matches"):
        verify(signed(OLD_WEBHOOK), secrets=[NEW_WEBHOOK])


def test_webhook_accepts_any_of_several_v1_entries_and_skips_other_versions() -> None:
    header = f"v1a,AAAA v1,bm90LWl0 {signed()} v2,zzz"
    verify(header)


def test_webhook_rejects_a_tampered_body() -> None:
    with pytest.raises(SignatureError, match="no webhook-signature entry matches") as caught:
        verify(signed(), body=BODY.replace(b"done", b"d0ne"))
    assert caught.value.code is SignatureFailure.NO_MATCH


def test_webhook_signature_covers_the_raw_bytes_not_the_parsed_content() -> None:
    with pytest.raises(SignatureError):
        verify(signed(), body=BODY + b" ")


def test_webhook_signature_covers_id_and_timestamp() -> None:
    with pytest.raises(SignatureError):
        verify(signed(), msg_id="k-2")
    with pytest.raises(SignatureError):
        verify(signed(), timestamp_header=str(NOW + 1))


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_webhook_accepts_timestamps_within_five_minutes(offset: int) -> None:
    verify(signed(timestamp=NOW + offset), timestamp_header=str(NOW + offset))


@pytest.mark.parametrize(("offset", "reason"), [(-301, "too old"), (301, "too new")])
def test_webhook_rejects_timestamps_outside_five_minutes(offset: int, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify(signed(timestamp=NOW + offset), timestamp_header=str(NOW + offset))
    assert caught.value.code is SignatureFailure.TIMESTAMP_OUT_OF_TOLERANCE


def test_webhook_tolerance_is_adjustable_and_now_may_be_a_datetime() -> None:
    later = datetime.fromtimestamp(NOW + 30, UTC)
    with pytest.raises(SignatureError, match="too old"):
        verify(signed(), now=later, tolerance_s=10)


@pytest.mark.parametrize(
    ("field", "value", "reason", "code"),
    [
        ("msg_id", None, "missing webhook-id header", "missing_header"),
        ("msg_id", "", "missing webhook-id header", "missing_header"),
        ("timestamp_header", None, "missing webhook-timestamp header", "missing_header"),
        ("signature_header", "", "missing webhook-signature header", "missing_header"),
        ("timestamp_header", "12a", "not a whole number", "malformed_timestamp"),
        ("timestamp_header", "-5", "not a whole number", "malformed_timestamp"),
        ("timestamp_header", "1.5e9", "not a whole number", "malformed_timestamp"),
        ("timestamp_header", "١٢٣", "not a whole number", "malformed_timestamp"),
        ("signature_header", "garbage", "no v1 signature", "no_v1_signature"),
        ("signature_header", "v1a,abc v2,def", "no v1 signature", "no_v1_signature"),
        ("signature_header", "v1,", "no v1 signature", "no_v1_signature"),
    ],
)
def test_malformed_webhook_headers_give_clear_reasons_and_codes(
    field: str, value: Any, reason: str, code: str
) -> None:
    overrides = {field: value}
    with pytest.raises(SignatureError, match=reason) as caught:
        verify(overrides.pop("signature_header", signed()), **overrides)
    assert caught.value.reason == str(caught.value)
    assert caught.value.code == code


def test_webhook_secret_without_prefix_is_base64_decoded_as_the_libraries_do() -> None:
    bare = NEW_WEBHOOK.removeprefix("whsec_")
    assert webhook_sign(bare, "k-1", NOW, BODY) == signed()


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_", "plain-text-secret"])
def test_a_webhook_secret_that_is_not_base64_is_a_configuration_error(secret: str) -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        webhook_sign(secret, "k-1", NOW, BODY)


def test_webhook_verify_needs_a_configured_secret() -> None:
    with pytest.raises(ValueError, match="no webhook secret"):
        verify(signed(), secrets=[])


# -- sending ---------------------------------------------------------------------------------------


def test_js_iso_timestamp_matches_date_to_iso_string() -> None:
    moment = datetime(2026, 2, 28, 14, 34, 56, 789999, tzinfo=timezone(timedelta(hours=2)))
    assert js_iso_timestamp(moment) == "2026-02-28T12:34:56.789Z"
    assert js_iso_timestamp(NOW + 0.5) == "2026-02-28T12:34:56.500Z"
    # new Date("0999-01-01T00:00:00Z").toISOString(): the year has four digits
    assert js_iso_timestamp(datetime(999, 1, 1, tzinfo=UTC)) == "0999-01-01T00:00:00.000Z"
    with pytest.raises(ValueError, match="timezone-aware"):
        js_iso_timestamp(datetime(2026, 2, 28))  # noqa: DTZ001 - the point of the test


def test_envelope_bytes_are_compact_utf8_in_the_given_key_order() -> None:
    data = {"idempotencyKey": "k", "event": {"claim": "é \u2028", "n": 1.5}}
    assert (
        envelope_bytes(data)
        == '{"idempotencyKey":"k","event":{"claim":"é \u2028","n":1.5}}'.encode()
    )


def test_envelope_bytes_escape_lone_surrogates_and_still_round_trip() -> None:
    data = {"event": {"claim": "bad \ud800 😀"}}
    body = envelope_bytes(data)

    assert body.isascii()
    assert parse_json(body) == data


def test_envelope_bytes_refuse_nan() -> None:
    with pytest.raises(ValueError):
        envelope_bytes({"n": float("nan")})


def test_signed_headers_carry_both_schemes_that_the_receiver_accepts() -> None:
    envelope = {"idempotencyKey": "k-9", "event": {"n": 10**20, "x": 0.1}}
    body = envelope_bytes(envelope)
    headers = signed_headers(
        body=body,
        idempotency_key="k-9",
        legacy_secrets=["legacy-new", "legacy-old"],
        webhook_secrets=[NEW_WEBHOOK, OLD_WEBHOOK],
        now=datetime.fromtimestamp(NOW, UTC),
    )

    assert headers["content-type"] == "application/json"
    assert headers["x-openclaw-timestamp"] == "2026-02-28T12:34:56.000Z"
    assert headers["webhook-id"] == "k-9"
    assert headers["webhook-timestamp"] == str(NOW)
    assert headers["x-openclaw-signature"] == legacy_sign("legacy-new", envelope)
    assert legacy_verify(["legacy-new"], parse_json(body), headers["x-openclaw-signature"])
    webhook_verify(
        [NEW_WEBHOOK],
        headers["webhook-id"],
        headers["webhook-timestamp"],
        headers["webhook-signature"],
        body,
        now=NOW,
    )
    with pytest.raises(SignatureError):  # the second secret verifies but does not sign
        verify(headers["webhook-signature"], body=body, msg_id="k-9", secrets=[OLD_WEBHOOK])


@pytest.mark.parametrize(
    ("legacy", "webhook", "present", "absent"),
    [
        (["s"], [], {"x-openclaw-signature", "x-openclaw-timestamp"}, {"webhook-signature"}),
        ([], [NEW_WEBHOOK], {"webhook-id", "webhook-signature"}, {"x-openclaw-signature"}),
    ],
)
def test_signed_headers_omit_a_scheme_without_secrets(
    legacy: list[str], webhook: list[str], present: set[str], absent: set[str]
) -> None:
    headers = signed_headers(
        body=BODY, idempotency_key="k-1", legacy_secrets=legacy, webhook_secrets=webhook, now=NOW
    )
    assert present <= set(headers)
    assert not absent & set(headers)


def test_signed_headers_need_at_least_one_secret() -> None:
    with pytest.raises(ValueError, match="no secret"):
        signed_headers(
            body=BODY, idempotency_key="k", legacy_secrets=[], webhook_secrets=[], now=NOW
        )


def test_signed_headers_use_a_given_payload_instead_of_reparsing() -> None:
    headers = signed_headers(
        body=BODY,
        idempotency_key="k-1",
        legacy_secrets=["s"],
        webhook_secrets=[],
        now=NOW,
        payload=PAYLOAD,
    )
    assert headers["x-openclaw-signature"] == legacy_sign("s", parse_json(BODY))
