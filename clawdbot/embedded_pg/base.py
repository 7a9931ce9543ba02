"""Django database backend: PostgreSQL that starts the embedded server on first connect.

Identical to ``clawdbot.postgres`` except that opening a connection first makes sure the
shared embedded server runs (``server.ensure_running``). Settings select it only when
``DATABASE_URL`` is unset; the database entry's ``VAR_DIR`` says where its ``var/`` lives.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clawdbot.postgres import base

from . import server


class DatabaseWrapper(base.DatabaseWrapper):
    def get_new_connection(self, conn_params: dict[str, Any]) -> Any:
        server.ensure_running(Path(self.settings_dict["VAR_DIR"]))
        return super().get_new_connection(conn_params)
