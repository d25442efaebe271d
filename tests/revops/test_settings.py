"""Settings come from the environment; production refuses to start without its secrets."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "x" * 20 + "-production-secret-of-sufficient-length-42"


def run_manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "DATABASE_", "SECRET_KEY", "CELERY_"))
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


PRODUCTION = {
    "DJANGO_SETTINGS_MODULE": "revops.settings.production",
    "DATABASE_URL": "postgres://postgres@127.0.0.1:5432/revops",
    "CELERY_BROKER_URL": "redis://127.0.0.1:6379/0",
    "DJANGO_ALLOWED_HOSTS": "revops.example.com",
}


def test_production_refuses_to_start_without_secret_key():
    result = run_manage("check", env=PRODUCTION)
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_short_secret_key():
    result = run_manage("check", env={**PRODUCTION, "SECRET_KEY": "short"})
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_to_start_without_allowed_hosts():
    env = {**PRODUCTION, "SECRET_KEY": GOOD_SECRET}
    del env["DJANGO_ALLOWED_HOSTS"]
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "DJANGO_ALLOWED_HOSTS must list" in result.stderr


def test_production_links_to_the_first_allowed_host_or_needs_site_url():
    env = {**PRODUCTION, "SECRET_KEY": GOOD_SECRET}
    show = ["shell", "-c", "from django.conf import settings; print(settings.SITE_URL)"]
    assert run_manage(*show, env=env).stdout.splitlines()[-1] == "https://revops.example.com"
    result = run_manage("check", env={**env, "DJANGO_ALLOWED_HOSTS": ".example.com"})
    assert result.returncode != 0
    assert "SITE_URL must be set" in result.stderr
    pinned = {**env, "DJANGO_ALLOWED_HOSTS": "*", "SITE_URL": "https://crm.example.com/"}
    assert run_manage(*show, env=pinned).stdout.splitlines()[-1] == "https://crm.example.com"


def test_production_refuses_sqlite():
    env = {**PRODUCTION, "SECRET_KEY": GOOD_SECRET, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"}
    result = run_manage("check", env=env)
    assert result.returncode != 0
    assert "must point at PostgreSQL" in result.stderr


def test_production_settings_pass_check_deploy():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        env={**PRODUCTION, "SECRET_KEY": GOOD_SECRET},
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("url", "engine"),
    [
        ("postgres://postgres@127.0.0.1:5432/revops", "django.db.backends.postgresql"),
        ("sqlite:////tmp/revops-settings-test.sqlite3", "django.db.backends.sqlite3"),
    ],
)
def test_database_url_picks_the_engine(url, engine):
    code = "from django.conf import settings; print(settings.DATABASES['default']['ENGINE'])"
    result = run_manage("shell", "--no-imports", "-c", code, env={"DATABASE_URL": url})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == engine


def test_embedded_defaults_are_sqlite_and_the_filesystem_broker():
    code = (
        "from django.conf import settings; "
        "print(settings.DATABASES['default']['ENGINE']); print(settings.CELERY_BROKER_URL); "
        "print(settings.TIME_ZONE, settings.USE_TZ)"
    )
    result = run_manage(
        "shell", "--no-imports", "-c", code, env={"DJANGO_SETTINGS_MODULE": "revops.settings.local"}
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:3] == [
        "django.db.backends.sqlite3",
        "filesystem://localhost/",
        "UTC True",
    ]


def test_the_embedded_run_writes_demo_emails_to_files_not_the_worker_log():
    code = "from django.conf import settings as s; print(s.EMAIL_BACKEND, s.EMAIL_FILE_PATH)"
    result = run_manage(
        "shell", "--no-imports", "-c", code, env={"DJANGO_SETTINGS_MODULE": "revops.settings.local"}
    )
    assert result.returncode == 0, result.stderr
    backend, path = result.stdout.split()
    assert backend == "django.core.mail.backends.filebased.EmailBackend"
    assert path.endswith("var/mail")
