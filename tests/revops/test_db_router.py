"""Read-replica routing without a replica server: the decision, the read-your-writes marks, the
settings, and that nothing changes without DATABASE_REPLICA_URL. The routing itself, against a
real streaming replica, is in test_read_replica.py."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.http import HttpResponse
from django.test import RequestFactory, override_settings

from revops import db_router
from revops.db_router import (
    PIN_COOKIE,
    ReadYourWritesMiddleware,
    ReplicaHealth,
    ReplicaRouter,
    choose_read_alias,
    figures_notice,
    stale_reads,
)

ROOT = Path(__file__).resolve().parents[2]


# --- The decision ----------------------------------------------------------------------------


def test_a_healthy_replica_within_the_bound_serves():
    health = ReplicaHealth(reachable=True, lag_seconds=3.0)
    assert choose_read_alias(health, max_lag=10, pinned=False) == "replica"


def test_a_replica_exactly_at_the_bound_still_serves():
    health = ReplicaHealth(reachable=True, lag_seconds=10.0)
    assert choose_read_alias(health, max_lag=10, pinned=False) == "replica"


def test_a_replica_behind_the_bound_is_skipped():
    health = ReplicaHealth(reachable=True, lag_seconds=10.5)
    assert choose_read_alias(health, max_lag=10, pinned=False) == "default"


def test_a_replica_that_replayed_nothing_yet_is_skipped():
    health = ReplicaHealth(reachable=True, lag_seconds=float("inf"))
    assert choose_read_alias(health, max_lag=10, pinned=False) == "default"


def test_an_unreachable_replica_is_skipped():
    assert choose_read_alias(ReplicaHealth(reachable=False), max_lag=10, pinned=False) == "default"


def test_a_reader_who_just_wrote_reads_the_primary():
    health = ReplicaHealth(reachable=True, lag_seconds=0.0)
    assert choose_read_alias(health, max_lag=10, pinned=True) == "default"


def test_without_a_replica_everything_reads_the_primary():
    assert choose_read_alias(None, max_lag=10, pinned=False) == "default"


# --- "Figures as of …" -----------------------------------------------------------------------

REPLAYED_AT = datetime(2026, 3, 2, 14, 0, 5, tzinfo=UTC)


def test_a_page_from_a_replica_behind_the_notice_bound_says_when_its_figures_are_from():
    health = ReplicaHealth(reachable=True, lag_seconds=7.4, as_of=REPLAYED_AT)

    notice = figures_notice("replica", health, notice_after=5)

    assert (notice.as_of, notice.lag_seconds, notice.lag_text) == (REPLAYED_AT, 7.4, "7")


def test_a_replica_at_most_the_notice_bound_behind_says_nothing():
    at_bound = ReplicaHealth(reachable=True, lag_seconds=5.0, as_of=REPLAYED_AT)
    caught_up = ReplicaHealth(reachable=True, lag_seconds=0.0, as_of=REPLAYED_AT)
    assert figures_notice("replica", at_bound, notice_after=5) is None
    assert figures_notice("replica", caught_up, notice_after=5) is None


def test_a_page_read_from_the_primary_says_nothing_however_far_the_replica_is_behind():
    health = ReplicaHealth(reachable=True, lag_seconds=60.0, as_of=REPLAYED_AT)
    assert figures_notice("default", health, notice_after=5) is None


def test_no_notice_without_a_replica_or_without_its_replay_time():
    assert figures_notice("default", None, notice_after=5) is None
    assert figures_notice("replica", ReplicaHealth(reachable=False), notice_after=5) is None
    unknown = ReplicaHealth(reachable=True, lag_seconds=9.0, as_of=None)
    assert figures_notice("replica", unknown, notice_after=5) is None


# --- The router ------------------------------------------------------------------------------


def test_writes_always_go_to_the_primary():
    token = db_router._read_alias.set("replica")
    try:
        assert ReplicaRouter().db_for_write(None) == "default"
    finally:
        db_router._read_alias.reset(token)


def test_reads_outside_a_scope_go_to_the_primary():
    assert ReplicaRouter().db_for_read(None) == "default"


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_read_inside_a_transaction_on_the_primary_stays_there():
    router = ReplicaRouter()
    token = db_router._read_alias.set("replica")
    try:
        assert router.db_for_read(None) == "replica"
        with transaction.atomic():
            assert router.db_for_read(None) == "default"
    finally:
        db_router._read_alias.reset(token)


def test_the_replica_is_never_migrated():
    assert ReplicaRouter().allow_migrate("replica", "leads") is False
    assert ReplicaRouter().allow_migrate("default", "leads") is True


# --- Read your writes ------------------------------------------------------------------------


@override_settings(REPLICA_READ_YOUR_WRITES_SECONDS=7)
def test_a_post_marks_the_browser_and_the_user_for_the_set_time(django_user_model):
    user = django_user_model(pk=4242, username="writer")
    request = RequestFactory().post("/anything")
    request.user = user

    response = ReadYourWritesMiddleware(lambda request: HttpResponse())(request)

    assert response.cookies[PIN_COOKIE]["max-age"] == 7
    assert response.cookies[PIN_COOKIE]["httponly"]
    assert cache.get("revops:primary-reads:user:4242") == 1
    later = RequestFactory().get("/dashboards/")
    later.user = user
    assert db_router.reader_pinned(later)


def test_a_get_marks_nothing(django_user_model):
    request = RequestFactory().get("/dashboards/")
    request.user = django_user_model(pk=4243, username="reader")

    response = ReadYourWritesMiddleware(lambda request: HttpResponse())(request)

    assert PIN_COOKIE not in response.cookies
    assert not db_router.reader_pinned(request)


def test_the_cookie_alone_pins_a_browser():
    request = RequestFactory().get("/dashboards/")
    request.COOKIES[PIN_COOKIE] = "1"
    assert db_router.reader_pinned(request)


# --- Without DATABASE_REPLICA_URL nothing changes ------------------------------------------


def test_without_a_replica_url_no_alias_router_or_middleware_is_installed():
    if os.environ.get("DATABASE_REPLICA_URL"):
        pytest.skip("this run names a replica")
    assert list(settings.DATABASES) == ["default"]
    assert settings.DATABASE_ROUTERS == []
    assert "revops.db_router.ReadYourWritesMiddleware" not in settings.MIDDLEWARE


@pytest.mark.django_db
def test_without_a_replica_a_stale_scope_reads_the_primary_and_asks_nothing(
    django_assert_num_queries,
):
    with django_assert_num_queries(0), stale_reads() as alias:
        assert alias == "default"
    assert db_router.replica_health() is None


@pytest.mark.django_db
def test_without_a_replica_a_dashboard_and_the_kpi_api_say_nothing_of_a_replica(admin_client):
    if os.environ.get("DATABASE_REPLICA_URL"):
        pytest.skip("this run names a replica")
    page = admin_client.get("/dashboards/")
    api = admin_client.get("/api/v1/kpis/lead_acceptance/")

    assert page.status_code == api.status_code == 200
    assert b"as of" in page.content
    assert b"Figures as of" not in page.content
    for response in (page, api):
        assert not response.has_header(db_router.FIGURES_AS_OF_HEADER)
        assert not response.has_header(db_router.REPLICA_LAG_HEADER)
    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    assert "revops.db_router.replica_notice" not in processors


def _settings_with(env: dict[str, str]) -> dict:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "REPLICA_"))
    }
    show = (
        "import json; from django.conf import settings as s; print(json.dumps({"
        "'aliases': list(s.DATABASES), 'routers': s.DATABASE_ROUTERS, "
        "'middleware': s.MIDDLEWARE, 'replica': s.DATABASES.get('replica'), "
        "'processors': s.TEMPLATES[0]['OPTIONS']['context_processors']}, default=str))"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", show],
        cwd=ROOT,
        env={**base, "DJANGO_SETTINGS_MODULE": "revops.settings.test", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_replica_url_adds_the_alias_router_and_middleware():
    primary = "postgres://app@db-primary:5432/revops"
    configured = _settings_with(
        {
            "DATABASE_URL": primary,
            "DATABASE_REPLICA_URL": "postgres://app@db-replica:5432/revops",
            "DATABASE_REPLICA_CONNECT_TIMEOUT": "3",
        }
    )
    plain = _settings_with({"DATABASE_URL": primary})

    assert configured["aliases"] == ["default", "replica"]
    assert configured["routers"] == ["revops.db_router.ReplicaRouter"]
    replica = configured["replica"]
    assert (replica["HOST"], replica["NAME"]) == ("db-replica", "revops")
    assert replica["OPTIONS"]["connect_timeout"] == 3
    assert replica["TEST"]["MIRROR"] == "default"
    middleware = configured["middleware"]
    assert middleware.index("revops.db_router.ReadYourWritesMiddleware") == (
        middleware.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1
    )
    assert (plain["aliases"], plain["routers"], plain["replica"]) == (["default"], [], None)
    assert plain["middleware"] == [m for m in middleware if "db_router" not in m]
    assert "revops.db_router.replica_notice" in configured["processors"]
    assert plain["processors"] == [p for p in configured["processors"] if "db_router" not in p]
