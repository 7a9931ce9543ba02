"""The durable local spool: milestones waiting for the server, in order, across processes.

Files, all beside ``path``:

* ``path``: JSONL, one item per line (``{"key", "body", "queuedAtUtc"}``), appended and
  fsync'd before ``append`` returns, so an item the caller was told about survives a crash
  or ``kill -9`` of the process.
* ``path.cursor``: the byte offset up to which items are done (sent, or set aside as
  refused). Replaced atomically (write, fsync, rename) after each item.
* ``path.rejected``: items the server refused for good (400, 409, ...), with its answer,
  so nothing is dropped silently.
* ``path.lock`` (held for the few microseconds of an append or a compaction) and
  ``path.drain.lock`` (held by the one drainer, in any process, that is sending): both
  ``flock``, which the kernel releases when a process dies however it dies.

Exactly once rests on the server, not on the spool: an item is sent, then the cursor
moves. A drainer killed between the two sends that item again, with the same
idempotency key, and the server answers the first answer again and emits nothing.
"""

from __future__ import annotations

import contextlib
import enum
import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class Outcome(enum.Enum):
    DONE = "done"  # the server has it
    REFUSED = "refused"  # the server will never take it as it is: set aside, go on
    LATER = "later"  # the server cannot take it now: stop, keep it first in line


@dataclass(frozen=True)
class Sent:
    outcome: Outcome
    detail: str = ""  # the server's answer or the error, for the rejected file
    retry_after_s: float | None = None


@dataclass(frozen=True)
class DrainResult:
    done: int  # items sent or set aside in this call
    left: int  # items still waiting
    busy: bool = False  # another drainer holds the spool
    retry_after_s: float | None = None  # the server's hint when it stopped the drain


class Spool:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.cursor_path = self.path.with_name(self.path.name + ".cursor")
        self.rejected_path = self.path.with_name(self.path.name + ".rejected")
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._drain_lock_path = self.path.with_name(self.path.name + ".drain.lock")

    # -- appending ---------------------------------------------------------------------

    def append(self, item: dict[str, Any]) -> None:
        """Add ``item`` at the end, durably (fsync'd) before returning."""
        line = (json.dumps(item, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        created = not self.path.exists()
        if created:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._locked(self._lock_path):
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                size = os.fstat(fd).st_size
                # A writer killed mid-line left a fragment: end it, so this item stands
                # on a line of its own (the fragment is set aside as unreadable).
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line
                _write_all(fd, line)
                os.fsync(fd)
            finally:
                os.close(fd)
        if created:
            _fsync_dir(self.path.parent)

    # -- reading -----------------------------------------------------------------------

    def pending(self) -> int:
        """How many items wait to be sent."""
        return sum(1 for _ in self._lines(self._cursor()))

    def items(self) -> list[dict[str, Any]]:
        """The waiting items, oldest first (unreadable lines left out)."""
        out = []
        for _, raw in self._lines(self._cursor()):
            with contextlib.suppress(ValueError):
                out.append(json.loads(raw))
        return out

    # -- draining ----------------------------------------------------------------------

    def drain(self, send: Callable[[dict[str, Any]], Sent], *,
              should_stop: Callable[[], bool] = lambda: False) -> DrainResult:
        """Send waiting items in order with ``send`` until none is left, one answers
        ``LATER`` or ``should_stop()``; a no-op (``busy``) while another drainer runs."""
        with self._try_locked(self._drain_lock_path) as got:
            if not got:
                return DrainResult(0, self.pending(), busy=True)
            done, retry_after = 0, None
            cursor = self._cursor()
            stopped = False
            while not stopped:
                batch = list(self._lines(cursor))
                if not batch:
                    break
                for end, raw in batch:
                    if should_stop():
                        stopped = True
                        break
                    result = self._send_line(raw, send)
                    if result.outcome is Outcome.LATER:
                        stopped, retry_after = True, result.retry_after_s
                        break
                    cursor = end
                    self._set_cursor(cursor)
                    done += 1
            self._compact_if_done(cursor)
            return DrainResult(done, self.pending(), retry_after_s=retry_after)

    def _send_line(self, raw: bytes, send: Callable[[dict[str, Any]], Sent]) -> Sent:
        try:
            item = json.loads(raw)
            if not isinstance(item, dict) or "body" not in item:
                raise ValueError("not a spool item")
        except ValueError as exc:
            self._reject({"line": raw.decode("utf-8", "replace")}, f"unreadable: {exc}")
            return Sent(Outcome.REFUSED)
        result = send(item)
        if result.outcome is Outcome.REFUSED:
            self._reject(item, result.detail)
        return result

    def _reject(self, item: dict[str, Any], detail: str) -> None:
        line = json.dumps({**item, "refusal": detail}, ensure_ascii=False) + "\n"
        with open(self.rejected_path, "a", encoding="utf-8") as file:
            file.write(line)
            file.flush()
            os.fsync(file.fileno())

    def _compact_if_done(self, cursor: int) -> None:
        """Empty the spool once every item is done (under the append lock, so an item
        appended meanwhile is never cut off). The cursor goes to 0 first: a crash between
        the two steps sends done items again, which their keys make harmless."""
        if not cursor:
            return
        with self._locked(self._lock_path):
            if not self.path.exists() or self.path.stat().st_size != cursor:
                return
            self._set_cursor(0)
            os.truncate(self.path, 0)

    # -- files -------------------------------------------------------------------------

    def _lines(self, offset: int) -> Iterator[tuple[int, bytes]]:
        """``(end offset, line)`` of each complete line from ``offset`` on."""
        try:
            with open(self.path, "rb") as file:
                file.seek(offset)
                data = file.read()
        except FileNotFoundError:
            return
        position = offset
        for line in data.split(b"\n")[:-1]:  # the last part is empty or an unfinished line
            position += len(line) + 1
            if line.strip():
                yield position, line

    def _cursor(self) -> int:
        try:
            cursor = int(self.cursor_path.read_text() or 0)
        except (FileNotFoundError, ValueError):
            return 0
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return 0
        return cursor if cursor <= size else 0

    def _set_cursor(self, offset: int) -> None:
        tmp = self.cursor_path.with_name(self.cursor_path.name + f".{os.getpid()}.tmp")
        with open(tmp, "w") as file:
            file.write(str(offset))
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self.cursor_path)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _try_locked(self, path: Path) -> Iterator[bool]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
