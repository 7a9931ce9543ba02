"""The signature vectors computed by the Node.js sender.

The project keeps its own copy in ``tests/data/``; where the shared contract directory
exists beside the repository (or at ``$CLAWDBOT_SHARED_DIR``), the copy must equal it.
"""

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

from .conftest import REPO_ROOT, shared_dir

VECTORS = REPO_ROOT / "tests" / "data" / "signature-vectors.json"
SHARED_VECTORS = shared_dir() / "contract" / "signature-vectors.json"


def _cases(section: str) -> list[Any]:
    cases = json.loads(VECTORS.read_text(encoding="utf-8"))["cases"]
    return [pytest.param(case, id=case["name"]) for case in cases if section in case]


def test_the_vectors_cover_every_section() -> None:
    assert all(_cases(section) for section in ("canonical", "legacy", "standardWebhooks"))


if SHARED_VECTORS.is_file():  # collected only where the shared contract is checked out

    def test_the_copy_of_the_vectors_equals_the_shared_contract() -> None:
        assert VECTORS.read_bytes() == SHARED_VECTORS.read_bytes(), (
            f"{VECTORS} differs from {SHARED_VECTORS}: copy the shared file over it")


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
