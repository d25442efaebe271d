import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")
application = get_wsgi_application()

from revops.warmup import web_process_warm  # noqa: E402  (needs the settings loaded above)

web_process_warm()
