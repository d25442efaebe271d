"""Fixtures of the API tests: clients authenticated by token or session, users with and without
the model permissions the API checks."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from leads.roles import SALES_REP
from revops.api_tokens.services import api_token_create
from tests.factories import UserFactory


def grant(user, *perms: str):
    """The user with these permissions ("app.codename"), re-fetched (Django caches them)."""
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return get_user_model().objects.get(pk=user.pk)


def token_client(user) -> APIClient:
    """A client sending a new API token of ``user`` (``Authorization: Token <key>``)."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_create(user=user).key}")
    return client


@pytest.fixture
def anon():
    return APIClient()


@pytest.fixture
def reader(db):
    """A sales rep: reads the facts and definitions, writes none of them."""
    return UserFactory(username="reader", role=SALES_REP)


@pytest.fixture
def reader_api(reader):
    return token_client(reader)


@pytest.fixture
def ops(db):
    return get_user_model().objects.create_superuser("ops.api", "ops.api@example.com", "pw")


@pytest.fixture
def ops_api(ops):
    return token_client(ops)


def errors_of(response) -> list[dict]:
    body = response.json()
    assert set(body) == {"errors"}, body
    assert body["errors"], body
    for entry in body["errors"]:
        assert {"field", "code", "message"} <= set(entry), entry
        assert entry["message"], entry
    return body["errors"]


def fields_of(response) -> set:
    return {entry["field"] for entry in errors_of(response)}
