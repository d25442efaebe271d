"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked:
it parses, describes the five services from one definition, and names every setting."""

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SETTINGS_DIR = ROOT / "revops" / "settings"
ENV_READ = re.compile(r"""env(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]+)["']""")


def variables_read_by_settings() -> set[str]:
    names = set()
    for path in SETTINGS_DIR.glob("*.py"):
        names |= set(ENV_READ.findall(path.read_text()))
    return names


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_settings_read_the_variables_we_expect_to_find():
    # Guards the regex itself: if it found nothing, the tests below would pass vacuously.
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "DISPLAY_TIME_ZONE"} <= (
        variables_read_by_settings()
    )


def test_compose_has_the_five_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", "web", "worker", "beat"}


def test_web_worker_and_beat_share_one_definition(compose):
    app = compose["x-app"]
    for name in ("web", "worker", "beat"):
        service = compose["services"][name]
        assert service["image"] == app["image"]
        assert service["environment"] == app["environment"]
    assert "worker" in compose["services"]["worker"]["command"]
    assert "beat" in compose["services"]["beat"]["command"]
    assert "gunicorn" in compose["services"]["web"]["command"]


def test_every_service_has_a_health_check_and_data_has_volumes(compose):
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in compose["services"][name], name
    assert {"postgres-data", "redis-data"} <= set(compose["volumes"])


def test_compose_names_every_variable_the_settings_read(compose):
    missing = variables_read_by_settings() - set(compose["x-app"]["environment"])
    assert not missing, f"docker-compose.yml does not set {sorted(missing)}"


def test_env_example_names_every_variable_the_settings_read():
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    missing = variables_read_by_settings() - listed
    assert not missing, f".env.example does not list {sorted(missing)}"
