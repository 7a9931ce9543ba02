"""``make run``: migrate, then serve the whole pipeline in the foreground.

Starts the ASGI server (uvicorn with ``WEB_CONCURRENCY`` worker processes, HTTP and
WebSocket) and the django-q2 worker (``Q_WORKERS`` processes) as child processes, runs
the post-start steps (sample milestones into an empty database), and on Ctrl-C or
SIGTERM stops both children (and anything they forked), then exits.
``python -m clawdbot.serve web`` (or ``worker``, ``release``) runs one of those roles in
the foreground instead, for the Procfile and docker-compose.yml. With the embedded
database this process uses the server for the whole run, so the server's watcher stops
PostgreSQL right after the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent
STOP_GRACE_S = 15


def web_stack() -> str:
    """The ASGI server ``make run`` uses: ``uvicorn`` (default) or ``daphne``.

    Chosen by measurement (docs/PERFORMANCE.md). Any number of processes reach every
    WebSocket: live milestones come through PostgreSQL (feed_app/live.py).
    """
    return os.environ.get("CLAWDBOT_WEB_SERVER", "uvicorn")


#: Connections in each web process's pool for Django's sync views (see settings.py: the
#: ASGI threads share them). The hot paths have a pool of their own (clawdbot/asyncdb.py).
WEB_DB_POOL_SIZE = "10"
#: Seconds uvicorn lets open requests finish on a stop (below STOP_GRACE_S).
GRACEFUL_S = 10


def web_concurrency() -> int:
    """``WEB_CONCURRENCY``: the number of web processes; by default one per core.

    Measured on 2 cores (docs/PERFORMANCE.md, "Full runs on this main"): since the lean hot
    path, one process serves the signed ingest alone about 20 % faster than two (the web,
    PostgreSQL and the load share two cores); two are the default all the same, so each
    process fans out to its own share of the sockets and one process dying leaves the
    site up. ``WEB_CONCURRENCY=1`` is the faster choice for ingest alone on 2 cores.
    """
    value = os.environ.get("WEB_CONCURRENCY", "").strip()
    if not value:
        return max(1, os.cpu_count() or 1)
    try:
        count = int(value)
    except ValueError:
        count = 0
    if count < 1:
        raise SystemExit(f"WEB_CONCURRENCY={value!r}: give a whole number of processes, 1 or more")
    return count


def web_env() -> dict[str, str]:
    """The environment of the web server process: the project's plus a database pool."""
    env = dict(os.environ)
    env.setdefault("DJANGO_DB_POOL_SIZE", WEB_DB_POOL_SIZE)
    return env


def access_log() -> bool:
    """``CLAWDBOT_ACCESS_LOG=1`` logs every request to the console (off by default)."""
    return os.environ.get("CLAWDBOT_ACCESS_LOG", "0").strip().lower() in ("1", "true", "yes")


def web_command(host: str, port: int | str, stack: str | None = None,
                workers: int | None = None) -> list[str]:
    """The command line that serves ``clawdbot.asgi`` with ``stack`` on host:port, in
    ``workers`` processes (default ``web_concurrency()``) sharing the one socket."""
    stack = stack or web_stack()
    workers = workers or web_concurrency()
    app = "clawdbot.asgi:application"
    if stack == "daphne":
        if workers > 1:
            raise SystemExit("daphne serves one process: use uvicorn for WEB_CONCURRENCY > 1")
        logs = ["--access-log", "-"] if access_log() else []
        return [sys.executable, "-m", "daphne", "-b", host, "-p", str(port), "-v", "0", *logs,
                "--no-server-name", app]
    if stack == "uvicorn":  # no Server header: no version strings for anyone (SPEC §11)
        log = "--access-log" if access_log() else "--no-access-log"
        return [sys.executable, "-m", "uvicorn", "--host", host, "--port", str(port),
                log, "--lifespan", "off", "--no-server-header", "--ws-max-size", "65536",
                # uvicorn's WebSocket protocol, a turn's frames per socket in one write.
                "--ws", "clawdbot.wsserver:CoalescedWebSocketProtocol",
                "--ws-per-message-deflate", "false",
                "--workers", str(workers), "--timeout-graceful-shutdown", str(GRACEFUL_S),
                # Forwarded headers are judged by clawdbot.forwarded, from trusted proxies.
                "--no-proxy-headers", app]
    raise ValueError(f"unknown web server {stack!r} (uvicorn or daphne)")


def _manage(*args: str) -> list[str]:
    return [sys.executable, str(BASE_DIR / "manage.py"), *args]


#: ``python -m clawdbot.serve <role>``: one process of the shape ``make run`` supervises,
#: for a process manager of its own (the Procfile, docker-compose.yml, systemd units).
ROLES = ("release", "web", "worker")


def role_command(role: str) -> list[str]:
    """The command line of one role: ``release`` (migrate), ``web`` (``web_command`` on
    ``HOST``:``PORT`` with ``WEB_CONCURRENCY`` processes) or ``worker`` (``qcluster``)."""
    if role == "release":
        return _manage("migrate", "--no-input")
    if role == "worker":
        return _manage("qcluster")
    if role == "web":
        from django.conf import settings

        return web_command(settings.HOST, settings.PORT)
    raise SystemExit(f"unknown role {role!r}: give one of {', '.join(ROLES)}")


def run_role(role: str) -> int:
    """Replace this process with ``role``'s: the process manager's signals reach it directly."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clawdbot.settings")
    import django

    django.setup()
    command = role_command(role)
    env = web_env() if role == "web" else dict(os.environ)
    os.chdir(BASE_DIR)
    os.execve(command[0], command, env)
    return 0  # not reached


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        if len(argv) > 1 or argv[0] not in ROLES:
            raise SystemExit(f"usage: python -m clawdbot.serve [{'|'.join(ROLES)}]")
        return run_role(argv[0])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clawdbot.settings")
    # The demo shows the pipeline's own delivery health on its feed (docs/EMITTING.md).
    os.environ.setdefault("CLAWDBOT_PIPELINE_MILESTONES", "1")
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection

    connection.ensure_connection()  # starts (and holds) the embedded server if it is used
    subprocess.run(role_command("release"), check=True, cwd=BASE_DIR)
    connection.close()
    from clawdbot import metrics

    # This run starts every process that counts (web and worker): earlier runs' counts go.
    metrics.directory_prepare(settings.METRICS_DIR, empty=True)

    host, port = settings.HOST, str(settings.PORT)
    children: dict[str, subprocess.Popen[bytes]] = {}
    # Handlers first: a signal that arrives while the children start still stops them all.
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    exit_code = 0
    try:
        children["web"] = subprocess.Popen(
            web_command(host, port), cwd=BASE_DIR, env=web_env(), process_group=0)
        children["worker"] = subprocess.Popen(role_command("worker"), cwd=BASE_DIR,
                                              process_group=0)
        print(f"ClawDBot serving on http://{host}:{port}/ (Ctrl-C stops)", flush=True)
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
    _ignore_stop_signals()
    _stop_all(children)
    print("ClawDBot stopped.", flush=True)
    return exit_code


class _Stop(Exception):
    pass


def _raise_stop(signum: int, _frame: object) -> None:
    _ignore_stop_signals()  # a second Ctrl-C or SIGTERM must not cut the cleanup short
    raise _Stop


def _ignore_stop_signals() -> None:
    """From the first stop on, further SIGINT and SIGTERM are ignored: the cleanup is
    bounded by STOP_GRACE_S and ends in SIGKILL to every child's group, so nothing is
    gained by cutting it short and everything left running would be lost to init."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _post_start(settings: object) -> None:
    """Seed an empty database with sample milestones (see ``seed_milestones``)."""
    from django.core.management import get_commands

    if getattr(settings, "CLAWDBOT_SEED", False) and "seed_milestones" in get_commands():
        subprocess.Popen(_manage("seed_milestones", "--wait-for-server"), cwd=BASE_DIR)


def stop_process(process: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM ``process`` and wait up to ``timeout`` seconds, then SIGKILL it."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=max(0.1, timeout))
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
        stop_process(child, timeout=deadline - time.monotonic())
        with contextlib.suppress(ProcessLookupError):  # an empty group: nothing was left
            os.killpg(child.pid, signal.SIGKILL)


if __name__ == "__main__":
    sys.exit(main())
