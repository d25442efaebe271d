"""What a web process loads before its first request (``revops/wsgi.py``, ``revops/asgi.py``).

Django loads the URLconf, and with it every view module, on a process's first request, and
compiles each template the first time it renders: ~0.3 s and ~0.1–0.3 s of the first page a
process served (cProfile, a 1M-lead copy), paid again by every web worker gunicorn starts or
restarts. Done here, at boot: with ``gunicorn --preload`` (docker-compose.yml) once, in the
master, and shared by the forked workers.
"""

import time
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.template import engines
from django.urls import get_resolver


def web_process_warm() -> float:
    """Import every view (the URLconf) and compile every project template into the template
    engine's cache. Returns the seconds it took."""
    started = time.perf_counter()
    get_resolver().url_patterns  # noqa: B018  (the property imports the URLconf)
    engine = engines["django"]
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(directory).rglob("*.html")):
            engine.get_template(path.relative_to(directory).as_posix())
    # A connection opened here would be shared by every forked worker: none is kept.
    connections.close_all()
    return time.perf_counter() - started
