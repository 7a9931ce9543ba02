"""``python -m clawdbot.embedded_pg.watcher VAR``: stop the embedded server after its last user.

Started (detached) by ``server.ensure_running`` whenever no watcher holds ``pg.watcher``.
Blocks until it can lock ``pg.users`` exclusively, i.e. until no process holds its shared
lock any more. It then needs the start lock too: if a process is starting up (it holds the
start lock and waits for ``pg.users``), the watcher lets go of ``pg.users``, waits for the
start to finish and watches again. With both locks it stops the server and exits.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path

from clawdbot.embedded_pg import server


def watch(var: Path) -> None:
    paths = server.Paths(var)
    duty = os.open(paths.watcher_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(duty, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # another watcher is on duty
    users = os.open(paths.users_lock, os.O_RDWR | os.O_CREAT, 0o644)
    start = os.open(paths.start_lock, os.O_RDWR | os.O_CREAT, 0o644)
    while True:
        fcntl.flock(users, fcntl.LOCK_EX)  # granted once no process uses the server
        try:
            fcntl.flock(start, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            # A process is starting and waits for a shared lock on pg.users: let it in,
            # wait for its start to finish, then watch it like any other user.
            fcntl.flock(users, fcntl.LOCK_UN)
            fcntl.flock(start, fcntl.LOCK_EX)
            fcntl.flock(start, fcntl.LOCK_UN)
            continue
        server.stop(var)
        return


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
