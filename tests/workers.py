"""Run real Celery workers and a private Redis in subprocesses for integration tests."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lines of a worker's log kept for the failure message and REVOPS_WORKER_LOG.
LOG_TAIL_LINES = 2_000


@contextmanager
def celery_worker(
    env: dict[str, str],
    *,
    ready_timeout: float = 60.0,
    queue: str | None = None,
    hostname: str | None = None,
    stop_timeout: float = 20.0,
):
    """Start ``celery -A revops worker --pool=solo`` with ``env`` on top of ours; stop it (warm
    shutdown: the running task finishes) afterwards. ``queue`` may name several queues
    ("scoring,pipeline,celery"); ``hostname`` tells workers of one test apart. The worker's
    output is drained all along (a full pipe would block it) and its tail kept."""
    arguments = [
        "worker",
        "--pool=solo",
        "--loglevel=INFO",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *(["--queues", queue] if queue else []),
        *(["--hostname", hostname] if hostname else []),
    ]
    with celery_process(
        arguments, env, ready=" ready.", ready_timeout=ready_timeout, stop_timeout=stop_timeout
    ) as process:
        yield process


@contextmanager
def celery_beat(
    env: dict[str, str],
    *,
    ready: str,
    max_interval: int = 1,
    ready_timeout: float = 60.0,
    stop_timeout: float = 20.0,
):
    """Start ``celery -A revops beat`` (the scheduler the settings name), ready once its log
    shows ``ready``; ``max_interval`` is how often an idle beat looks again."""
    arguments = ["beat", "--loglevel=INFO", f"--max-interval={max_interval}"]
    with celery_process(
        arguments, env, ready=ready, ready_timeout=ready_timeout, stop_timeout=stop_timeout
    ) as process:
        yield process


@contextmanager
def celery_process(
    arguments: list[str],
    env: dict[str, str],
    *,
    ready: str,
    ready_timeout: float,
    stop_timeout: float,
):
    """``celery -A revops <arguments>`` with ``env`` on top of ours, yielded once a line of its
    output contains ``ready``; stopped with SIGTERM (then SIGKILL) afterwards."""
    full_env = {**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.local", **env}
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "revops", *arguments],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: deque[str] = deque(maxlen=LOG_TAIL_LINES)
    log_path = os.environ.get("REVOPS_WORKER_LOG")
    drain = None
    deadline = time.monotonic() + ready_timeout
    try:
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                raise RuntimeError(f"celery {arguments[0]} exited early:\n" + "".join(lines))
            lines.append(line)
            if ready in line:
                break
        else:
            raise RuntimeError(f"celery {arguments[0]} not ready in time:\n" + "".join(lines))
        drain = threading.Thread(target=_drain, args=(process, lines), daemon=True)
        drain.start()
        process.log_lines = lines  # for a test that wants to read it
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=stop_timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if drain is not None:
            drain.join(timeout=5)
        else:
            lines.extend(process.stdout.read().splitlines(keepends=True))
        process.stdout.close()
        if log_path:
            with open(log_path, "a") as log:
                log.write("".join(lines))


def _drain(process: subprocess.Popen, lines: deque) -> None:
    for line in iter(process.stdout.readline, ""):
        lines.append(line)


def kill_hard(process: subprocess.Popen) -> None:
    """``kill -9`` a worker: no warm shutdown, no acknowledgement, nothing cleaned up. With
    ``--pool=solo`` the process started is the one running the task."""
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


class RedisServer:
    """A Redis server of the test's own on ``port`` (never the shared one), without persistence:
    stopping it loses every queued message, as a broker crash would. ``stop`` and ``start``
    again on the same port simulate an outage."""

    def __init__(self, port: int):
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen | None = None

    def start(self) -> "RedisServer":
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not _listening(self.port):
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)
        self.process = None


@contextmanager
def redis_server(port: int):
    """``RedisServer`` on ``port``, started, and stopped afterwards whatever the test did."""
    server = RedisServer(port).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def private_redis(port: int):
    """A Redis server of the test's own on ``port`` (never the shared one), stopped afterwards."""
    with redis_server(port) as server:
        yield server.url


def wait_for(predicate, *, timeout: float = 30.0, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError("condition not met in time")
