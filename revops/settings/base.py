"""Settings shared by every environment; every value that varies comes from the environment."""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()
# A local .env is a convenience for development only; the process environment always wins.
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DJANGO_DEBUG", default=False)
SECRET_KEY = env("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])

INSTALLED_APPS = [
    "revops.apps.RevOpsAdminConfig",  # django.contrib.admin with the roles' site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "knox",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_filters",
    "django_celery_beat",
    "django_celery_results",
    "auditlog",
    "axes",
    "csp",
    "leads",
    "scoring",
    "scoring.backtest",
    "metrics",
    "revops.api_tokens",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Definition changes made in a request are recorded with the logged-in user.
    "auditlog.middleware.AuditlogMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "revops.middleware.DisplayTimezoneMiddleware",
    "revops.middleware.RefuseNulCharactersMiddleware",
    # Last, as django-axes asks: it turns a locked-out login attempt into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "revops.urls"
WSGI_APPLICATION = "revops.wsgi.application"
ASGI_APPLICATION = "revops.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "leads.context_processors.notifications",
                "revops.admin_site.admin_link",
            ],
        },
    },
]

# --- Database -----------------------------------------------------------------------------
# SQLite by default so the embedded run needs no server; PostgreSQL in CI and production.
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'revops.sqlite3'}"),
}
# A PostgreSQL streaming replica for the reads that may be a few seconds old (dashboards,
# drill-downs, exports, the KPI API, the meeting pages, snapshots): revops.db_router.
DATABASE_REPLICA_URL = env("DATABASE_REPLICA_URL", default="")
if DATABASE_REPLICA_URL:
    DATABASES["replica"] = env.db("DATABASE_REPLICA_URL")
    if {DATABASES[alias]["ENGINE"] for alias in DATABASES} != {"django.db.backends.postgresql"}:
        raise ImproperlyConfigured(
            "DATABASE_REPLICA_URL names a PostgreSQL streaming replica of DATABASE_URL's "
            "PostgreSQL primary: both must be postgres:// URLs."
        )
    # Tests that do not start a replica of their own read the test database under this alias.
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    if DATABASES["default"]["NAME"] != ":memory:":
        Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # The embedded run has a web server, a worker and beat writing to one file: WAL lets
    # readers proceed during writes, and IMMEDIATE transactions queue writers instead of
    # failing them with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    for _database in DATABASES.values():
        _database["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
        _database["CONN_HEALTH_CHECKS"] = True
        if _database["ENGINE"] == "django.db.backends.postgresql":
            # The KPI queries are many short aggregates whose cost estimates cross PostgreSQL's
            # JIT threshold: compiling them took 100–300 ms each, more than running them.
            _database.setdefault("OPTIONS", {})["options"] = "-c jit=off"
if "replica" in DATABASES:
    # A replica that does not answer within this many seconds is skipped (the primary serves).
    DATABASES["replica"].setdefault("OPTIONS", {})["connect_timeout"] = env.int(
        "DATABASE_REPLICA_CONNECT_TIMEOUT", default=2
    )
    DATABASE_ROUTERS = ["revops.db_router.ReplicaRouter"]
    # After a write, that user's reads stay on the primary for a while.
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "revops.db_router.ReadYourWritesMiddleware",
    )
    # Pages read from a lagging replica say how old their figures are.
    TEMPLATES[0]["OPTIONS"]["context_processors"].append("revops.db_router.replica_notice")
# A replica further behind than this is skipped; its lag is checked at most this often per
# process; after a write, that user's reads stay on the primary this long.
REPLICA_MAX_LAG_SECONDS = env.float("REPLICA_MAX_LAG_SECONDS", default=10.0)
REPLICA_CHECK_SECONDS = env.float("REPLICA_CHECK_SECONDS", default=5.0)
REPLICA_READ_YOUR_WRITES_SECONDS = env.int("REPLICA_READ_YOUR_WRITES_SECONDS", default=15)
# A page read from a replica more than this far behind (within the bound above) says
# "Figures as of <time> (replica N s behind)".
REPLICA_NOTICE_SECONDS = env.float("REPLICA_NOTICE_SECONDS", default=5.0)
# Threads per web process on which a first view computes its independent parts at once, each
# on a database connection of its own (``revops.concurrent_reads``); 0: one after the other.
READ_THREADS = env.int("READ_THREADS", default=2)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth -----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
# The meeting-room screen (a user with metrics.long_session) stays signed in this long, so a
# projected page does not log out mid-meeting.
MEETING_ROOM_SESSION_DAYS = env.int("MEETING_ROOM_SESSION_DAYS", default=30)
LOGOUT_REDIRECT_URL = "login"

# --- Security hardening ---------------------------------------------------------------------
# Login rate limiting (django-axes): after AXES_FAILURE_LIMIT failed log-ins for one username
# from one address, that pair is locked out for AXES_COOLOFF_MINUTES (a successful log-in
# resets the count). Keyed on the pair, so an attacker guessing passwords cannot lock a user
# out everywhere, and one office behind a NAT does not lock out everyone. Password spraying
# (a guess or two at many usernames) is stopped per address: AXES_ADDRESS_FAILURE_LIMIT
# failures from one address, over any usernames, lock all log-ins from it (revops.login_limits;
# 0 turns it off). The first backend only refuses locked-out attempts; the model backend does
# the authenticating.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_HANDLER = "revops.login_limits.AddressLimitedAxesHandler"
AXES_ADDRESS_FAILURE_LIMIT = env.int("AXES_ADDRESS_FAILURE_LIMIT", default=20)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# The client address comes from REMOTE_ADDR only, unless the deployment's proxy is trusted to
# set a header (e.g. HTTP_X_FORWARDED_FOR with AXES_PROXY_COUNT=1): a header a client can set
# itself would let it dodge the lockout with a new "address" per attempt.
AXES_IPWARE_META_PRECEDENCE_ORDER = env.list("AXES_CLIENT_IP_HEADERS", default=["REMOTE_ADDR"])
AXES_IPWARE_PROXY_COUNT = env.int("AXES_PROXY_COUNT", default=0) or None

# Content-Security-Policy (django-csp), in every environment so a page that would break under
# it breaks in development and in the browser tests first. No inline scripts anywhere: pages
# load their scripts from /static/ and pass data in json_script blocks. Styles allow
# 'unsafe-inline' because plotly.js injects its own <style> rules when it draws a chart, and
# progress and bar widths are set in style attributes; inline styles cannot run code.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        # Plotly's toolbar icons and "download as PNG" use data: and blob: images.
        "img-src": ["'self'", "data:", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# Audit trail (django-auditlog): a foreign key's change shows the object's name, not its id.
AUDITLOG_USE_FK_STRING_REPRESENTATION = True

# --- Time -----------------------------------------------------------------------------------
# Every instant is stored in UTC; pages render in the display time zone.
USE_TZ = True
TIME_ZONE = "UTC"
DISPLAY_TIME_ZONE = env("DISPLAY_TIME_ZONE", default="America/New_York")
LANGUAGE_CODE = "en-us"
USE_I18N = True

# --- Static files ---------------------------------------------------------------------------
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "metrics.staticfiles.PlotlyFinder",  # vendor/plotly.min.js from the plotly package
]
STATIC_ROOT = env("STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}

# --- Uploads and CSV imports ---------------------------------------------------------------
# Uploaded CSV files are kept under MEDIA_ROOT/imports/ for the worker that imports them (web and
# workers must share this folder); they are never served over HTTP.
MEDIA_ROOT = Path(env("MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
IMPORT_MAX_UPLOAD_BYTES = env.int("IMPORT_MAX_UPLOAD_BYTES", default=200 * 1024 * 1024)
# Files up to this size are imported in the request; larger ones by a Celery worker.
IMPORT_SYNC_MAX_BYTES = env.int("IMPORT_SYNC_MAX_BYTES", default=2 * 1024 * 1024)
# Uploaded files (every row's contact details) are deleted this many days after the import
# finished (or after an unfinished mapping was started); reports and counts stay.
IMPORT_UPLOAD_RETENTION_DAYS = env.int("IMPORT_UPLOAD_RETENTION_DAYS", default=30)
# The import task lives in leads/imports/, which Celery's autodiscovery (<app>.tasks) misses.
CELERY_IMPORTS = ("leads.imports.tasks", "scoring.predictive.tasks")

# --- Predictive score -----------------------------------------------------------------------
# Retrain nightly, at the first check after PREDICTIVE_RETRAIN_HOUR_UTC o'clock; beat checks
# every PREDICTIVE_RETRAIN_CHECK_SECONDS, so a fresh install trains on its first check.
PREDICTIVE_RETRAIN_HOUR_UTC = env.int("PREDICTIVE_RETRAIN_HOUR_UTC", default=2)
PREDICTIVE_RETRAIN_CHECK_SECONDS = env.float("PREDICTIVE_RETRAIN_CHECK_SECONDS", default=60)

# --- Celery ---------------------------------------------------------------------------------
# Default broker: kombu's filesystem transport, so the embedded run has a real worker process
# without a server. CI and production use redis://.
# "localhost" because kombu warns "No hostname was supplied" on every start otherwise (the
# filesystem transport ignores it).
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="filesystem://localhost/")
CELERY_BROKER_FOLDER = Path(env("CELERY_BROKER_FOLDER", default=str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_FOLDER / "queue"),
        "data_folder_out": str(CELERY_BROKER_FOLDER / "queue"),
        "processed_folder": str(CELERY_BROKER_FOLDER / "processed"),
        "control_folder": str(CELERY_BROKER_FOLDER / "control"),
        "store_processed": False,
    }
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default="django-db")
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=300)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=360)
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"
# django-celery-beat's database scheduler behind a leader lock (revops/beat.py): any number of
# beat processes may run, only the one holding the lock sends; another takes over when it dies.
CELERY_BEAT_SCHEDULER = "revops.beat:LeaderDatabaseScheduler"
# Five queues, each with its own worker service scaled on its own (docs/scaling.md, "Workers and
# beat"; ADR 8), so a backlog in one never delays another's work.
SCORING_QUEUE, PIPELINE_QUEUE, METRICS_QUEUE, IMPORTS_QUEUE, DEFAULT_QUEUE = (
    "scoring",
    "pipeline",
    "metrics",
    "imports",
    "celery",
)
QUEUES = (SCORING_QUEUE, PIPELINE_QUEUE, METRICS_QUEUE, IMPORTS_QUEUE, DEFAULT_QUEUE)
# Every task by name pattern, the one place that says which queue runs it (a test holds every
# registered task to a pattern here).
TASK_QUEUES = {
    # Incremental rescores, full-rescore chunks, the scoring sweep, the daily decay, the vacuum.
    "scoring.tasks.*": SCORING_QUEUE,
    # The handoff SLA, time-critical: the breach sweep and the notification e-mails.
    "leads.tasks.*": PIPELINE_QUEUE,
    # Dashboard snapshots, daily rollups, the week's meeting, goal alerts and the digest.
    "metrics.tasks.*": METRICS_QUEUE,
    # CSV imports (long, acks_late) and the expiry of their uploads.
    "leads.imports.tasks.*": IMPORTS_QUEUE,
    # Backtests, predictive training, table tidying, the health-check ping.
    "scoring.backtest.tasks.*": DEFAULT_QUEUE,
    "scoring.predictive.tasks.*": DEFAULT_QUEUE,
    "revops.*": DEFAULT_QUEUE,
}
CELERY_TASK_DEFAULT_QUEUE = DEFAULT_QUEUE
# The default queue's tasks are left unrouted: they follow task_default_queue wherever it points.
CELERY_TASK_ROUTES = {
    pattern: {"queue": queue} for pattern, queue in TASK_QUEUES.items() if queue != DEFAULT_QUEUE
}
# One worker may consume every queue (the embedded run does); production runs one per queue.
ALL_QUEUES = ",".join(QUEUES)
# The scoring sweep re-sends a dirty lead's rescore only when it was sent longer ago than this
# (its message was lost); a lead merely waiting in the queue is left alone.
SCORING_REQUEUE_AFTER_SECONDS = env.int("SCORING_REQUEUE_AFTER_SECONDS", default=120)
# After a bulk write of at least this many rows (an import, the seed) the app refreshes the
# planner's statistics of the tables it wrote, and vacuums them when autovacuum is off
# (revops.maintenance): with "auto", VACUUM only when the server's autovacuum is off.
MAINTAIN_AFTER_ROWS = env.int("MAINTAIN_AFTER_ROWS", default=20_000)
# The home page counts a table exactly while the planner estimates it below this many rows; a
# larger one shows the estimate ANALYZE keeps (an exact count of 10M events took 1.7-3 s).
HOME_EXACT_COUNT_BELOW = env.int("HOME_EXACT_COUNT_BELOW", default=100_000)
MAINTAIN_VACUUM = env("MAINTAIN_VACUUM", default="auto")
# Months of raw engagement events kept (whole months before this one; unset or 0: all). Older
# months are folded into per-lead daily counts, then dropped (leads.partitions).
EVENT_RETENTION_MONTHS = env.int("EVENT_RETENTION_MONTHS", default=0)
CELERY_BEAT_SCHEDULE = {
    # Rescore leads whose message was lost (broker down) and restart stalled rescore chunks.
    "scoring-sweep": {"task": "scoring.tasks.sweep_scoring", "schedule": 60.0},
    # Vacuum / analyze churned tables when the server's autovacuum is off (revops.maintenance).
    "tidy-tables": {"task": "revops.tidy_tables", "schedule": 600.0},
    # Move every score to the new day once per UTC day (the check itself runs hourly).
    "scoring-daily-decay": {"task": "scoring.tasks.start_daily_decay", "schedule": 3600.0},
    # Mark handoffs past their SLA due times once, notify and escalate (idempotent).
    "handoff-breach-sweep": {"task": "leads.tasks.sweep_handoff_breaches", "schedule": 60.0},
    # Keep the dashboard snapshots people are looking at at most a minute old.
    "dashboard-snapshots": {"task": "metrics.tasks.refresh_snapshots", "schedule": 30.0},
    # Recompute the daily rollups' days whose facts changed (metrics.rollups).
    "dashboard-rollups": {"task": "metrics.tasks.refresh_rollups", "schedule": 15.0},
    # The event table's month partitions ahead of time, then retention (leads.partitions).
    "event-partitions": {"task": "leads.tasks.maintain_event_partitions", "schedule": 3600.0},
    # Catch up on notification e-mails a failed send left behind.
    "notification-emails": {"task": "leads.tasks.send_notification_emails", "schedule": 300.0},
    # Resume backtests of drafts whose worker died (they continue from their watermark).
    "backtest-sweep": {"task": "scoring.backtest.tasks.sweep_backtests", "schedule": 120.0},
    # This week's pipeline review exists from Monday on, for screens that only read it.
    "open-weekly-meeting": {"task": "metrics.tasks.open_this_weeks_meeting", "schedule": 3600.0},
    # A goal that turns red is e-mailed once; on Mondays each team gets the scorecard.
    "goal-alerts": {"task": "metrics.tasks.send_goal_alerts", "schedule": 900.0},
    "scorecard-digest": {"task": "metrics.tasks.send_scorecard_digest", "schedule": 3600.0},
    "import-upload-retention": {
        "task": "leads.imports.tasks.expire_import_uploads",
        "schedule": 24 * 3600.0,
    },
    # Retrain the predictive score once a night (and on a fresh install's first check).
    "predictive-retrain": {
        "task": "scoring.predictive.tasks.retrain_predictive_model_if_due",
        "schedule": PREDICTIVE_RETRAIN_CHECK_SECONDS,
    },
}

# --- E-mail (SLA breach notices) ------------------------------------------------------------
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="revops@localhost")
# Where the file backend (the embedded run's default) writes each message.
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
# Where users reach the site: the start of the links in e-mails (read outside the site).
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Cache ----------------------------------------------------------------------------------
CACHES = {"default": env.cache("CACHE_URL", default="locmemcache://")}

# --- API ------------------------------------------------------------------------------------
# /api/v1/ (revops.api_urls). Token first: an anonymous call gets 401 with a WWW-Authenticate
# header instead of 403; the browser (and the docs page) use the session.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "revops.api_tokens.auth.ApiTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "leads.api.common.Pagination",
    "PAGE_SIZE": 50,
    "DEFAULT_PARSER_CLASSES": ["leads.api.common.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "revops.api_errors.exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
}
# API tokens (django-rest-knox, ADR 9): only a SHA-512 digest of each key is stored; the key is
# shown once, when its owner creates it. Clients send "Authorization: Token <key>" as they did
# with DRF's tokens. Keys start with "revops_" so secret scanners and people recognise them.
KNOX_TOKEN_MODEL = "api_tokens.ApiToken"
# knox's own migrations would create its AuthToken table even though the model is swapped out
# (they do not mark it swappable): an unused table whose key to auth_user makes PostgreSQL
# refuse the test suite's flush. Without migrations, knox gets no table at all.
MIGRATION_MODULES = {"knox": None}
API_TOKEN_TTL_DAYS = env.int("API_TOKEN_TTL_DAYS", default=90)  # 0: tokens never expire
API_TOKEN_LIMIT_PER_USER = env.int("API_TOKEN_LIMIT_PER_USER", default=10)
REST_KNOX = {
    "TOKEN_MODEL": KNOX_TOKEN_MODEL,
    "AUTH_HEADER_PREFIX": "Token",
    "TOKEN_PREFIX": "revops_",
    "AUTH_TOKEN_CHARACTER_LENGTH": 64,
    "TOKEN_TTL": timedelta(days=API_TOKEN_TTL_DAYS) if API_TOKEN_TTL_DAYS else None,
    "AUTO_REFRESH": False,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "RevOps dashboard API",
    "DESCRIPTION": (
        "Leads, accounts, sources, campaigns, engagement events, opportunities, handoffs, the "
        "shared definitions and every dashboard KPI. Authenticate with a session (browser) or "
        "`Authorization: Token <key>` (create one at /api/v1/tokens/; its key is shown once). "
        'Every 4xx answers `{"errors": [{"field", "code", "message"}]}`.'
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI's assets come from the drf-spectacular-sidecar package: no CDN needed.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # One name per choice set shared by several fields.
    "ENUM_NAME_OVERRIDES": {
        "EventKindEnum": "leads.choices.EventKind",
        "StageKindEnum": "leads.choices.StageKind",
        "DefinitionStatusEnum": "leads.choices.DefinitionStatus",
        "OpportunityStatusEnum": "leads.choices.OpportunityStatus",
        # A lead's tier and a rep's tiers: one set of choices (else TierEnum and TiersEnum, a
        # naming collision the production settings' check warns about).
        "FitTierEnum": "leads.choices.FitTier",
    },
    # Every operation documents the error answers its shape allows (401, 403, 400, 404…), and
    # a create links to the operations on the row it created.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "revops.api_schema.document_error_responses",
        "revops.api_schema.link_created_rows",
    ],
}

# --- Logging --------------------------------------------------------------------------------
LOG_LEVEL = env("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
}

# --- Product --------------------------------------------------------------------------------
# Credentials the embedded run creates for the demo admin (never used in production).
DEMO_ADMIN_USERNAME = env("DEMO_ADMIN_USERNAME", default="admin")
DEMO_ADMIN_PASSWORD = env("DEMO_ADMIN_PASSWORD", default="revops-demo")
# ICP insights hide segments with fewer closed deals than this ("n too small" to judge).
INSIGHTS_MIN_CLOSED_DEALS = env.int("INSIGHTS_MIN_CLOSED_DEALS", default=10)
# The insights' per-segment counts are cached until a deal closes, or for this long at most.
INSIGHTS_CACHE_SECONDS = env.int("INSIGHTS_CACHE_SECONDS", default=900)
