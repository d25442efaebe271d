"""API tokens at rest and in sight: no full key on any page, API answer, admin page, log line or
SQL statement except the one answer that created it; old DRF tokens hashed in place; what
authenticating a token costs. (The API's token behaviour: tests/api/test_auth.py.)"""

import importlib
import logging

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIRequestFactory

from leads.roles import REVOPS_ADMIN, SALES_REP
from revops.api_tokens.auth import ApiTokenAuthentication
from revops.api_tokens.models import ApiToken
from revops.api_tokens.services import api_token_create
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

TOKENS_ADMIN = "/admin/api_tokens/apitoken/"


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_no_page_api_answer_admin_page_log_line_or_query_contains_a_full_key(
    settings, caplog, admin_user
):
    settings.DEBUG = True  # SQL statements are logged with their parameters
    caplog.set_level(logging.DEBUG)
    owner = UserFactory(username="rep.owner", role=SALES_REP)
    ops = UserFactory(username="ops.tokens", role=REVOPS_ADMIN)
    browser = signed_in(owner)
    created = browser.post("/api/v1/tokens/", {"name": "CRM sync"}, "application/json")
    assert created.status_code == 201
    key = created.json()["token"]
    token = ApiToken.objects.get(user=owner)
    seen: list[tuple[str, str]] = []

    def visit(where: str, response) -> None:
        seen.append((where, response.content.decode(errors="replace")))
        seen.append((f"{where} headers", str(response.headers)))

    with CaptureQueriesContext(connection) as queries:
        # The key in use: good and bad requests, JSON and the browsable API.
        api = Client(HTTP_AUTHORIZATION=f"Token {key}")
        for url in ("/api/v1/", "/api/v1/leads/", "/api/v1/tokens/"):
            response = api.get(url)
            assert response.status_code == 200, url
            visit(url, response)
            visit(f"{url} html", api.get(url, HTTP_ACCEPT="text/html"))
        refused = api.post("/api/v1/tokens/", {}, "application/json")
        assert refused.status_code == 403
        visit("create with a token", refused)
        near_miss = Client(HTTP_AUTHORIZATION=f"Token {key[:-1]}0")
        visit("a near miss", near_miss.get("/api/v1/leads/"))
        # The owner's own views of their tokens.
        visit("own list", browser.get("/api/v1/tokens/"))
        visit("own list html", browser.get("/api/v1/tokens/", HTTP_ACCEPT="text/html"))
        visit("home", browser.get("/"))
        # The admin, as a RevOps admin and as a superuser.
        for who, client in (("ops", signed_in(ops)), ("superuser", signed_in(admin_user))):
            for url in (
                "/admin/",
                "/admin/api_tokens/",
                TOKENS_ADMIN,
                f"{TOKENS_ADMIN}?q=revops_",
                f"{TOKENS_ADMIN}{token.pk}/change/",
                f"{TOKENS_ADMIN}{token.pk}/delete/",
                f"{TOKENS_ADMIN}{token.pk}/history/",
                f"/admin/auth/user/{owner.pk}/change/",
            ):
                response = client.get(url)
                assert response.status_code == 200, (who, url)
                visit(f"{who} {url}", response)
        changelist = signed_in(ops).get(TOKENS_ADMIN).content.decode()
        revoked = signed_in(ops).post(f"{TOKENS_ADMIN}{token.pk}/delete/", {"post": "yes"})
        assert revoked.status_code == 302
        visit("after revoking", signed_in(ops).get(TOKENS_ADMIN, follow=True))
        visit("history", signed_in(admin_user).get(f"{TOKENS_ADMIN}{token.pk}/history/"))
        visit("revoked key", api.get("/api/v1/leads/"))

    # The crawl saw the token (by its first characters) and the log and SQL were captured.
    assert token.prefix in changelist and "CRM sync" in changelist
    assert token.digest not in changelist
    assert any(token.prefix in record.getMessage() for record in caplog.records)
    assert len(queries) > 50
    leaks = [where for where, text in seen if key in text]
    leaks += [f"log: {r.name}" for r in caplog.records if key in r.getMessage()]
    leaks += [f"SQL: {q['sql'][:80]}" for q in queries.captured_queries if key in q["sql"]]
    assert not leaks


def test_old_drf_tokens_are_hashed_in_place_and_keep_working():
    """api_tokens/0002 on a database that had DRF's token table: the key keeps working, only
    its digest is stored, the clear-text table is gone."""
    user = UserFactory(username="integration", role=SALES_REP)
    key = "0123456789abcdef0123456789abcdef01234567"  # a DRF key: 40 hex characters
    created_type = "timestamp with time zone" if connection.vendor == "postgresql" else "datetime"
    with connection.cursor() as cursor:
        cursor.execute(
            f'CREATE TABLE authtoken_token ("key" varchar(40) PRIMARY KEY, '
            f"created {created_type} NOT NULL, user_id integer NOT NULL)"
        )
        cursor.execute(
            "INSERT INTO authtoken_token VALUES (%s, %s, %s)",
            [key, "2025-01-02 03:04:05+00:00", user.pk],
        )
    migration = importlib.import_module("revops.api_tokens.migrations.0002_hash_drf_tokens")

    migration.hash_drf_tokens(apps, connection.schema_editor())

    assert "authtoken_token" not in connection.introspection.table_names()
    token = ApiToken.objects.get(user=user)
    assert token.token_key == key[:15] and token.digest != key
    assert token.created.isoformat() == "2025-01-02T03:04:05+00:00"
    assert token.expiry is not None
    api = Client(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/v1/leads/").status_code == 200


def test_the_migration_does_nothing_without_drf_tokens():
    migration = importlib.import_module("revops.api_tokens.migrations.0002_hash_drf_tokens")
    migration.hash_drf_tokens(apps, connection.schema_editor())
    assert not ApiToken.objects.exists()


def test_an_empty_knox_table_left_by_knoxs_own_migrations_is_dropped():
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE knox_authtoken (digest varchar(128) PRIMARY KEY)")
    migration = importlib.import_module("revops.api_tokens.migrations.0003_drop_unused_knox_table")

    migration.drop_unused_knox_table(apps, connection.schema_editor())

    assert "knox_authtoken" not in connection.introspection.table_names()


def test_authenticating_a_token_costs_one_query_and_a_last_used_write_a_minute(
    django_assert_num_queries,
):
    key = api_token_create(user=UserFactory(role=SALES_REP)).key
    request = APIRequestFactory().get("/api/v1/leads/", HTTP_AUTHORIZATION=f"Token {key}")
    # The row (with its user) by the key's first characters; last_used on first use.
    with django_assert_num_queries(2):
        ApiTokenAuthentication().authenticate(request)
    with django_assert_num_queries(1):
        _user, token = ApiTokenAuthentication().authenticate(request)
    assert token.last_used is not None
