"""Test settings: whatever DATABASE_URL / CELERY_BROKER_URL point at (SQLite by default)."""

import os

from .base import *  # noqa: F403
from .base import env

DEBUG = False
SECRET_KEY = env("SECRET_KEY", default="test-only-not-secret")
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="cache+memory://")

# Under pytest-xdist (`make test` runs two processes) each process gets a Redis database of its
# own, so a real worker started by one process never takes a task another one sent. The tests
# read the broker from the environment too (worker subprocesses inherit it).
# Only in the pytest process itself: a worker it starts inherits the variables (the mapped URL
# and the mark), and is given its broker explicitly.
_XDIST_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_MAPPED = "REVOPS_TEST_BROKER_MAPPED"
if (
    _XDIST_WORKER.startswith("gw")
    and CELERY_BROKER_URL.startswith("redis://")  # noqa: F405
    and not os.environ.get(_MAPPED)
):
    _base, _, _db = CELERY_BROKER_URL.rpartition("/")  # noqa: F405
    _db = int(_db) if _db.isdigit() else 0
    CELERY_BROKER_URL = f"{_base}/{_db + 1 + int(_XDIST_WORKER[2:])}"
    os.environ["CELERY_BROKER_URL"] = CELERY_BROKER_URL
    os.environ[_MAPPED] = "1"

if _XDIST_WORKER:
    # Files too: uploads, import progress and retention sweeps, the filesystem broker and mail
    # of one process never meet the other's (their ids collide: each has its own database).
    MEDIA_ROOT = MEDIA_ROOT / f"xdist-{_XDIST_WORKER}"  # noqa: F405
    CELERY_BROKER_FOLDER = CELERY_BROKER_FOLDER / f"xdist-{_XDIST_WORKER}"  # noqa: F405
    EMAIL_FILE_PATH = f"{EMAIL_FILE_PATH}/xdist-{_XDIST_WORKER}"  # noqa: F405
