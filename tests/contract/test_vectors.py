"""The signature vectors computed by the Node.js sender (shared/contract)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from clawdbot.contract import (
    SignatureError,
    canonical_json,
    legacy_sign,
    legacy_verify,
    parse_json,
    webhook_sign,
    webhook_verify,
)

from .conftest import shared_dir

VECTORS = shared_dir() / "contract" / "signature-vectors.json"


def _cases(section: str) -> list[Any]:
    if not VECTORS.is_file():
        reason = f"{VECTORS} not found (set CLAWDBOT_SHARED_DIR)"
        return [pytest.param(None, marks=pytest.mark.skip(reason=reason), id="no-vectors")]
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases if section in case]


@pytest.mark.parametrize("case", _cases("canonical"))
def test_canonical_form_matches_node(case: dict[str, Any]) -> None:
    assert canonical_json(parse_json(case["body"].encode("utf-8"))) == case["canonical"]


@pytest.mark.parametrize("case", _cases("legacy"))
def test_legacy_signature_matches_node(case: dict[str, Any]) -> None:
    vector = case["legacy"]
    payload = parse_json(case["body"].encode("utf-8"))
    signed_here = legacy_sign(vector["secret"], payload)

    assert (signed_here == vector["signature"]) is vector["valid"]
    assert legacy_verify([vector["secret"]], payload, vector["signature"]) is vector["valid"]


@pytest.mark.parametrize("case", _cases("standardWebhooks"))
def test_webhook_signature_matches_node(case: dict[str, Any]) -> None:
    vector = case["standardWebhooks"]
    body = case["body"].encode("utf-8")
    entries = vector["signature"].split()
    signed_here = webhook_sign(vector["secret"], vector["id"], vector["timestamp"], body)

    assert (signed_here in entries) is vector["valid"]

    def verify() -> None:
        webhook_verify(
            [vector["secret"]],
            vector["id"],
            str(vector["timestamp"]),
            vector["signature"],
            body,
            now=vector["timestamp"],
        )

    if vector["valid"]:
        verify()
    else:
        with pytest.raises(SignatureError, match="no webhook-signature entry matches"):
            verify()
