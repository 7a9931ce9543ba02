"""One embedded server per checkout, shared by every process, stopped by the last one out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clawdbot.embedded_pg import server

pytestmark = pytest.mark.slow

USER_PROCESS = """
import sys
from pathlib import Path
from clawdbot.embedded_pg import server
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


def test_processes_share_one_server_and_the_last_one_stops_it(tmp_path):
    var = tmp_path / "var"
    first, pid1 = _user(var)
    second, pid2 = _user(var)
    assert pid1 == pid2

    _leave(first)
    assert server.is_running(var), "the server stopped while a process still used it"
    _leave(second)
    assert not server.is_running(var)
    assert not (var / "pgdata" / "postmaster.pid").exists()

    third, pid3 = _user(var)  # reused data directory, fresh server
    assert pid3 != pid1
    _leave(third)


def test_a_killed_user_does_not_keep_the_server_alive(tmp_path):
    var = tmp_path / "var"
    survivor, _ = _user(var)
    victim, _ = _user(var)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=10)
    assert server.is_running(var)
    _leave(survivor)
    assert not server.is_running(var)
