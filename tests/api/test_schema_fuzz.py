"""Schemathesis against a live server: every operation of ``/api/v1/schema/``, the event
ingestion body included, must answer without a server error, with a documented status code, a
documented content type and a body that matches the schema (issue 16).

A gunicorn subprocess serves a copy of the test database, seeded with a small demo data set,
under the production settings (DEBUG off; no HTTPS redirect, there is no TLS in front of it; Celery
tasks run in the web process). Schemathesis's CLI sends the requests as a RevOps admin, through
all its phases: the schema's examples, coverage (boundaries and invalid values of every
parameter and field), fuzzing, and stateful sequences that follow the schema's links (a create,
then operations on the created row). A fixed seed and a bounded example count keep it to a
couple of minutes on two cores. A failure shows schemathesis's report, each failing case with
the curl command that reproduces it (the token filtered out), and the server's log.

A longer run: ``SCHEMATHESIS_MAX_EXAMPLES=60 SCHEMATHESIS_SEED=7 pytest
tests/api/test_schema_fuzz.py``.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection, connections

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("REVOPS_TEST_ARTIFACTS", ROOT / "var" / "test-artifacts"))
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "10"))
SEED = int(os.environ.get("SCHEMATHESIS_SEED", "20261204"))
CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance"
)
SETUP = """
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command

from leads.roles import REVOPS_ADMIN
from revops.api_tokens.services import api_token_create

call_command("collectstatic", interactive=False, verbosity=0)
call_command("seed_demo", leads=60, events_per_lead=3, seed=7, as_of=None, verbosity=0)
admin = get_user_model().objects.create_user("fuzz.admin", "fuzz.admin@example.com", None)
admin.groups.add(Group.objects.get(name=REVOPS_ADMIN))
new = api_token_create(user=admin, name="schemathesis")
print("TOKEN", new.token.pk, new.key)
"""

pytestmark = [
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="the live server serves a copy of the test database: PostgreSQL only",
    ),
    pytest.mark.django_db,  # so that pytest-django creates the test database
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def database_url(settings_dict: dict, name: str) -> str:
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    credentials = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = f":{settings_dict['PORT']}" if settings_dict.get("PORT") else ""
    return f"postgres://{credentials}{host}{port}/{name}"


def server_env(url: str, static_root: Path) -> dict[str, str]:
    """The production settings, as a deployment sets them, for a server on 127.0.0.1."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "SECRET_KEY", "CELERY_", "AXES_"))
    }
    return env | {
        "DJANGO_SETTINGS_MODULE": "revops.settings.production",
        "SECRET_KEY": "schemathesis-" + "x" * 60,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": url,
        "STATIC_ROOT": str(static_root),
        "CELERY_BROKER_URL": "memory://",
        "CELERY_TASK_ALWAYS_EAGER": "true",
    }


@pytest.fixture(scope="module")
def live_api(django_db_setup, django_db_blocker, tmp_path_factory):
    """(base URL, a RevOps admin's token and its id, the server's log) of a gunicorn serving a
    seeded copy of the test database; the copy is dropped afterwards."""
    work = tmp_path_factory.mktemp("live-api")
    template = connection.settings_dict["NAME"]
    copy = f"{template}_live"
    with django_db_blocker.unblock():
        connections.close_all()  # a template database must have no other session: ours,
        with connection._nodb_cursor() as cursor:  # or one left idle by an earlier test's thread
            cursor.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [template],
            )
            cursor.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{copy}" TEMPLATE "{template}"')
    env = server_env(database_url(connection.settings_dict, copy), work / "static")
    server = None
    try:
        setup = subprocess.run(
            [sys.executable, "manage.py", "shell", "--no-imports", "-c", SETUP],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert setup.returncode == 0, setup.stderr[-3000:]
        token_id, token = setup.stdout.split("TOKEN ", 1)[1].split()[:2]
        port, log = free_port(), work / "server.log"
        server = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "revops.wsgi", "--workers", "2",
             "--bind", f"127.0.0.1:{port}", "--timeout", "60", "--capture-output",
             "--error-logfile", str(log)],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        _wait_until_up(f"{base}/healthz", server)
        yield base, token, token_id, log
    finally:
        if server is not None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
        with django_db_blocker.unblock(), connection._nodb_cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{copy}" WITH (FORCE)')


def _wait_until_up(url: str, server: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert server.poll() is None, "gunicorn stopped while starting"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"the live server did not answer {url} within {seconds} s")


def section(report: str, name: str) -> str:
    """One section of schemathesis's report (``==== ERRORS ====`` up to the next heading)."""
    found = re.search(rf"^=+ {name} =+$(.*?)(?=^=+ [A-Z ]+ =+$|\Z)", report, re.M | re.S)
    return found[0] if found else ""


def test_every_operation_answers_as_documented_under_fuzzing(live_api, tmp_path):
    base, token, token_id, log = live_api
    command = [
        str(Path(sys.executable).with_name("st")), "run", f"{base}/api/v1/schema/",
        "--header", f"Authorization: Token {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing,stateful",
        "--max-examples", str(MAX_EXAMPLES),
        "--seed", str(SEED),
        "--workers", "2",
        "--request-timeout", "30",
        # A connection the kernel resets under load is not the API's answer: retry it; an
        # answer that breaks a check is never retried.
        "--request-retries", "2",
        "--suppress-health-check", "all",
        "--continue-on-failure",
    ]  # fmt: skip
    started = time.monotonic()
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=900,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "120", "FUZZ_TOKEN_ID": token_id,
             "SCHEMATHESIS_HOOKS": str(Path(__file__).with_name("schemathesis_hooks.py"))},
    )  # fmt: skip
    report = result.stdout + result.stderr
    summary = report[report.find("SUMMARY") :] if "SUMMARY" in report else report[-3000:]
    print(f"schemathesis: {time.monotonic() - started:.0f} s\n{summary}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "schemathesis-report.txt").write_text(report)
    if result.returncode != 0:
        failures = "\n".join(section(report, name) for name in ("ERRORS", "FAILURES")) or report
        server_log = "\n".join(
            line
            for line in (log.read_text(errors="replace") if log.exists() else "").splitlines()
            if not re.match(r"\d{4}-\d\d-\d\d [\d:,]+ (INFO|WARNING) ", line)  # 4xx notes
        )
        pytest.fail(
            f"schemathesis found failures (seed {SEED}); each case below has its curl "
            f"reproduction (the whole report: {ARTIFACTS / 'schemathesis-report.txt'}).\n"
            f"{failures[:20000]}\n--- server log ---\n{server_log[-5000:]}",
            pytrace=False,
        )
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected and tested, summary
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) >= 70  # every operation
