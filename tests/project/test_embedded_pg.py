"""One embedded server per checkout, shared by every process, stopped by the last one out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clawdbot.embedded_pg import server
from tests.helpers import wait_for

pytestmark = pytest.mark.slow

USER_PROCESS = """
import sys
from pathlib import Path
from clawdbot.embedded_pg import server
from tests.helpers import wait_for
var = Path(sys.argv[1])
server.ensure_running(var)
print((var / "pgdata" / "postmaster.pid").read_text().split()[0], flush=True)
sys.stdin.readline()
"""


def _user(var: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", USER_PROCESS, str(var)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    line = proc.stdout.readline()
    assert line, "the user process did not report a server"
    return proc, int(line)


def _leave(proc: subprocess.Popen[str]) -> None:
    proc.stdin.write("\n")
    proc.stdin.flush()
    assert proc.wait(timeout=60) == 0


def test_processes_share_one_server_and_the_last_one_stops_it(var_dir):
    var = var_dir
    first, pid1 = _user(var)
    second, pid2 = _user(var)
    assert pid1 == pid2

    _leave(first)
    assert server.is_running(var), "the server stopped while a process still used it"
    _leave(second)
    wait_for(lambda: _stopped(var), timeout=30, what="the server to stop")

    third, pid3 = _user(var)  # reused data directory, fresh server
    assert pid3 != pid1
    _leave(third)


def test_the_server_stays_up_while_a_user_starts_during_shutdown_races(var_dir):
    var = var_dir
    for _ in range(3):  # leave and join back to back: a newcomer always gets a live server
        first, _pid = _user(var)
        _leave(first)
        second, _pid = _user(var)
        assert server.is_running(var)
        _leave(second)
    wait_for(lambda: _stopped(var), timeout=30, what="the server to stop")


def test_a_killed_user_does_not_keep_the_server_alive(var_dir):
    var = var_dir
    survivor, _ = _user(var)
    victim, _ = _user(var)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert server.is_running(var)
    _leave(survivor)
    wait_for(lambda: _stopped(var), timeout=30, what="the server to stop")


def _stopped(var: Path) -> bool:
    """Fully stopped: pg_ctl removes postmaster.pid last."""
    return not server.is_running(var) and not (var / "pgdata" / "postmaster.pid").exists()
