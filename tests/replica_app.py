"""The application against a real primary and its streaming replica, driven over a pipe.

``tests/revops/test_read_replica.py`` starts this module in a subprocess with ``DATABASE_URL``
at the test primary and ``DATABASE_REPLICA_URL`` at its standby (Django's settings are read
once per process, and pytest's own process runs on the shared server's test database). Each
line on stdin is one JSON command; each answer one JSON line on stdout. Requests go through
Django's test client, one per user name (so each keeps its cookies), and every SQL statement a
request runs is recorded with the port of the server it went to.
"""

import json
import logging
import re
import sys
from contextlib import ExitStack
from datetime import timedelta

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connections  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from revops import db_router  # noqa: E402
from tests.conftest import restore_default_definitions  # noqa: E402

# The application's own tables (the session and the signed-in user are read before any view).
APP_TABLES = re.compile(r"\b(leads|metrics|scoring)_[a-z]")
NOTICE = re.compile(r'id="replica-notice"[^>]*>([^<]*)<')
clients: dict[str, Client] = {}
log_lines: list[str] = []


class _Remember(logging.Handler):
    def emit(self, record):
        log_lines.append(f"{record.levelname} {record.getMessage()}")


logging.getLogger("revops.db_router").addHandler(_Remember())


def _is_app_read(sql: str) -> bool:
    """A query (SELECT, or WITH … SELECT as the raw KPI statements are) of the app's tables."""
    head = sql.lstrip().upper()
    return head.startswith(("SELECT", "WITH")) and APP_TABLES.search(sql) is not None


def _port(alias: str) -> int:
    return int(connections[alias].settings_dict["PORT"])


def _recording(statements: list):
    def record(alias):
        def wrapper(execute, sql, params, many, context):
            statements.append({"port": _port(alias), "sql": sql[:200]})
            return execute(sql, params, many, context)

        return wrapper

    stack = ExitStack()
    for alias in connections:
        stack.enter_context(connections[alias].execute_wrapper(record(alias)))
    return stack


def op_setup(_command):
    from django.contrib.auth import get_user_model

    from metrics import services

    restore_default_definitions()
    users = get_user_model().objects
    for name in ("boss", "other"):
        if not users.filter(username=name).exists():
            users.create_superuser(name, f"{name}@example.com", "pw")
    meeting, _ = services.meeting_get_or_create_for_week(today=timezone.localdate())
    return {
        "meeting": meeting.held_on.isoformat(),
        "ports": {alias: _port(alias) for alias in connections},
        "routers": settings.DATABASE_ROUTERS,
    }


def op_lead(command):
    from tests.factories import LeadFactory

    lead = LeadFactory(last_name=command["name"], created_at=timezone.now() - timedelta(hours=1))
    return {"id": lead.pk}


def op_user_id(command):
    from django.contrib.auth import get_user_model

    return {"id": get_user_model().objects.get(username=command["name"]).pk}


def op_age_snapshots(_command):
    """Every snapshot due for its refresh (computed a minute ago, opened now)."""
    from metrics.models import KpiSnapshot

    now = timezone.now()
    count = KpiSnapshot.objects.update(computed_at=now - timedelta(seconds=59), requested_at=now)
    return {"count": count}


def _client(user: str, fresh: bool = False) -> Client:
    if fresh:
        clients.pop(user, None)
    if user not in clients:
        from django.contrib.auth import get_user_model

        clients[user] = Client()
        clients[user].force_login(get_user_model().objects.get(username=user))
    return clients[user]


def _request(command, method: str):
    statements: list = []
    client = _client(command["user"], fresh=command.get("fresh", False))
    with _recording(statements):
        if method == "get":
            response = client.get(command["path"], command.get("data") or {})
        else:
            response = client.post(command["path"], command.get("data") or {})
        body = (
            b"".join(response.streaming_content) if response.streaming else response.content
        ).decode()
    app_reads = [s for s in statements if _is_app_read(s["sql"])]
    notice = NOTICE.search(body)
    return {
        "status": response.status_code,
        "location": response.get("Location"),
        "found": {text: text in body for text in command.get("find", [])},
        "read_ports": sorted({s["port"] for s in app_reads}),
        # Where each read went, for a failing test's message.
        "reads": [f"{s['port']}: {s['sql'][:120]}" for s in app_reads],
        "cookies": sorted(response.cookies),
        # "Figures as of … (replica N s behind)", where the page shows its freshness.
        "notice": notice.group(1) if notice else None,
        "headers": {
            name: response.get(name)
            for name in (db_router.FIGURES_AS_OF_HEADER, db_router.REPLICA_LAG_HEADER)
            if response.has_header(name)
        },
    }


def op_get(command):
    return _request(command, "get")


def op_post(command):
    return _request(command, "post")


def op_settings(command):
    for name, value in command["values"].items():
        setattr(settings, name, value)
    db_router.replica_health_forget()
    log_lines.clear()
    return {}


def op_health(_command):
    db_router.replica_health_forget()
    health = db_router.replica_health()
    return {"reachable": health.reachable, "lag_seconds": health.lag_seconds}


def op_snapshots(_command):
    """The beat task's refresh, with every statement recorded."""
    from metrics import tasks

    statements: list = []
    with _recording(statements):
        result = tasks.refresh_snapshots()
    reads = [
        s for s in statements if _is_app_read(s["sql"]) and '"metrics_kpisnapshot"' not in s["sql"]
    ]
    return {
        "refreshed": result["refreshed"],
        "read_ports": sorted({s["port"] for s in reads}),
        "reads": [f"{s['port']}: {s['sql'][:120]}" for s in reads],
    }


def op_logs(_command):
    return {"lines": list(log_lines)}


def main() -> None:
    for line in sys.stdin:
        command = json.loads(line)
        try:
            answer = {"ok": True, **globals()[f"op_{command['op']}"](command)}
        except Exception as error:  # reported to the test, which fails with it
            import traceback

            answer = {"ok": False, "error": f"{error!r}", "traceback": traceback.format_exc()}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
