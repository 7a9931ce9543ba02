"""The milestone schema, vendored byte for byte from the server's ``clawdbot.contract``.

The client must install without Django or the server, so it cannot import
``clawdbot.contract`` from the server's distribution; these two modules are pure Python
and copied unchanged (``make vendor-contract``). ``tests/client/test_vendored_contract.py``
fails when they drift from the originals, so there is still one definition of a valid
milestone, kept in one place.
"""

from .schema import MilestoneInvalid, idempotency_key_valid, validate_milestone

__all__ = ["MilestoneInvalid", "idempotency_key_valid", "validate_milestone"]
