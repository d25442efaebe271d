"""Suite-wide setup: service checks, and fixtures shared across apps."""

import os
import socket
from urllib.parse import urlsplit

import pytest
from django.conf import settings

REQUIRE_SERVICES = (
    os.environ.get("REVOPS_REQUIRE_SERVICES") == "1" or os.environ.get("CI") == "true"
)


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 3
        ):
            return True
    except OSError:
        return False


def broker_is_redis() -> bool:
    return settings.CELERY_BROKER_URL.startswith("redis://")


def pytest_sessionstart(session):
    if not REQUIRE_SERVICES:
        return
    problems = []
    if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
        problems.append("DATABASE_URL does not point at PostgreSQL")
    elif not _reachable(os.environ.get("DATABASE_URL", ""), 5432):
        problems.append(f"PostgreSQL is unreachable at {os.environ.get('DATABASE_URL')}")
    if not broker_is_redis():
        problems.append("CELERY_BROKER_URL does not point at Redis")
    elif not _reachable(settings.CELERY_BROKER_URL, 6379):
        problems.append(f"Redis is unreachable at {settings.CELERY_BROKER_URL}")
    if problems:
        pytest.exit("Required services missing: " + "; ".join(problems), returncode=3)


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's, and before the test database is dropped, the sessions the first views'
    read threads keep (``revops.concurrent_reads``) closed: they would keep it from being
    dropped."""
    yield
    from revops.concurrent_reads import pool_connections_close

    with django_db_blocker.unblock():
        pool_connections_close()


@pytest.fixture(autouse=True)
def _empty_cache():
    """Each test starts with an empty cache: cached reads keyed by row counts and ids could
    otherwise match another test's rows (SQLite reuses ids after a rollback)."""
    from django.core.cache import cache

    cache.clear()


@pytest.fixture
def admin_user(db, django_user_model):
    return django_user_model.objects.create_superuser("ops", "ops@example.com", "pw")


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


def restore_default_definitions() -> None:
    """Re-create what the data migrations install (v1 definitions, scoring model, reason and
    objection lists, the role groups with their permissions) after a transactional test's flush
    removed it."""
    import importlib

    from django.apps import apps

    from leads.models import LifecycleVersion
    from leads.roles import roles_grant

    if LifecycleVersion.objects.exists():
        return
    # The role groups and their permissions (a flush removed permissions and content types too).
    from django.contrib.auth.management import create_permissions
    from django.contrib.contenttypes.management import create_contenttypes

    for app_config in apps.get_app_configs():
        create_contenttypes(app_config, verbosity=0)
        create_permissions(app_config, verbosity=0)
    roles_grant()
    for module, function in (
        ("leads.migrations.0002_default_definitions", "create_defaults"),
        ("scoring.migrations.0002_default_model", "create_default_model"),
        ("leads.migrations.0006_default_objections", "create_objections"),
    ):
        getattr(importlib.import_module(module), function)(apps, None)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Browser tests run last. Playwright's event loop gives Django a fresh connection context,
    in which the serialized copy that transactional tests restore the migrations' rows from is
    out of reach; after them, no other test needs it."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/browser/"))
    unrestored = [item.nodeid for item in items if _flushes_without_restoring(item)]
    if unrestored:
        raise pytest.UsageError(
            "A transactional test must restore the migrations' rows after its flush "
            "(django_db(transaction=True, serialized_rollback=True)), or every transactional "
            "test after it in the same process fails on duplicate content types: "
            + ", ".join(unrestored)
        )


def _flushes_without_restoring(item) -> bool:
    marker = item.get_closest_marker("django_db")
    return (
        marker is not None
        and marker.kwargs.get("transaction", False)
        and not marker.kwargs.get("serialized_rollback", False)
        and not item.nodeid.startswith("tests/browser/")
    )


def pytest_configure(config):
    # Every figure the tests build also goes through plotly.graph_objects, which validates it
    # (metrics.charts writes Plotly's JSON itself, unvalidated, in the app).
    from metrics import charts

    charts.VALIDATE_FIGURES = True
