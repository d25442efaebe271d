"""docker-compose.yml cannot run here (no Docker engine), so check what can be checked:
it parses, describes the five services from one definition, and names every setting."""

import re
import shlex
import warnings
from pathlib import Path

import click
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


WORKERS = {
    "worker-scoring": "scoring",
    "worker-pipeline": "pipeline",
    "worker-metrics": "metrics",
    "worker-imports": "imports",
    "worker-default": "celery",
}


def celery_command(command: str):
    """Parse ``celery -A revops <sub> ...`` as the celery CLI would, without running it: an
    unknown option, a bad value or a missing sub-command raises. Returns (group, sub) params."""
    from celery.bin.base import CLIContext
    from celery.bin.celery import celery as cli

    from revops.celery import app

    program, *arguments = shlex.split(command)
    assert program == "celery"
    obj = CLIContext(app=app, no_color=True, workdir=None, quiet=True)
    group = cli.make_context("celery", arguments, obj=obj)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # click 8.2 moves these to args
        name, *rest = [*group.protected_args, *group.args]
    sub = cli.get_command(group, name)
    assert sub is not None, f"no celery sub-command {name!r}"
    return group.params, name, sub.make_context(name, rest, parent=group, obj=obj).params


def test_the_command_parser_rejects_what_celery_would():
    # Guards the parser: the tests below would pass on anything if it accepted everything.
    with pytest.raises(click.UsageError):
        celery_command("celery -A revops worker --queuez=scoring")
    with pytest.raises(click.BadParameter):
        celery_command("celery -A revops beat --max-interval=soon")


def test_compose_has_the_services_and_a_worker_per_queue(compose, settings):
    assert set(compose["services"]) == {"postgres", "redis", "web", "beat", *WORKERS}
    assert sorted(WORKERS.values()) == sorted(settings.QUEUES)


def test_every_queue_a_task_is_routed_to_has_a_worker_service_consuming_only_it(compose, settings):
    routed = set(settings.TASK_QUEUES.values()) | {settings.CELERY_TASK_DEFAULT_QUEUE}
    consumed = set()
    for name, queue in WORKERS.items():
        group, sub, params = celery_command(compose["services"][name]["command"])
        assert (group["app"], sub) == ("revops", "worker"), name
        assert params["queues"] == [queue], name
        assert params["hostname"].startswith(f"{queue if queue != 'celery' else 'default'}@")
        consumed.add(queue)
    assert routed == consumed


def test_every_worker_is_scaled_by_its_replica_count_and_beat_runs_once(compose):
    for name in WORKERS:
        assert compose["services"][name]["deploy"]["replicas"] >= 1, name
    assert compose["services"]["beat"]["deploy"]["replicas"] == 1


def test_beat_runs_the_guarded_scheduler_the_settings_name(compose, settings):
    command = compose["services"]["beat"]["command"]
    group, sub, params = celery_command(command)
    assert (group["app"], sub) == ("revops", "beat")
    # No --scheduler on the command line: it would replace the guarded one.
    assert not {"-S", "--scheduler"} & {word.split("=")[0] for word in shlex.split(command)}
    assert params["scheduler"] == settings.CELERY_BEAT_SCHEDULER
    assert settings.CELERY_BEAT_SCHEDULER == "revops.beat:LeaderDatabaseScheduler"


def test_every_celery_command_in_compose_is_valid_for_the_app(compose):
    commands = [compose["services"][name]["command"] for name in (*WORKERS, "beat")]
    health = compose["services"]["worker-scoring"]["healthcheck"]["test"][1]
    commands.append(health.split("|")[0])
    for command in commands:
        celery_command(command)


def test_the_embedded_run_consumes_every_queue(settings):
    script = (ROOT / "scripts" / "run-embedded").read_text()
    (line,) = [line for line in script.splitlines() if "celery -A revops worker" in line]
    command = line.split(">")[0].replace(".venv/bin/celery", "celery")
    _, _, params = celery_command(command)
    assert sorted(params["queues"]) == sorted(settings.QUEUES)


def test_web_worker_and_beat_share_one_definition(compose):
    app = compose["x-app"]
    for name in ("web", "beat", *WORKERS):
        service = compose["services"][name]
        assert service["image"] == app["image"]
        assert service["environment"] == app["environment"]
    assert all("worker" in compose["services"][name]["command"] for name in WORKERS)
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
