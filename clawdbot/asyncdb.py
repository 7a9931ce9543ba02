"""An asyncio connection pool on the default database, for the lean hot paths.

The hot routes (``feed_app.asgi``) run on the server's event loop without a thread per
request, so they cannot use Django's connection (sync only). Each event loop gets its own
``psycopg_pool.AsyncConnectionPool`` built from the same settings as Django's connection.
It has no health check on checkout (that would be one more round trip per request): a
connection that broke while idle fails its statement, the request answers 503 and the
pool replaces the connection.
"""

from __future__ import annotations

import asyncio
import weakref
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connection
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncConnectionPool] = (
    weakref.WeakKeyDictionary()
)


def connection_kwargs() -> dict[str, Any]:
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(django_only, None)
    params["autocommit"] = True
    return params


async def start_embedded_server() -> None:
    if getattr(settings, "EMBEDDED_DATABASE", False):
        from clawdbot.embedded_pg import server

        var_dir = Path(connection.settings_dict["VAR_DIR"])
        await asyncio.to_thread(server.ensure_running, var_dir)


async def pool() -> AsyncConnectionPool:
    """This event loop's pool, opened on first use."""
    loop = asyncio.get_running_loop()
    existing = _pools.get(loop)
    if existing is not None:
        return existing
    await start_embedded_server()
    created = AsyncConnectionPool(
        kwargs=connection_kwargs(),
        connection_class=AsyncConnection,
        min_size=1,
        max_size=settings.ASYNC_DB_POOL_SIZE,
        timeout=settings.ASYNC_DB_POOL_TIMEOUT_S,
        open=False,
        name="clawdbot-hot",
    )
    if _pools.setdefault(loop, created) is created:
        await created.open(wait=False)
    return _pools[loop]


async def close_pools() -> None:
    """Close this event loop's pool (tests that change the database settings use it)."""
    existing = _pools.pop(asyncio.get_running_loop(), None)
    if existing is not None:
        await existing.close()


def forget_pools() -> None:
    """Drop every pool without closing it (their loops may be gone); new ones get built."""
    _pools.clear()
