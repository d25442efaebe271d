"""Hardening: login rate limiting, CSRF on every form, the Content-Security-Policy and the
production headers, and no secret in the repository."""

import json
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from axes.models import AccessAttempt
from django.test import Client, override_settings
from django.urls import reverse

from tests.factories import LeadFactory, UserFactory
from tests.revops.test_settings import GOOD_SECRET, PRODUCTION, run_manage

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"


# --- Login rate limiting (django-axes, the real backend) ------------------------------------


@pytest.fixture
def member(db):
    user = UserFactory(username="lena")
    user.set_password(PASSWORD)
    user.save()
    return user


def log_in(client, username, password, address="10.0.0.1"):
    return client.post(
        reverse("login"), {"username": username, "password": password}, REMOTE_ADDR=address
    )


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, AXES_COOLOFF_TIME=timedelta(minutes=15))
def test_repeated_failures_lock_that_username_from_that_address(client, member):
    for _ in range(2):
        response = log_in(client, "lena", "wrong")
        assert response.status_code == 200
        assert "didn't match" in response.content.decode()

    locked = log_in(client, "lena", "wrong")

    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Too many failed log-ins" in body
    assert "15 minutes" in body
    # Even the right password is refused while locked.
    assert log_in(client, "lena", PASSWORD).status_code == 429
    assert "_auth_user_id" not in client.session
    assert AccessAttempt.objects.filter(username="lena", ip_address="10.0.0.1").exists()


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_a_lockout_is_per_username_and_address(client, member):
    other = UserFactory(username="omar")
    other.set_password(PASSWORD)
    other.save()
    for _ in range(3):
        log_in(client, "lena", "wrong")

    from_elsewhere = log_in(Client(), "lena", PASSWORD, address="10.0.0.2")
    other_user_here = log_in(Client(), "omar", PASSWORD)

    assert from_elsewhere.status_code == 302
    assert other_user_here.status_code == 302


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3)
def test_a_successful_log_in_resets_the_count(client, member):
    for _ in range(2):
        log_in(client, "lena", "wrong")
    assert log_in(client, "lena", PASSWORD).status_code == 302
    client.logout()

    for _ in range(2):
        assert log_in(client, "lena", "wrong").status_code == 200


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, AXES_ADDRESS_FAILURE_LIMIT=4)
def test_spraying_many_usernames_from_one_address_locks_that_address(client, member):
    # One guess at each of four usernames: no username reaches its own limit of three, the
    # address reaches its limit of four (the guess that reaches it is refused, as for a pair).
    for name in ("amy", "ben", "cal"):
        assert log_in(client, name, "Summer2026!").status_code == 200
    assert log_in(client, "dee", "Summer2026!").status_code == 429

    here = log_in(Client(), "lena", PASSWORD)
    elsewhere = log_in(Client(), "lena", PASSWORD, address="10.0.0.2")

    # Even a real user with the right password is refused from that address, for now.
    assert here.status_code == 429
    assert "from your address, for several usernames" in here.content.decode()
    assert elsewhere.status_code == 302


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, AXES_ADDRESS_FAILURE_LIMIT=4)
def test_a_successful_log_in_does_not_clear_the_addresss_count(client, member):
    for name in ("amy", "ben", "cal"):
        log_in(client, name, "Summer2026!")
    assert log_in(client, "lena", PASSWORD).status_code == 302  # the sprayer's own account
    client.logout()

    assert log_in(client, "dee", "Summer2026!").status_code == 429
    assert log_in(client, "lena", PASSWORD).status_code == 429


@override_settings(AXES_ENABLED=True, AXES_FAILURE_LIMIT=3, AXES_ADDRESS_FAILURE_LIMIT=0)
def test_the_address_limit_can_be_turned_off(client, member):
    for name in ("amy", "ben", "cal", "dee", "eve", "fay"):
        log_in(client, name, "Summer2026!")
    assert log_in(client, "lena", PASSWORD).status_code == 302


# --- CSRF -------------------------------------------------------------------------------------


def test_no_view_is_exempt_from_csrf():
    sources = [
        path
        for folder in ("revops", "leads", "scoring", "metrics")
        for path in (ROOT / folder).rglob("*.py")
    ]
    assert len(sources) > 50
    exempt = [str(path) for path in sources if "csrf_exempt" in path.read_text()]
    assert not exempt


def test_every_post_form_in_the_templates_carries_a_csrf_token():
    post_form = re.compile(r"<form\b[^>]*method=[\"']post[\"']", re.I)
    checked = 0
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        forms = len(post_form.findall(text))
        checked += forms
        assert text.count("{% csrf_token %}") >= forms, template
    assert checked >= 5


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "/accounts/logout/",
        "/accounts/login/",
        "/leads/handoffs/1/accept",
        "/leads/handoffs/1/touch",
        "/leads/1/recycle",
        "/leads/imports/",
        "/admin/leads/rejectionreason/add/",
    ],
)
def test_a_post_without_the_csrf_token_is_refused(url):
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))

    response = client.post(url, {"note": "x"})

    assert response.status_code == 403
    assert "CSRF" in response.content.decode()


@pytest.mark.django_db
def test_the_api_refuses_a_session_post_without_the_csrf_token():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    lead = LeadFactory()

    response = client.post(
        f"/api/v1/handoffs/{lead.pk}/accept", {}, content_type="application/json"
    )

    assert response.status_code == 403
    assert "CSRF" in response.content.decode()


# --- Content-Security-Policy and the production headers -------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    return {
        name: values
        for name, *values in (part.split() for part in header.split(";") if part.strip())
    }


@pytest.mark.django_db
def test_pages_carry_a_strict_script_policy(client):
    client.force_login(UserFactory())
    response = client.get(reverse("metrics:overview"))

    policy = csp_directives(response["Content-Security-Policy"])

    assert policy["script-src"] == ["'self'"]
    assert policy["default-src"] == ["'self'"]
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_templates_have_no_inline_script_or_event_handler():
    inline_script = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
    handler = re.compile(r"\son[a-z]+\s*=", re.I)
    offenders = []
    for template in (ROOT / "templates").rglob("*.html"):
        text = template.read_text()
        if inline_script.search(text) or handler.search(text) or "javascript:" in text:
            offenders.append(str(template.relative_to(ROOT)))
    assert not offenders


# An API answer renders no template, so no collected static files are needed.
PRODUCTION_REQUEST = """
import json
from django.conf import settings
from django.test import Client
response = Client().get("/api/v1/", secure=True, HTTP_HOST="revops.example.com")
print(json.dumps({"status": response.status_code, "headers": dict(response.headers),
                  "cookies": [settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE,
                              settings.SESSION_COOKIE_HTTPONLY]}))
"""


def test_production_sends_the_policy_hsts_and_secure_cookies():
    result = run_manage(
        "shell",
        "--no-imports",
        "-c",
        PRODUCTION_REQUEST,
        env={**PRODUCTION, "SECRET_KEY": GOOD_SECRET},
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    headers = answer["headers"]

    assert answer["status"] == 401
    policy = csp_directives(headers["Content-Security-Policy"])
    assert policy["script-src"] == ["'self'"]
    assert "'unsafe-eval'" not in headers["Content-Security-Policy"]
    assert "max-age=31536000" in headers["Strict-Transport-Security"]
    assert headers["X-Frame-Options"] == "DENY"
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert headers["Referrer-Policy"] == "same-origin"
    assert answer["cookies"] == [True, True, True]


def test_production_redirects_plain_http_to_https():
    code = (
        "from django.test import Client; "
        "r = Client().get('/api/v1/', HTTP_HOST='revops.example.com'); "
        "print(r.status_code, r['Location'])"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", code, env={**PRODUCTION, "SECRET_KEY": GOOD_SECRET}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-2:] == ["301", "https://revops.example.com/api/v1/"]


# --- No secret in the repository --------------------------------------------------------------

SECRET_PATTERNS = {
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "AWS access key": re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abpr]-[A-Za-z0-9-]{10,}"),
    "a Django key literal": re.compile(r"django-insecure-[^\"'\s]{20,}"),
}


def tracked_files() -> list[Path]:
    result = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip("not a git checkout")
    return [ROOT / name for name in result.stdout.split("\0") if name]


def test_no_secret_is_committed():
    files = tracked_files()
    assert ".env" not in {path.name for path in files}
    found = []
    for path in files:
        if not path.is_file() or path.suffix in {".png", ".jpg", ".gz", ".zip", ".sqlite3"}:
            continue
        text = path.read_text(errors="ignore")
        found += [f"{path.name}: {name}" for name, rx in SECRET_PATTERNS.items() if rx.search(text)]
    assert not found


def test_env_example_leaves_the_secret_key_empty():
    example = (ROOT / ".env.example").read_text()
    assert re.search(r"^SECRET_KEY=$", example, re.M)
