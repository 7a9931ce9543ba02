"""Secrets at rest: targets' signing secrets are stored encrypted (Fernet, AES-128-CBC
with HMAC-SHA256, from ``cryptography``), never as the text that signs.

``CLAWDBOT_ENCRYPTION_KEY`` holds one or more Fernet keys, comma-separated: the first
encrypts, every one decrypts (``MultiFernet``). To rotate, put a new key first, run
``manage.py rotate_encryption_key`` (every stored secret is re-encrypted with it), then
remove the old key. In development the key is generated into ``var/secrets.json``.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

__all__ = ["EncryptedTextField", "decrypt", "encrypt", "generate_key", "reencrypt"]


def generate_key() -> str:
    return Fernet.generate_key().decode()


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    listed = [k.strip() for k in keys.split(",") if k.strip()]
    if not listed:
        raise ImproperlyConfigured("CLAWDBOT_ENCRYPTION_KEY is empty: give one or more "
                                   "Fernet keys, comma-separated (the first encrypts)")
    fernets = []
    for n, key in enumerate(listed, 1):
        try:
            fernets.append(Fernet(key))
        except ValueError as exc:
            raise ImproperlyConfigured(
                f"CLAWDBOT_ENCRYPTION_KEY: key {n} is not a Fernet key (32 url-safe "
                "base64-encoded bytes; make one with `python -c \"from cryptography.fernet "
                "import Fernet; print(Fernet.generate_key().decode())\"`)") from exc
    return MultiFernet(fernets)


def _keys() -> MultiFernet:
    return _fernet(settings.CLAWDBOT_ENCRYPTION_KEY)


def encrypt(text: str) -> str:
    return _keys().encrypt(text.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _keys().decrypt(token.encode()).decode()
    except InvalidToken:
        raise ImproperlyConfigured(
            "a stored secret cannot be decrypted with any CLAWDBOT_ENCRYPTION_KEY key: "
            "the key it was encrypted with was removed (put it back, after the new one)"
        ) from None


def reencrypt(token: str) -> str:
    """``token`` encrypted again with the first key (``MultiFernet.rotate``)."""
    try:
        return _keys().rotate(token.encode()).decode()
    except InvalidToken:
        decrypt(token)  # raises the explanation
        raise


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token; an empty value is stored empty ("not set").

    Only equality with the empty string can be queried: a token differs at each write.
    """

    def from_db_value(self, value: str | None, expression: object, connection: object
                      ) -> str | None:
        return decrypt(value) if value else value

    def get_prep_value(self, value: object) -> object:
        value = super().get_prep_value(value)
        return encrypt(value) if isinstance(value, str) and value else value
