"""A real PostgreSQL primary and a streaming standby of it, for the read-replica tests.

Both are private clusters in a temporary folder, on free ports (never the shared server): the
primary made by ``initdb`` (trust auth, ``wal_level=replica``, a replication entry in
``pg_hba.conf``), the standby by ``pg_basebackup -R`` of it, started and waited for until the
primary reports it streaming. PostgreSQL refuses to run as root, so when the tests run as root
the servers (and the tools that write their folders) run as the ``postgres`` OS user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.workers import free_port

BIN_DIRS = [Path("/usr/lib/postgresql") / v / "bin" for v in ("17", "16", "15", "14")]
SERVER_USER = "postgres"


def postgres_bin_dir() -> Path | None:
    """Where initdb, pg_ctl and pg_basebackup live (PG_BIN_DIR, else Debian's folders, else
    PATH); None when PostgreSQL's server programs are not installed."""
    candidates = [Path(os.environ["PG_BIN_DIR"])] if os.environ.get("PG_BIN_DIR") else []
    candidates += BIN_DIRS
    if found := shutil.which("pg_basebackup"):
        candidates.append(Path(found).parent)
    for folder in candidates:
        if all((folder / tool).exists() for tool in ("initdb", "pg_ctl", "pg_basebackup")):
            return folder
    return None


def _as_server_user() -> list[str]:
    """The prefix that runs a server program as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    return ["runuser", "-u", SERVER_USER, "--"]


def _run(args: list[str], timeout: float = 60, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [*_as_server_user(), *args], capture_output=True, text=True, timeout=timeout, **kwargs
    )
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


class Cluster:
    """One PostgreSQL server of the test's own: its data folder, port and log."""

    def __init__(self, bin_dir: Path, data_dir: Path, port: int):
        self.bin_dir, self.data_dir, self.port = bin_dir, data_dir, port
        self.log = data_dir.parent / f"{data_dir.name}.log"

    def url(self, database: str) -> str:
        return f"postgres://{SERVER_USER}@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        _run(
            [
                str(self.bin_dir / "pg_ctl"),
                "start",
                "--wait",
                "--timeout=30",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log),
                "-o",
                f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data_dir.parent}",
            ]
        )

    def stop(self, mode: str = "fast") -> None:
        if (self.data_dir / "postmaster.pid").exists():
            _run([str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", mode])

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run ``sql`` (autocommit) and return its unaligned, tuples-only output."""
        return self._psql(["-c", sql], database)

    def psql_file(self, path: Path, database: str) -> None:
        """Run the SQL script at ``path`` (a dump) in one transaction."""
        self._psql(["--single-transaction", "-f", str(path)], database)

    def _psql(self, arguments: list[str], database: str) -> str:
        return _run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                SERVER_USER,
                "-d",
                database,
                *arguments,
            ]
        ).stdout.strip()


class ReplicaPair:
    """A primary and its streaming standby. ``database`` is created on the primary (and so
    exists on the standby)."""

    def __init__(self, bin_dir: Path, root: Path, database: str = "revops"):
        self.root = root
        self.database = database
        self.primary = Cluster(bin_dir, root / "primary", free_port())
        self.standby = Cluster(bin_dir, root / "standby", free_port())

    @property
    def primary_url(self) -> str:
        return self.primary.url(self.database)

    @property
    def standby_url(self) -> str:
        return self.standby.url(self.database)

    def start(self) -> ReplicaPair:
        self.start_primary()
        self.start_standby()
        return self

    def start_primary(self, extra_conf: str = "") -> None:
        """``initdb``, the replication settings (and ``extra_conf``), start, create the database."""
        _run(
            [
                str(self.primary.bin_dir / "initdb"),
                "-D",
                str(self.primary.data_dir),
                "-U",
                SERVER_USER,
                "--auth=trust",
                "--no-sync",
                "--encoding=UTF8",
                "--locale=C",
            ]
        )
        with open(self.primary.data_dir / "postgresql.conf", "a") as conf:
            conf.write(
                "\nwal_level = replica\nmax_wal_senders = 4\nhot_standby = on\n"
                "fsync = off\nfull_page_writes = off\n"
                "wal_receiver_status_interval = 1s\nhot_standby_feedback = on\n" + extra_conf
            )
        with open(self.primary.data_dir / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\n")
        self.primary.start()
        self.primary.psql(f'CREATE DATABASE "{self.database}"')

    def start_standby(self, timeout: float = 60.0) -> None:
        """A base backup of the primary as it is now (``-R``: it follows the primary), started
        and waited for until it streams. Loading data first and backing it up after is faster
        than streaming the load."""
        _run(
            [
                str(self.primary.bin_dir / "pg_basebackup"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.primary.port),
                "-U",
                SERVER_USER,
                "-D",
                str(self.standby.data_dir),
                "-R",  # standby.signal + primary_conninfo
                "--checkpoint=fast",
                "--wal-method=stream",
                "--no-sync",
            ],
            timeout=timeout,
        )
        self.standby.start()
        self.wait_streaming()

    def wait_streaming(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            streaming = "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'"
            if self.primary.psql(streaming) == "1":
                return
            time.sleep(0.1)
        raise RuntimeError("the standby did not start streaming:\n" + self.standby.log.read_text())

    def pause_replay(self, timeout: float = 5.0) -> None:
        """Stop the standby replaying what it receives (it keeps receiving)."""
        self.standby.psql("SELECT pg_wal_replay_pause()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.standby.psql("SELECT pg_get_wal_replay_pause_state()") == "paused":
                return
            time.sleep(0.05)

    def resume_replay(self) -> None:
        self.standby.psql("SELECT pg_wal_replay_resume()")

    def wait_caught_up(self, timeout: float = 30.0) -> None:
        """Until the standby has replayed everything the primary wrote so far."""
        # Everything inserted, not only what is written out yet.
        target = self.primary.psql("SELECT pg_current_wal_insert_lsn()")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = self.standby.psql(f"SELECT pg_last_wal_replay_lsn() >= '{target}'::pg_lsn")
            if done == "t":
                return
            time.sleep(0.05)
        raise RuntimeError("the standby did not catch up")

    def stop(self) -> None:
        for cluster in (self.standby, self.primary):
            with suppress(RuntimeError):
                cluster.stop("immediate")


@contextmanager
def replica_pair(database: str = "revops", *, standby: bool = True, extra_conf: str = ""):
    """A started ``ReplicaPair`` in a temporary folder owned by the server user, stopped and
    removed afterwards whatever happened (an exception, Ctrl-C). ``standby=False`` starts only
    the primary: ``pair.start_standby()`` follows once its data is loaded."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL's server programs (initdb, pg_basebackup) are not installed")
    root = Path(tempfile.mkdtemp(prefix="revops-replica-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(SERVER_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    os.chmod(root, 0o755)
    pair = ReplicaPair(bin_dir, root, database)
    try:
        pair.start_primary(extra_conf)
        if standby:
            pair.start_standby()
        yield pair
    finally:
        pair.stop()
        shutil.rmtree(root, ignore_errors=True)
