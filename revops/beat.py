"""Beat behind a leader lock: any number of beat processes may run (one per host, two during a
rolling deploy, a replica started by mistake); only the one holding the lock sends tasks.

``LeaderDatabaseScheduler`` is django-celery-beat's ``DatabaseScheduler`` whose every tick first
makes sure this process leads. A process that does not tick idle, checking again every
``max_interval`` (5 s by default), so it takes over within seconds of the leader's end. The
lock is held by the process itself, never by a lease that must be renewed in time:

- on PostgreSQL, a session-level advisory lock on a connection of its own: the server drops it
  the moment that session ends (the process died or was killed, the server restarted; a host
  that vanished is detected by TCP keepalives within about 30 s). Before every tick the leader
  checks the lock is still its own; if the connection was lost it stops sending at once.
- on SQLite (the embedded run, one machine by nature), an exclusive ``flock`` on a file next to
  the database, which the operating system releases when the process ends.

A new leader reads the schedule from the database as the previous one left it; entries are
saved after every task sent, so a takeover repeats at most the task sent in the instant before
the old leader died (every task is idempotent). The beat's database URL must reach PostgreSQL
directly or through a session-mode pooler: a transaction-mode pooler cannot hold a session lock.
"""

import datetime
import fcntl
import logging
import os
from pathlib import Path
from typing import Protocol

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, Error, connections
from django.db.utils import load_backend
from django_celery_beat.schedulers import DatabaseScheduler

logger = logging.getLogger(__name__)

# pg_try_advisory_lock(namespace, key): the namespaces of scoring (7301) and the other locks
# taken with a single bigint key never meet this one.
LOCK_NAMESPACE, LOCK_KEY = 7302, 1
# The lock's session tells a vanished peer within about 10 + 5 × 3 s (server and client side),
# so neither a dead leader's lock nor a cut-off leader's sending outlives it by long.
KEEPALIVE = {
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 5,
    "keepalives_count": 3,
}


class LeaderLock(Protocol):
    def acquire(self) -> bool:
        """Take the lock if it is free; True when this process holds it."""

    def held(self) -> bool:
        """Whether this process still holds the lock it took."""

    def release(self) -> None:
        """Let go of the lock (a no-op when not held)."""


class PostgresLeaderLock:
    """A session-level advisory lock on a connection of its own (never Django's, which
    ``close_old_connections`` may close between ticks)."""

    def __init__(self, alias: str = DEFAULT_DB_ALIAS):
        self.alias = alias
        self.connection = None

    def _connect(self):
        settings_dict = connections.settings[self.alias]
        wrapper = load_backend(settings_dict["ENGINE"]).DatabaseWrapper(
            {**settings_dict, "OPTIONS": {**settings_dict.get("OPTIONS", {}), **KEEPALIVE}},
            self.alias,
        )
        wrapper.ensure_connection()
        with wrapper.cursor() as cursor:
            # The server side of the keepalives: a leader host that vanished without closing
            # its connection loses the lock in about 25 s instead of the system's 2 hours.
            cursor.execute(
                "SELECT set_config('tcp_keepalives_idle', '10', false),"
                " set_config('tcp_keepalives_interval', '5', false),"
                " set_config('tcp_keepalives_count', '3', false)"
            )
        return wrapper

    def acquire(self) -> bool:
        if self.connection is None:
            self.connection = self._connect()
        with self.connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [LOCK_NAMESPACE, LOCK_KEY])
            return bool(cursor.fetchone()[0])

    def held(self) -> bool:
        if self.connection is None:
            return False
        try:
            with self.connection.cursor() as cursor:
                # Asked of the server, not remembered: a reconnect (or a pooler handing out
                # another session) would leave a lock this process merely believes it has.
                cursor.execute(
                    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
                    " AND granted AND pid = pg_backend_pid()"
                    " AND classid = %s AND objid = %s AND objsubid = 2)",
                    [LOCK_NAMESPACE, LOCK_KEY],
                )
                return bool(cursor.fetchone()[0])
        except Error:
            return False  # the session is gone, and its lock with it

    def release(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()  # the session's end releases its advisory locks
            except Exception:
                logger.debug("beat: closing the lock connection failed", exc_info=True)


class FileLeaderLock:
    """An exclusive ``flock`` on ``path``: one machine only (the embedded run on SQLite)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> bool:
        if self.fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self.fd = fd
        return True

    def held(self) -> bool:
        return self.fd is not None

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)  # closing the only descriptor releases the flock


def leader_lock(alias: str = DEFAULT_DB_ALIAS) -> LeaderLock:
    """The lock for the database the schedule lives in."""
    vendor = connections[alias].vendor
    if vendor == "postgresql":
        return PostgresLeaderLock(alias)
    if vendor == "sqlite":
        name = str(connections.settings[alias]["NAME"])
        in_memory = name == ":memory:" or "mode=memory" in name
        path = settings.VAR_DIR / "beat.lock" if in_memory else Path(f"{name}.beat-lock")
        return FileLeaderLock(path)
    raise NotImplementedError(f"no beat leader lock for a {vendor} database")


class LeaderDatabaseScheduler(DatabaseScheduler):
    """``DatabaseScheduler`` that sends only while this process holds the leader lock."""

    def __init__(self, *args, **kwargs):
        self._lock = leader_lock()
        self._leading = False
        self._standing_by = False
        super().__init__(*args, **kwargs)
        # Save each entry's last run right after sending it (not every 3 minutes): a process
        # taking over reads from the database when each task last went out.
        self.sync_every_tasks = 1

    @property
    def is_leader(self) -> bool:
        return self._leading

    def setup_schedule(self):
        """The configured entries (``beat_schedule``, celery's own) are written by the leader
        only, when it takes the lead. Written by every beat as it started, a stand-by's start
        changed the schedule under the leader, which read it all again; read at the instant of
        a send, a task went out twice (two probes 18 ms apart, seen in CI)."""
        if self._leading:
            super().setup_schedule()

    def tick(self, *args, **kwargs):
        if not self._lead():
            return self.max_interval
        return super().tick(*args, **kwargs)

    def _lead(self) -> bool:
        try:
            if self._leading:
                if self._lock.held():
                    return True
                logger.warning("beat: lost the leader lock; sending nothing until it is back")
                self._step_down()
            if not self._lock.acquire():
                if not self._standing_by:
                    logger.info("beat: another beat holds the leader lock; standing by")
                    self._standing_by = True
                return False
        except Exception:
            logger.warning("beat: could not check the leader lock", exc_info=True)
            self._step_down()
            return False
        self._leading, self._standing_by = True, False
        logger.info("beat: took the leader lock; scheduling")
        self.setup_schedule()
        self._read_schedule()
        return True

    def _step_down(self) -> None:
        self._leading = False
        self._lock.release()

    def _read_schedule(self) -> None:
        """Take the schedule as the database has it: when the previous leader last sent each
        task. The heap is rebuilt from it once (entries compare equal whatever their last run);
        a rebuild still pending from before would take the entries as they are now, which
        forget the runs sent after it (django-celery-beat advances copies), and send them again."""
        self._dirty.clear()
        self._schedule = self.all_as_schedule()
        self._last_full_sync = datetime.datetime.now()
        self._heap = None
        self._heap_invalidated = False

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._step_down()
