"""Authentication everywhere: anonymous calls get 401 (never a redirect); API tokens are shown
once, stored as a hash, listed as metadata and revoked by their owner (or in the admin by a
RevOps admin), expire, and cannot mint more; the browser's session works; the docs page sends a
browser to log in."""

import hashlib
from datetime import datetime, timedelta

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from leads.roles import REVOPS_ADMIN
from revops.api_tokens.models import ApiToken
from tests.api.conftest import errors_of, token_client
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def every_operation() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operations = []
    for path, methods in schema["paths"].items():
        url = path.replace("{id}", "1").replace("{name}", "lead_acceptance")
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                operations.append((method, url))
    return operations


def test_every_endpoint_answers_401_to_an_anonymous_call(anon):
    operations = every_operation()
    assert len(operations) > 40
    for method, url in [*operations, ("get", "/api/v1/"), ("get", "/api/v1/schema/?format=json")]:
        response = getattr(anon, method)(url, {}, format="json")
        assert response.status_code == 401, (method, url, response.status_code)
        assert response["WWW-Authenticate"] == "Token"
        [entry] = errors_of(response)
        assert entry["code"] == "not_authenticated"


def test_an_unknown_path_under_the_api_is_401_then_a_json_404(anon, reader_api):
    assert anon.get("/api/v1/nothing-here/").status_code == 401
    response = reader_api.get("/api/v1/nothing-here/")
    assert response.status_code == 404
    assert errors_of(response)[0]["code"] == "not_found"


def test_a_token_authenticates(reader, reader_api):
    response = reader_api.get("/api/v1/leads/")
    assert response.status_code == 200


def test_a_wrong_token_is_401(anon):
    anon.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    response = anon.get("/api/v1/leads/")
    assert response.status_code == 401
    assert errors_of(response)[0]["code"] == "authentication_failed"


def test_the_session_authenticates_the_browser(reader):
    client = APIClient()
    client.force_login(reader)
    assert client.get("/api/v1/leads/").status_code == 200


def test_malformed_token_headers_are_401_not_500(anon):
    for value in ("Token caf\u00e9", "Token abc\x00def", f"Token {'a' * 5000}", "Token a b"):
        anon.credentials(HTTP_AUTHORIZATION=value)
        response = anon.get("/api/v1/leads/")
        assert response.status_code == 401, value
        assert errors_of(response)[0]["code"] == "authentication_failed"


def signed_in(user) -> APIClient:
    browser = APIClient()
    browser.force_login(user)
    return browser


def with_key(key: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client


def test_a_user_creates_lists_and_revokes_their_tokens(reader):
    browser = signed_in(reader)
    assert browser.get("/api/v1/tokens/").json() == []

    created = browser.post("/api/v1/tokens/", {"name": "CRM sync"}, format="json")
    assert created.status_code == 201
    assert created["Cache-Control"] == "no-store"
    body = created.json()
    first = body["token"]
    assert first.startswith("revops_") and len(first) == len("revops_") + 64
    assert body["prefix"] == first[:15] and body["name"] == "CRM sync"
    assert body["last_used"] is None and body["expiry"] is not None
    integration = with_key(first)
    assert integration.get("/api/v1/leads/").status_code == 200

    second = browser.post("/api/v1/tokens/", {}, format="json").json()["token"]
    listed = browser.get("/api/v1/tokens/").json()
    assert [t["prefix"] for t in listed] == [second[:15], first[:15]]
    assert all(set(t) == {"id", "name", "prefix", "created", "expiry", "last_used"} for t in listed)
    assert listed[1]["last_used"] is not None  # the first one was just used

    assert browser.delete(f"/api/v1/tokens/{body['id']}/").status_code == 204
    assert integration.get("/api/v1/leads/").status_code == 401
    assert with_key(second).get("/api/v1/leads/").status_code == 200
    assert [t["prefix"] for t in browser.get("/api/v1/tokens/").json()] == [second[:15]]


def test_the_key_is_stored_only_as_its_hash(reader):
    key = signed_in(reader).post("/api/v1/tokens/").json()["token"]
    token = ApiToken.objects.get(user=reader)
    assert token.digest == hashlib.sha512(key.encode()).hexdigest()
    stored = [str(value) for value in ApiToken.objects.values_list().get()]
    assert not any(key in value for value in stored)


def test_a_token_cannot_create_more_tokens(reader, reader_api):
    response = reader_api.post("/api/v1/tokens/")
    assert response.status_code == 403
    assert ApiToken.objects.filter(user=reader).count() == 1
    # Listing and revoking with a token work (an integration can retire its own key).
    [own] = reader_api.get("/api/v1/tokens/").json()
    assert reader_api.delete(f"/api/v1/tokens/{own['id']}/").status_code == 204
    assert reader_api.get("/api/v1/leads/").status_code == 401


def test_nobody_sees_or_revokes_another_users_token(reader, ops):
    theirs = token_client(reader)
    token = ApiToken.objects.get(user=reader)
    superuser = signed_in(ops)
    assert superuser.get("/api/v1/tokens/").json() == []
    assert superuser.delete(f"/api/v1/tokens/{token.pk}/").status_code == 404
    assert theirs.get("/api/v1/leads/").status_code == 200


def test_an_expired_token_is_refused_and_not_listed(reader):
    api = token_client(reader)
    ApiToken.objects.filter(user=reader).update(expiry=timezone.now() - timedelta(seconds=1))
    assert signed_in(reader).get("/api/v1/tokens/").json() == []
    assert api.get("/api/v1/leads/").status_code == 401
    assert not ApiToken.objects.filter(user=reader).exists()  # knox deletes it when presented


def test_a_token_of_a_deactivated_user_is_refused(reader):
    api = token_client(reader)
    reader.is_active = False
    reader.save(update_fields=["is_active"])
    assert api.get("/api/v1/leads/").status_code == 401


def test_tokens_expire_after_the_configured_days(reader, settings):
    settings.REST_KNOX = {**settings.REST_KNOX, "TOKEN_TTL": timedelta(days=7)}
    body = signed_in(reader).post("/api/v1/tokens/").json()
    expiry = datetime.fromisoformat(body["expiry"])
    assert timedelta(days=7) - timedelta(minutes=1) < expiry - timezone.now() <= timedelta(days=7)


def test_a_user_holds_at_most_the_configured_number_of_tokens(reader, settings):
    settings.API_TOKEN_LIMIT_PER_USER = 2
    browser = signed_in(reader)
    for _ in range(2):
        assert browser.post("/api/v1/tokens/").status_code == 201
    refused = browser.post("/api/v1/tokens/")
    assert refused.status_code == 400
    assert errors_of(refused)[0]["code"] == "limit"
    assert ApiToken.objects.filter(user=reader).count() == 2


def test_a_token_revoked_by_a_revops_admin_stops_working(reader, client):
    api = token_client(reader)
    token = ApiToken.objects.get(user=reader)
    client.force_login(UserFactory(username="ops.tokens", role=REVOPS_ADMIN))
    assert client.get("/admin/api_tokens/apitoken/").status_code == 200
    response = client.post(f"/admin/api_tokens/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not ApiToken.objects.filter(user=reader).exists()
    assert api.get("/api/v1/leads/").status_code == 401


def test_a_revops_admin_cannot_create_edit_or_revoke_a_superusers_token(ops, client):
    token_client(ops)
    token = ApiToken.objects.get(user=ops)
    client.force_login(UserFactory(username="ops.tokens", role=REVOPS_ADMIN))
    assert client.get(f"/admin/api_tokens/apitoken/{token.pk}/change/").status_code == 200
    assert client.post(f"/admin/api_tokens/apitoken/{token.pk}/change/", {}).status_code == 403
    assert client.get("/admin/api_tokens/apitoken/add/").status_code == 403
    refused = client.post(f"/admin/api_tokens/apitoken/{token.pk}/delete/", {"post": "yes"})
    assert refused.status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_schema_documents_the_token_header(reader_api):
    schema = reader_api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    scheme = schema.json()["components"]["securitySchemes"]["tokenAuth"]
    assert scheme["type"] == "apiKey" and scheme["in"] == "header"
    assert scheme["name"] == "Authorization"
    assert '"Token"' in scheme["description"]


def test_the_docs_page_sends_an_anonymous_browser_to_log_in(client):
    response = client.get("/api/v1/docs/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/?next=/api/v1/docs/")


def test_the_docs_page_works_offline(client, reader):
    client.force_login(reader)
    response = client.get("/api/v1/docs/")
    assert response.status_code == 200
    page = response.content.decode()
    # Swagger UI from the installed sidecar package, not a CDN.
    assert "drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    # The start-up script is a separate response (the CSP allows no inline script).
    assert "<script>" not in page
    script = client.get("/api/v1/docs/", {"script": ""})
    assert script["Content-Type"].startswith("application/javascript")
    assert "/api/v1/schema" in script.content.decode()


def test_the_schema_is_openapi_3(reader_api):
    response = reader_api.get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/events/" in schema["paths"]
    assert "/api/v1/kpis/{name}/" in schema["paths"]


@pytest.mark.parametrize(
    "url", ["/api/v1/", "/api/v1/leads/", "/api/v1/events/", "/api/v1/tokens/", "/api/v1/kpis/"]
)
def test_the_browsable_api_renders_for_a_browser(client, reader, url):
    client.force_login(reader)
    response = client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
