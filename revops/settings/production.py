"""Production: PostgreSQL, Redis, HTTPS. Refuses to start without its required settings."""

from django.core.exceptions import ImproperlyConfigured

from .base import *  # noqa: F403
from .base import DATABASES, env

DEBUG = False

SECRET_KEY = env("SECRET_KEY", default="")
if len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure-"):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set to a random value of at least 50 characters in production "
        "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(64))')."
    )
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "DJANGO_ALLOWED_HOSTS must list the host names this site is served on in production."
    )
# Links in e-mails: SITE_URL, or https:// on the first allowed host when that is a plain name.
SITE_URL = env("SITE_URL", default="").rstrip("/")
if not SITE_URL:
    first_host = ALLOWED_HOSTS[0]
    if first_host == "*" or first_host.startswith("."):
        raise ImproperlyConfigured(
            "SITE_URL must be set (e.g. https://revops.example.com) when DJANGO_ALLOWED_HOSTS "
            f"starts with a pattern ({first_host!r}): e-mails link to the site."
        )
    SITE_URL = f"https://{first_host}"
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3" and not env.bool(
    "ALLOW_SQLITE_IN_PRODUCTION", default=False
):
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL in production.")

CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
# Health checks come from inside the container or the load balancer, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = env("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
