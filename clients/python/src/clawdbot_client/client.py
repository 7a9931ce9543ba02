"""The synchronous client: ``emit`` never blocks on the network and never loses a milestone.

``emit`` validates, appends the milestone to the durable spool and returns its key; a
daemon thread sends the spool, in order, and waits with backoff while the server is down.
Every milestone goes through the spool, so order holds between milestones sent now and
milestones that waited, and a process that dies leaves its unsent milestones for the next
one using the same spool.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import inspect
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

from . import _wire
from .spool import DrainResult, Sent, Spool

log = logging.getLogger("clawdbot_client")
F = TypeVar("F", bound=Callable[..., Any])

BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0


def default_spool_path(base_url: str) -> Path:
    """``$CLAWDBOT_SPOOL_DIR`` (default ``~/.cache/clawdbot``) / one file per server."""
    root = Path(os.environ.get("CLAWDBOT_SPOOL_DIR") or Path.home() / ".cache" / "clawdbot")
    name = "".join(c if c.isalnum() else "_" for c in base_url.split("://")[-1].strip("/"))
    return root / f"spool-{name}.jsonl"


class _Backoff:
    def __init__(self) -> None:
        self.delay = 0.0

    def failed(self, hint: float | None) -> float:
        self.delay = min(BACKOFF_MAX_S, max(BACKOFF_START_S, self.delay * 2))
        return max(self.delay, hint or 0.0)

    def reset(self) -> None:
        self.delay = 0.0


class Client:
    """Emits milestones to ``base_url`` with an operator ``token``.

    ``spool_path``: the JSONL spool (default ``default_spool_path(base_url)``); clients in
    several processes may share one. ``timeout``: seconds per HTTP request.
    ``flush_at_exit``: seconds the interpreter's exit may spend sending what is left (0:
    none); whatever is still unsent stays in the spool for the next client.
    """

    def __init__(self, base_url: str, token: str, *, spool_path: str | os.PathLike[str] | None
                 = None, timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 flush_at_exit: float = 2.0) -> None:
        self.base_url = base_url
        self.spool = Spool(spool_path or default_spool_path(base_url))
        self._token = token
        self._http = httpx.Client(timeout=timeout, transport=transport)
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._closed = False
        if flush_at_exit > 0:
            atexit.register(self._at_exit, flush_at_exit)

    # -- emitting ----------------------------------------------------------------------

    def emit(self, event: Mapping[str, Any], idempotency_key: str | None = None, *,
             context: Mapping[str, Any] | None = None) -> str:
        """Validate ``event`` (``MilestoneInvalid`` names the failing fields), spool it
        durably and return its idempotency key (generated when not given). Sending happens
        in the background; ``flush`` waits for it."""
        item = _wire.spool_item(event, idempotency_key, context)
        self.spool.append(item)
        self._start()
        self._wake.set()
        return item["key"]

    def flush(self, timeout: float = 10.0) -> int:
        """Send what the spool holds, for at most ``timeout`` seconds; return how many
        milestones are left in it (0: the server has every one)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self._drain(deadline)
            if not result.left or time.monotonic() >= deadline:
                return result.left
            # Another drainer is at work, or the server said "later": look again shortly.
            time.sleep(min(0.05 if result.busy else 0.25, max(0.0, deadline - time.monotonic())))

    def close(self, timeout: float = 2.0) -> int:
        """Flush for up to ``timeout`` seconds, stop the sender; return what is left (it
        stays in the spool for the next client)."""
        left = self.flush(timeout) if timeout > 0 else self.spool.pending()
        self._closed = True
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=1)
        self._http.close()
        atexit.unregister(self._at_exit)
        return left

    def _at_exit(self, timeout: float) -> None:
        if not self._closed and self.spool.pending():
            self.close(timeout)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- task outcomes -----------------------------------------------------------------

    @contextlib.contextmanager
    def track(self, milestone_id: str, *, scope: str, claim: str,
              evidence: Sequence[Mapping[str, Any]] = (), next_action: str = "",
              context: Mapping[str, Any] | None = None, run_id: str | None = None
              ) -> Iterator[Any]:
        """``on-track`` now, then ``completed`` or ``blocked`` (the exception as ``log``
        evidence, re-raised unchanged). Arguments that could never make a valid milestone
        raise ``MilestoneInvalid`` before the body runs; a failure to emit is only logged."""
        from .tracking import Run

        run = Run(milestone_id, scope, claim, run_id or uuid.uuid4().hex, tuple(evidence),
                  next_action, dict(context or {}))
        run.check()
        self._emit_quietly(run.started(), run.key("started"), run.context)
        try:
            yield run
        except BaseException as exc:
            self._emit_quietly(run.blocked(exc), run.key("blocked"), run.context)
            raise
        self._emit_quietly(run.completed(), run.key("completed"), run.context)

    def milestone(self, milestone_id: str, **kwargs: Any) -> Callable[[F], F]:
        """``track`` as a decorator, for plain and ``async`` functions alike."""

        def decorate(fn: F) -> F:
            if inspect.iscoroutinefunction(fn):
                @functools.wraps(fn)
                async def run_async(*args: Any, **kw: Any) -> Any:
                    with self.track(milestone_id, **kwargs):
                        return await fn(*args, **kw)
                return run_async  # type: ignore[return-value]

            @functools.wraps(fn)
            def run(*args: Any, **kw: Any) -> Any:
                with self.track(milestone_id, **kwargs):
                    return fn(*args, **kw)
            return run  # type: ignore[return-value]

        return decorate

    def _emit_quietly(self, event: Mapping[str, Any], key: str,
                      context: Mapping[str, Any]) -> None:
        try:
            self.emit(event, key, context=context)
        except Exception:
            log.exception("could not spool milestone %s (%s)", event.get("milestoneId"), key)

    # -- sending -----------------------------------------------------------------------

    def _send(self, item: dict[str, Any]) -> Sent:
        try:
            response = self._http.post(**_wire.request_args(self.base_url, self._token, item))
        except httpx.HTTPError as exc:
            return _wire.outcome(item, None, exc)
        return _wire.outcome(item, response)

    def _drain(self, deadline: float | None = None) -> DrainResult:
        def late() -> bool:
            return self._stopping.is_set() or (deadline is not None
                                               and time.monotonic() >= deadline)
        return self.spool.drain(self._send, should_stop=late)

    def _start(self) -> None:
        with self._thread_lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="clawdbot-client-sender")
                self._thread.start()

    def _run(self) -> None:
        backoff = _Backoff()
        while not self._stopping.is_set():
            self._wake.clear()
            try:
                result = self._drain()
            except Exception:  # a disk error, say: keep the thread, try again later
                log.exception("draining the spool %s failed", self.spool.path)
                result = DrainResult(0, 1)
            if result.left and not result.busy:
                wait = backoff.failed(result.retry_after_s)
                log.warning("milestone server unavailable; %d milestone(s) spooled in %s, "
                            "next try in %.1fs", result.left, self.spool.path, wait)
                self._stopping.wait(wait)
            elif result.busy:
                self._stopping.wait(BACKOFF_START_S)
            else:
                backoff.reset()
                self._wake.wait()
