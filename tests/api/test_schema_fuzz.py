"""Fuzzing the OpenAPI schema with schemathesis: requests generated from every operation's
schema (valid and not), sent to the WSGI app as an ops admin; no answer may be a 5xx.

Kept quick for the suite (a few examples per operation); for a longer run:
``SCHEMATHESIS_MAX_EXAMPLES=200 .venv/bin/pytest tests/api/test_schema_fuzz.py``.
"""

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings

from revops.api_tokens.services import api_token_create
from revops.wsgi import application

MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "4"))

# Generated from the code (no request, no database), as /api/v1/schema/ serves it.
schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
schema.app = application


@pytest.fixture
def wsgi_in_test_transaction():
    """Requests go straight to the WSGI app; like Django's test client, keep it from closing
    the test's database connection at the end of each request."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def ops_token(db, django_user_model, wsgi_in_test_transaction) -> str:
    user = django_user_model.objects.create_superuser("fuzz", "fuzz@example.com", "pw")
    return api_token_create(user=user).key


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_no_request_makes_the_server_fail(case, ops_token):
    response = case.call(headers={"Authorization": f"Token {ops_token}"})
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} → {response.status_code}\n"
        f"{case.as_curl_command()}\n{response.text[:2000]}"
    )
