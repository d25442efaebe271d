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


WORKERS = {"worker-scoring": "scoring", "worker-pipeline": "pipeline", "worker": "celery"}


def test_compose_has_the_services_and_a_worker_per_queue(compose):
    assert set(compose["services"]) == {"postgres", "redis", "web", "beat", *WORKERS}


def test_every_queue_a_task_is_routed_to_has_a_worker_service(compose, settings):
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    routed.add(settings.CELERY_TASK_DEFAULT_QUEUE)
    consumed = set()
    for name, queue in WORKERS.items():
        command = compose["services"][name]["command"]
        assert f"--queues={queue}" in command, name
        consumed.add(queue)
    assert routed == consumed


def test_web_worker_and_beat_share_one_definition(compose):
    app = compose["x-app"]
    for name in ("web", "beat", *WORKERS):
        service = compose["services"][name]
        assert service["image"] == app["image"]
        assert service["environment"] == app["environment"]
    assert "worker" in compose["services"]["worker"]["command"]
    assert "beat" in compose["services"]["beat"]["command"]
    assert "gunicorn" in compose["services"]["web"]["command"]


def test_every_service_has_a_health_check_and_data_has_volumes(compose):
    for name in ("postgres", "redis", "web", *WORKERS):
        assert "healthcheck" in compose["services"][name], name
    assert {"postgres-data", "redis-data"} <= set(compose["volumes"])


def test_compose_names_every_variable_the_settings_read(compose):
    missing = variables_read_by_settings() - set(compose["x-app"]["environment"])
    assert not missing, f"docker-compose.yml does not set {sorted(missing)}"


def test_env_example_names_every_variable_the_settings_read():
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (ROOT / ".env.example").read_text(), re.M))
    missing = variables_read_by_settings() - listed
    assert not missing, f".env.example does not list {sorted(missing)}"
