"""The embedded run: SQLite, the filesystem broker, debug on, a fixed development key."""

import warnings

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env("SECRET_KEY", default="local-development-only-not-secret")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "[::1]"])
# The demo's notification e-mails go to files under var/mail/ (one .log file per connection),
# not into the worker's log.
EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.filebased.EmailBackend")

# The embedded run often runs as root in a container or a VM; Celery's "superuser privileges"
# warning on every worker start is advice for deployments (production settings keep it).
warnings.filterwarnings("ignore", message="You're running the worker with superuser privileges")
