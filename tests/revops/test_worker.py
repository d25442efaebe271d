"""A real worker process takes tasks through the configured brokers."""

import pytest
from celery import Celery
from django.conf import settings

from tests.conftest import REQUIRE_SERVICES, broker_is_redis
from tests.workers import celery_worker


def filesystem_transport_options(folder) -> dict:
    return {
        "data_folder_in": str(folder / "queue"),
        "data_folder_out": str(folder / "queue"),
        "processed_folder": str(folder / "processed"),
        "control_folder": str(folder / "control"),
        "store_processed": False,
    }


@pytest.fixture
def probe_env(monkeypatch):
    """Celery lets CELERY_BROKER_URL / CELERY_RESULT_BACKEND in the environment override an app's
    own arguments, so the probe client and the worker get the same ones from here."""

    def apply(env: dict[str, str]) -> dict[str, str]:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        return env

    return apply


def test_embedded_worker_runs_tasks_over_the_filesystem_broker(tmp_path, probe_env):
    """The embedded run's default: no broker server, yet a real worker process."""
    broker_folder = tmp_path / "broker"
    results = tmp_path / "results"
    results.mkdir()
    env = probe_env(
        {
            "CELERY_BROKER_URL": "filesystem://",
            "CELERY_BROKER_FOLDER": str(broker_folder),
            "CELERY_RESULT_BACKEND": f"file://{results}",
        }
    )
    client = Celery(
        "probe",
        broker="filesystem://",
        backend=f"file://{results}",
        broker_transport_options=filesystem_transport_options(broker_folder),
    )
    for sub in ("queue", "processed", "control"):
        (broker_folder / sub).mkdir(parents=True, exist_ok=True)
    with celery_worker(env) as worker:
        result = client.send_task("revops.ping")
        assert result.get(timeout=30) == "pong"
        assert worker.poll() is None


@pytest.mark.services
def test_worker_runs_tasks_over_redis(probe_env):
    if not broker_is_redis():
        if REQUIRE_SERVICES:
            pytest.fail("CELERY_BROKER_URL must point at Redis in CI")
        pytest.skip("CELERY_BROKER_URL is not a redis:// URL")
    broker = settings.CELERY_BROKER_URL
    # A database of its own so the shared Redis keeps nothing of ours.
    backend = broker.rsplit("/", 1)[0] + "/15"
    probe_env({"CELERY_BROKER_URL": broker, "CELERY_RESULT_BACKEND": backend})
    client = Celery("probe", broker=broker, backend=backend)
    with celery_worker({}):
        assert client.send_task("revops.ping").get(timeout=30) == "pong"
