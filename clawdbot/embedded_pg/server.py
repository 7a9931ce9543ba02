"""The embedded PostgreSQL: one server per checkout, from the ``pgserver`` wheel's binaries.

Used whenever ``DATABASE_URL`` is unset. Every process of the project (web, worker,
management commands, tests) shares one server running on ``var/pgdata``:

* ``ensure_running()`` starts it if needed and registers the calling process as a *user*
  by holding a shared ``flock`` on ``var/pg.users``. The kernel drops that lock when the
  process dies, however it dies (``kill -9``, ``os._exit`` in a forked worker), so there is
  no pid list to go stale and no exit hook to be skipped.
* A detached watcher process (``watcher.py``) waits to take that lock *exclusively*, which
  the kernel grants once the last user is gone, then stops the server (``pg_ctl stop -m
  fast``) and exits. Start and stop both run under ``var/pg.lock``, so a process starting
  while the server stops waits and then starts it again.

PostgreSQL refuses to run as root. As root, the server runs as the system user
``clawdbot-pg`` (created with ``useradd`` when missing), and the folders above ``var/``
are given the search bit for others so that user can reach its data directory.
The server listens on a Unix socket only, so it never competes with another PostgreSQL for
a TCP port. Only the checkout's user reaches it: the socket's directory is private to the
server's user (mode 0700; root passes anyway), and ``pg_hba.conf`` admits local peers whose
operating-system user is the one running this code (``peer`` with a map), nobody else.

Two database roles (``clawdbot.dbroles``): ``postgres`` owns the tables and runs
migrations; the web server, the worker and the tests connect as ``clawdbot_app``, which
may only read and append the event log.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict


def _pg_bin() -> Path:
    # Locate the wheel's binaries without importing pgserver: its import has side effects
    # (a runtime-dir lock file) that this module does not want.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the pgserver package is not installed (pip install pgserver)")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


PG_BIN = _pg_bin()
SYSTEM_USER = "clawdbot-pg"
DB_USER = "postgres"  # the bootstrap superuser: owns the tables, runs migrations
RUNTIME_USER = "clawdbot_app"  # what the app connects as (see clawdbot.dbroles)
IDENT_MAP = "clawdbot"
DB_NAME = "clawdbot"
START_TIMEOUT_S = 60


class EmbeddedServerError(RuntimeError):
    """The embedded PostgreSQL could not be initialised or started; the message says why."""


@dataclass(frozen=True)
class Paths:
    var: Path

    @property
    def pgdata(self) -> Path:
        return self.var / "pgdata"

    @property
    def start_lock(self) -> Path:
        return self.var / "pg.lock"

    @property
    def users_lock(self) -> Path:
        return self.var / "pg.users"

    @property
    def watcher_lock(self) -> Path:
        return self.var / "pg.watcher"

    @property
    def log(self) -> Path:
        return self.pgdata / "server.log"

    @property
    def socket_dir(self) -> Path:
        # A Unix socket path may hold ~107 bytes; a deep checkout falls back to /tmp,
        # named after the data directory so two checkouts never share a socket.
        candidate = self.var / "run"
        if len(str(candidate / ".s.PGSQL.5432")) < 100:
            return candidate
        digest = hashlib.sha256(str(self.pgdata).encode()).hexdigest()[:12]
        return Path(tempfile.gettempdir()) / f"clawdbot-pg-{digest}"


_users_fd: int | None = None


def connection_params(var: Path) -> dict[str, str]:
    """Django ``DATABASES`` entries for the embedded server (it may not be running yet)."""
    paths = Paths(var)
    return {"HOST": str(paths.socket_dir), "PORT": "5432", "USER": RUNTIME_USER, "NAME": DB_NAME}


def owner_params() -> dict[str, str]:
    """``settings.DATABASE_OWNER``: what ``migrate`` and test set-up connect as instead."""
    return {"USER": DB_USER}


def ensure_running(var: Path) -> None:
    """Start the server if it is not running, and register this process as one of its users.

    Idempotent within a process. Raises ``EmbeddedServerError`` with the server log's tail
    when PostgreSQL does not come up.
    """
    global _users_fd
    if _users_fd is not None and (Paths(var).socket_dir / ".s.PGSQL.5432").exists():
        return
    paths = Paths(var)
    paths.var.mkdir(parents=True, exist_ok=True)
    with _locked(paths.start_lock):
        if _users_fd is None:
            # Held until this process ends; forked children share it, which is right:
            # they use the server too.
            _users_fd = os.open(paths.users_lock, os.O_RDWR | os.O_CREAT, 0o644)
            fcntl.flock(_users_fd, fcntl.LOCK_SH)
        run_as = _system_user()
        if not (paths.pgdata / "PG_VERSION").exists():
            _initdb(paths, run_as)
        _write_access_rules(paths, run_as)  # also tightens a data directory made before
        _prepare_socket_dir(paths, run_as)
        if not _socket_ready(paths):
            _start(paths, run_as)
        _ensure_watcher(paths)
        _ensure_database(paths)


def _ensure_watcher(paths: Paths) -> None:
    """Make sure a watcher (``watcher.py``) will stop the server once its last user is gone.

    Called with the start lock held. The watcher holds ``pg.watcher`` while it lives, so a
    free lock means there is none (it stopped the server, or was killed).
    """
    probe = os.open(paths.watcher_lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return  # a watcher is on duty
    finally:
        os.close(probe)
    subprocess.Popen(
        [sys.executable, "-m", "clawdbot.embedded_pg.watcher", str(paths.var)],
        cwd=Path(__file__).resolve().parents[2],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # outlives whoever started it, ignores their Ctrl-C
    )


def stop(var: Path) -> None:
    """Stop the server now if it runs (fast shutdown: sessions are rolled back)."""
    paths = Paths(var)
    if not (paths.pgdata / "postmaster.pid").exists():
        return
    subprocess.run(
        [str(PG_BIN / "pg_ctl"), "-D", str(paths.pgdata), "-m", "fast", "-w", "stop"],
        **_as_user(_system_user()),
        capture_output=True,
        check=False,
        cwd="/",
    )


def is_running(var: Path) -> bool:
    return _socket_ready(Paths(var))


class _locked:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def _system_user() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        useradd = shutil.which("useradd") or "/usr/sbin/useradd"
        subprocess.run(
            [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
            check=True,
            capture_output=True,
        )
    return SYSTEM_USER


class _RunAs(TypedDict, total=False):
    user: int
    group: int
    extra_groups: list[int]


def _as_user(name: str | None) -> _RunAs:
    """subprocess arguments that drop root for ``name``: uid, its group, no extra groups.

    Keeping root's groups would be worse than useless: a folder's *group* bits (often
    ``---`` for root's folders) would then apply instead of the *other* bits we grant.
    """
    if name is None:
        return {}
    entry = pwd.getpwnam(name)
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


def _grant_access(paths: Paths, user: str) -> None:
    """Let the unprivileged server user reach var/ and the binaries (search bit only)."""
    entry = pwd.getpwnam(user)
    for target in (paths.pgdata, PG_BIN):
        for parent in reversed(target.resolve().parents):
            mode = parent.stat().st_mode
            if not mode & 0o001:
                parent.chmod(mode | 0o001)
    paths.pgdata.mkdir(parents=True, exist_ok=True)
    os.chown(paths.pgdata, entry.pw_uid, entry.pw_gid)
    paths.pgdata.chmod(0o700)


def _client_user() -> str:
    """The operating-system user the checkout's processes run as (peer authentication)."""
    return pwd.getpwuid(os.geteuid()).pw_name


def _write_access_rules(paths: Paths, run_as: str | None) -> None:
    """pg_hba.conf and pg_ident.conf: local peers mapped from this user to our roles only."""
    client = _client_user()
    rules = {
        "pg_hba.conf": "# Written by clawdbot.embedded_pg.server on every start.\n"
        f"local all all peer map={IDENT_MAP}\n",
        "pg_ident.conf": "# Written by clawdbot.embedded_pg.server on every start.\n"
        + "".join(f"{IDENT_MAP} {client} {role}\n" for role in (DB_USER, RUNTIME_USER)),
    }
    for name, text in rules.items():
        path = paths.pgdata / name
        if path.exists() and path.read_text() == text:
            continue
        path.write_text(text)
        path.chmod(0o600)
        if run_as:
            entry = pwd.getpwnam(run_as)
            os.chown(path, entry.pw_uid, entry.pw_gid)


def _prepare_socket_dir(paths: Paths, run_as: str | None) -> None:
    """The socket's directory: the server user's own, mode 0700.

    Refuses a directory someone else made (the fallback lives in the shared /tmp).
    """
    uid = pwd.getpwnam(run_as).pw_uid if run_as else os.geteuid()
    paths.socket_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = paths.socket_dir.lstat()
    if run_as and info.st_uid != uid and info.st_uid == os.geteuid():
        os.chown(paths.socket_dir, uid, pwd.getpwnam(run_as).pw_gid)
    elif info.st_uid != uid or not paths.socket_dir.is_dir() or paths.socket_dir.is_symlink():
        raise EmbeddedServerError(
            f"{paths.socket_dir} belongs to another user (uid {info.st_uid}); remove it"
        )
    paths.socket_dir.chmod(0o700)


def _initdb(paths: Paths, run_as: str | None) -> None:
    paths.pgdata.mkdir(parents=True, exist_ok=True)
    if run_as:
        _grant_access(paths, run_as)
    result = subprocess.run(
        [
            str(PG_BIN / "initdb"),
            "-D", str(paths.pgdata),
            "-U", DB_USER,
            "--auth-local=peer",
            "--auth-host=reject",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
        ],
        **_as_user(run_as),
        capture_output=True,
        text=True,
        cwd="/",
    )
    if result.returncode != 0:
        raise EmbeddedServerError(
            f"initdb failed in {paths.pgdata}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def _start(paths: Paths, run_as: str | None) -> None:
    if run_as:
        _grant_access(paths, run_as)
    options = (
        f"-h '' -k {paths.socket_dir} -c max_connections=300 -c shared_buffers=256MB"
        " -c unix_socket_permissions=0700"
    )
    result = subprocess.run(
        [
            str(PG_BIN / "pg_ctl"),
            "-D", str(paths.pgdata),
            "-l", str(paths.log),
            "-o", options,
            "-w", "-t", str(START_TIMEOUT_S),
            "start",
        ],
        **_as_user(run_as),
        capture_output=True,
        text=True,
        cwd="/",
    )
    if result.returncode != 0 or not _socket_ready(paths):
        tail = paths.log.read_text(errors="replace")[-2000:] if paths.log.exists() else ""
        raise EmbeddedServerError(
            f"PostgreSQL did not start on {paths.pgdata}:\n{result.stderr}\n{tail}"
        )


def _socket_ready(paths: Paths) -> bool:
    if not (paths.socket_dir / ".s.PGSQL.5432").exists():
        return False
    result = subprocess.run(
        [str(PG_BIN / "pg_isready"), "-q", "-h", str(paths.socket_dir), "-U", DB_USER],
        capture_output=True,
        check=False,
    )
    return result.returncode == 0


def _ensure_database(paths: Paths) -> None:
    import psycopg

    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        try:
            conn = psycopg.connect(
                host=str(paths.socket_dir), user=DB_USER, dbname="postgres", autocommit=True
            )
            break
        except psycopg.OperationalError:
            # "the database system is starting up" right after pg_ctl -w on a slow disk
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    with conn:
        conn.execute("SELECT pg_reload_conf()")  # a server started before the rules changed
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DB_NAME,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')
        role = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (RUNTIME_USER,))
        if not role.fetchone():
            conn.execute(
                f'CREATE ROLE "{RUNTIME_USER}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE'
            )
    # A database migrated before the runtime role existed: grant what migrate would have.
    from clawdbot.dbroles import EVENT_TABLE, runtime_grants

    with psycopg.connect(
        host=str(paths.socket_dir), user=DB_USER, dbname=DB_NAME, autocommit=True
    ) as conn:
        missing = conn.execute(
            "SELECT NOT has_table_privilege(%s, c.oid, 'SELECT') FROM pg_class c"
            " WHERE c.oid = to_regclass(%s)", (RUNTIME_USER, f"public.{EVENT_TABLE}"),
        ).fetchone()
        if missing and missing[0]:
            for statement in runtime_grants(RUNTIME_USER, DB_USER):
                conn.execute(statement)
