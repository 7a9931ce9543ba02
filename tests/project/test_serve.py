"""``make run``'s supervisor: serves, stops everything on Ctrl-C, keeps its data."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from clawdbot.embedded_pg import server
from tests.helpers import wait_for

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(var: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "CLAWDBOT_DB_NAME")}
    env.update(CLAWDBOT_VAR_DIR=str(var), PORT=str(port), CLAWDBOT_SEED="0",
               MILESTONE_LOG_PATH=str(var / "milestones.jsonl"))
    return env


def _manage(var: Path, port: int, *args: str) -> str:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=_env(var, port),
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2).json()["ok"]
    except (httpx.HTTPError, ValueError):
        return False


def _serve(var: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "clawdbot.serve"], cwd=ROOT, env=_env(var, port),
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    wait_for(lambda: _healthy(port) or proc.poll() is not None, timeout=120, what="health")
    assert proc.poll() is None, "make run exited before serving"
    return proc


def _ctrl_c(proc: subprocess.Popen[bytes]) -> list[psutil.Process]:
    """Send SIGINT to the foreground process group, as a terminal's Ctrl-C does.

    Returns every process the run had started, descendants included.
    """
    members = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(timeout=60) == 0
    return members


def test_run_serves_then_ctrl_c_leaves_nothing_behind_and_data_survives(var_dir):
    var, port = var_dir, _free_port()
    proc = _serve(var, port)
    assert httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5).status_code == 200
    _manage(var, port, "shell", "-c",
            "from django.contrib.auth.models import User; User.objects.create(username='kept')")
    members = _ctrl_c(proc)

    assert len(members) >= 4  # supervisor, web, worker and the worker's own processes
    wait_for(lambda: not [m for m in members if _alive(m)], timeout=10,
             what="every process of the run to end")
    wait_for(lambda: _stopped(var) and not _watchers(var), timeout=30,
             what="PostgreSQL and its watcher to stop after make run")

    proc = _serve(var, port)
    out = _manage(var, port, "shell", "-c",
                  "from django.contrib.auth.models import User;"
                  " print(User.objects.filter(username='kept').count())")
    _ctrl_c(proc)
    assert out.strip().splitlines()[-1] == "1"
    wait_for(lambda: _stopped(var), timeout=30, what="PostgreSQL to stop")


def _alive(proc: psutil.Process) -> bool:
    try:
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _watchers(var: Path) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if "clawdbot.embedded_pg.watcher" in cmdline and str(var) in cmdline:
            found.append(proc)
    return found


def _stopped(var: Path) -> bool:
    """Fully stopped: pg_ctl removes postmaster.pid last."""
    return not server.is_running(var) and not (var / "pgdata" / "postmaster.pid").exists()


@pytest.mark.parametrize("signals", [
    [signal.SIGTERM],
    [signal.SIGTERM, signal.SIGTERM],
    [signal.SIGINT, signal.SIGTERM, signal.SIGINT],
], ids=["term", "term-term", "int-term-int"])
def test_stop_signals_to_the_group_during_shutdown_still_stop_everything(var_dir, signals):
    """As ``timeout``, CI runners and ``kill -- -PGID`` stop a run: SIGTERM to the process
    group, and more signals while the supervisor is still stopping its children. Every
    one of them must leave nothing running and end the run cleanly (exit 0)."""
    var, port = var_dir, _free_port()
    proc = _serve(var, port)
    supervisor = psutil.Process(proc.pid)
    members = [supervisor, *supervisor.children(recursive=True)]
    web = next(p for p in supervisor.children() if "uvicorn" in " ".join(p.cmdline()))
    first, *more = signals
    os.killpg(proc.pid, first)
    if more:
        # The supervisor signals the web server only from its cleanup: once the web server
        # is gone, the cleanup has begun, and it is still waiting for the worker.
        wait_for(lambda: not _alive(web) or proc.poll() is not None, timeout=30,
                 what="the web server to stop")
        assert proc.poll() is None, "the run ended before a second signal could be sent"
        for sig in more:
            os.killpg(proc.pid, sig)
    assert proc.wait(timeout=60) == 0
    wait_for(lambda: not [m for m in members if _alive(m)], timeout=15,
             what="every process of the run to end")
    wait_for(lambda: _stopped(var) and not _watchers(var), timeout=30,
             what="PostgreSQL and its watcher to stop")
