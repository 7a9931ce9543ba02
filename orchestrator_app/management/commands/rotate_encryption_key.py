"""Re-encrypt every stored secret with the first ``CLAWDBOT_ENCRYPTION_KEY`` key.

Rotation: put the new key first in ``CLAWDBOT_ENCRYPTION_KEY`` (the old ones after it),
restart, run this, then remove the old keys.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction

from clawdbot.encryption import reencrypt

_SELECT = "SELECT id, legacy_secrets, webhook_secrets FROM orchestrator_target FOR UPDATE"
_UPDATE = "UPDATE orchestrator_target SET legacy_secrets = %s, webhook_secrets = %s WHERE id = %s"


class Command(BaseCommand):
    help = "Re-encrypt the targets' secrets with the first CLAWDBOT_ENCRYPTION_KEY key."

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connection

        with transaction.atomic(durable=True), connection.cursor() as cursor:
            cursor.execute(_SELECT)
            rows = cursor.fetchall()
            for pk, *tokens in rows:
                cursor.execute(_UPDATE, [*(reencrypt(t) if t else t for t in tokens), pk])
        self.stdout.write(f"re-encrypted the secrets of {len(rows)} target(s) with the first key")
