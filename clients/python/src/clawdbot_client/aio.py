"""The asyncio client: the same spool and wire as ``Client``, with ``await``.

``await emit(...)`` runs the fsync'd spool append in a thread and returns the key; a
background task sends the spool in order. Draining uses the same cross-process locks as
the synchronous client, so both forms may share one spool.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from . import _wire
from .client import BACKOFF_START_S, _Backoff, default_spool_path
from .spool import DrainResult, Sent, Spool
from .tracking import Run

log = logging.getLogger("clawdbot_client")
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


class AsyncClient:
    def __init__(self, base_url: str, token: str, *, spool_path: str | os.PathLike[str] | None
                 = None, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.base_url = base_url
        self.spool = Spool(spool_path or default_spool_path(base_url))
        self._token = token
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._draining: asyncio.Future[DrainResult] | None = None
        self._closing = False

    async def emit(self, event: Mapping[str, Any], idempotency_key: str | None = None, *,
                   context: Mapping[str, Any] | None = None) -> str:
        """``Client.emit``, awaitable: validated, spooled durably, sent in the background."""
        item = _wire.spool_item(event, idempotency_key, context)
        await asyncio.to_thread(self.spool.append, item)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        self._wake.set()
        return item["key"]

    async def flush(self, timeout: float = 10.0) -> int:
        """Send what the spool holds for at most ``timeout`` seconds; return what is left."""
        deadline = time.monotonic() + timeout
        while True:
            result = await self._drain(deadline)
            if not result.left or time.monotonic() >= deadline:
                return result.left
            await asyncio.sleep(min(0.05 if result.busy else 0.25,
                                    max(0.0, deadline - time.monotonic())))

    async def aclose(self, timeout: float = 2.0) -> int:
        left = await self.flush(timeout) if timeout > 0 else self.spool.pending()
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._draining is not None:  # its thread finishes the item in hand, then stops
            with contextlib.suppress(Exception):
                await self._draining
        await self._http.aclose()
        return left

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    @contextlib.asynccontextmanager
    async def track(self, milestone_id: str, *, scope: str, claim: str,
                    evidence: Sequence[Mapping[str, Any]] = (), next_action: str = "",
                    context: Mapping[str, Any] | None = None, run_id: str | None = None
                    ) -> AsyncIterator[Run]:
        """``Client.track`` for ``async with``."""
        run = Run(milestone_id, scope, claim, run_id or uuid.uuid4().hex, tuple(evidence),
                  next_action, dict(context or {}))
        run.check()
        await self._emit_quietly(run.started(), run.key("started"), run.context)
        try:
            yield run
        except BaseException as exc:
            await self._emit_quietly(run.blocked(exc), run.key("blocked"), run.context)
            raise
        await self._emit_quietly(run.completed(), run.key("completed"), run.context)

    def milestone(self, milestone_id: str, **kwargs: Any) -> Callable[[F], F]:
        """``track`` as a decorator of ``async`` functions."""

        def decorate(fn: F) -> F:
            @functools.wraps(fn)
            async def run(*args: Any, **kw: Any) -> Any:
                async with self.track(milestone_id, **kwargs):
                    return await fn(*args, **kw)
            return run  # type: ignore[return-value]

        return decorate

    async def _emit_quietly(self, event: Mapping[str, Any], key: str,
                            context: Mapping[str, Any]) -> None:
        try:
            await self.emit(event, key, context=context)
        except Exception:
            log.exception("could not spool milestone %s (%s)", event.get("milestoneId"), key)

    async def _drain(self, deadline: float | None = None) -> DrainResult:
        # The spool's file work is blocking: it runs in a thread, and each send comes back
        # to this loop to await the HTTP call.
        loop = asyncio.get_running_loop()

        def send(item: dict[str, Any]) -> Sent:
            return asyncio.run_coroutine_threadsafe(self._send(item), loop).result()

        def late() -> bool:
            return self._closing or (deadline is not None and time.monotonic() >= deadline)

        return await asyncio.to_thread(self.spool.drain, send, should_stop=late)

    async def _send(self, item: dict[str, Any]) -> Sent:
        try:
            response = await self._http.post(**_wire.request_args(self.base_url, self._token, item))
        except httpx.HTTPError as exc:
            return _wire.outcome(item, None, exc)
        return _wire.outcome(item, response)

    async def _run(self) -> None:
        backoff = _Backoff()
        while not self._closing:
            self._wake.clear()
            try:
                # Shielded: a cancelled sender must not leave the draining thread waiting
                # for a send this loop would never run; ``aclose`` awaits it instead.
                self._draining = asyncio.ensure_future(self._drain())
                result = await asyncio.shield(self._draining)
            except Exception:
                log.exception("draining the spool %s failed", self.spool.path)
                result = DrainResult(0, 1)
            if result.left:
                await asyncio.sleep(BACKOFF_START_S if result.busy
                                    else backoff.failed(result.retry_after_s))
            else:
                backoff.reset()
                await self._wake.wait()
