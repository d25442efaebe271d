"""Authentication everywhere: anonymous calls get 401 (never a redirect), API tokens work and
can be rotated and revoked, the browser's session works, the docs page sends a browser to log
in."""

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.api.conftest import errors_of, token_client

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


def test_a_user_creates_rotates_and_revokes_their_token(reader):
    browser = APIClient()
    browser.force_login(reader)
    assert browser.get("/api/v1/token/").json() == {"has_token": False, "created": None}

    created = browser.post("/api/v1/token/")
    assert created.status_code == 201
    first = created.json()["token"]
    integration = APIClient()
    integration.credentials(HTTP_AUTHORIZATION=f"Token {first}")
    assert integration.get("/api/v1/leads/").status_code == 200
    assert browser.get("/api/v1/token/").json()["has_token"] is True

    rotated = browser.post("/api/v1/token/").json()["token"]
    assert rotated != first
    assert integration.get("/api/v1/leads/").status_code == 401
    integration.credentials(HTTP_AUTHORIZATION=f"Token {rotated}")
    assert integration.get("/api/v1/leads/").status_code == 200

    assert browser.delete("/api/v1/token/").status_code == 204
    assert integration.get("/api/v1/leads/").status_code == 401
    assert not Token.objects.filter(user=reader).exists()


def test_a_token_revoked_by_an_admin_stops_working(reader, admin_client):
    api = token_client(reader)
    assert admin_client.get("/admin/authtoken/tokenproxy/").status_code == 200
    # The admin lists tokens by their user.
    response = admin_client.post(
        f"/admin/authtoken/tokenproxy/{reader.pk}/delete/", {"post": "yes"}
    )
    assert response.status_code == 302
    assert not Token.objects.filter(user=reader).exists()
    assert api.get("/api/v1/leads/").status_code == 401


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
    "url", ["/api/v1/", "/api/v1/leads/", "/api/v1/events/", "/api/v1/token/", "/api/v1/kpis/"]
)
def test_the_browsable_api_renders_for_a_browser(client, reader, url):
    client.force_login(reader)
    response = client.get(url, HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
