"""One embedded server per checkout, shared by every process, stopped by the last one out."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psycopg
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


# Run by the system's Python as another user (the checkout's .venv may be out of its reach).
OTHER_USER_CONNECTS = """
import socket, sys
try:
    socket.socket(socket.AF_UNIX).connect(sys.argv[1])
except OSError as exc:
    print(exc)
    sys.exit(3)
"""


def test_only_the_checkouts_user_reaches_the_server(var_dir):
    proc, _pid = _user(var_dir)
    try:
        paths = server.Paths(var_dir)
        info = paths.socket_dir.stat()
        assert info.st_mode & 0o777 == 0o700
        expected = pwd.getpwnam(server.SYSTEM_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        assert info.st_uid == expected
        with psycopg.connect(host=str(paths.socket_dir), user=server.DB_USER,
                             dbname="postgres") as conn:
            methods = conn.execute("SELECT DISTINCT auth_method FROM pg_hba_file_rules"
                                   " WHERE error IS NULL").fetchall()
            assert methods == [("peer",)]
        # A role the checkout's user is not mapped to is refused, even through the socket.
        with pytest.raises(psycopg.OperationalError, match="authentication failed"):
            psycopg.connect(host=str(paths.socket_dir), user="intruder", dbname="postgres")
        if os.geteuid() == 0:  # another system user cannot even open the socket
            nobody = pwd.getpwnam("nobody")
            other = subprocess.run(
                [shutil.which("python3", path="/usr/bin:/bin") or "python3", "-c",
                 OTHER_USER_CONNECTS, str(paths.socket_dir / ".s.PGSQL.5432")],
                user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[],
                capture_output=True, text=True, timeout=60, cwd="/",
            )
            assert other.returncode == 3, other.stdout + other.stderr
            assert "Permission denied" in other.stdout
    finally:
        _leave(proc)
    wait_for(lambda: _stopped(var_dir), timeout=30, what="the server to stop")
