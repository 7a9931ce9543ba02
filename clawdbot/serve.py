"""``make run``: migrate, then serve the whole pipeline in the foreground.

Starts the ASGI server (daphne: HTTP and WebSocket) and the django-q2 worker as child
processes, runs the post-start steps (sample milestones into an empty database), and on
Ctrl-C or SIGTERM stops both children (and anything they forked), then exits. With the
embedded database this process uses the server for the whole run, so the server's watcher
stops PostgreSQL right after the run ends.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 15


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


def main() -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clawdbot.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    connection.ensure_connection()  # starts (and holds) the embedded server if it is used
    subprocess.run(_manage("migrate", "--no-input"), check=True, cwd=BASE_DIR)
    connection.close()

    host, port = settings.HOST, str(settings.PORT)
    children = {
        "web": subprocess.Popen(
            [sys.executable, "-m", "daphne", "-b", host, "-p", port, "clawdbot.asgi:application"],
            cwd=BASE_DIR,
            process_group=0,
        ),
        "worker": subprocess.Popen(_manage("qcluster"), cwd=BASE_DIR, process_group=0),
    }
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    print(f"ClawDBot serving on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
    exit_code = 0
    try:
        _post_start(settings)
        core = {c.pid: name for name, c in children.items()}
        while True:
            pid, status = os.wait()  # a signal interrupts this through _raise_stop
            if pid in core:
                print(f"{core[pid]} exited ({os.waitstatus_to_exitcode(status)}); stopping")
                children[core[pid]].returncode = os.waitstatus_to_exitcode(status)
                exit_code = 1
                break
    except _Stop:
        pass
    _stop_all(children)
    print("ClawDBot stopped.", flush=True)
    return exit_code


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the cleanup
    raise _Stop


def _post_start(settings: object) -> None:
    """Seed an empty database with sample milestones (see ``seed_milestones``)."""
    from django.core.management import get_commands

    if getattr(settings, "CLAWDBOT_SEED", False) and "seed_milestones" in get_commands():
        subprocess.Popen(_manage("seed_milestones", "--wait-for-server"), cwd=BASE_DIR)


def _stop_all(children: dict[str, subprocess.Popen[bytes]]) -> None:
    """Ask each child to stop, then make sure nothing of its process group is left.

    Each child runs in a process group of its own (so the supervisor decides the order of
    shutdown, whatever the terminal sends); the final SIGKILL to the group removes
    grandchildren a child left behind (the worker's forked processes, say).
    """
    for child in children.values():
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for child in children.values():
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        with contextlib.suppress(ProcessLookupError):  # an empty group: nothing was left
            os.killpg(child.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
