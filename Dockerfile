FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 DJANGO_SETTINGS_MODULE=revops.settings.production
WORKDIR /app

COPY requirements/ requirements/
RUN pip install --no-cache-dir -r requirements/base.txt

COPY . .
# collectstatic needs settings to import; these throwaway values never reach a running container.
RUN SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    DJANGO_ALLOWED_HOSTS=build DATABASE_URL=sqlite:////tmp/build.sqlite3 ALLOW_SQLITE_IN_PRODUCTION=true \
    python manage.py collectstatic --noinput

RUN useradd --create-home revops \
    # The media volume takes this directory's owner on first mount: uploads must be writable.
    && mkdir -p /app/media && chown revops /app/media
USER revops
EXPOSE 8000
CMD ["gunicorn", "revops.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
