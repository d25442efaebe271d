"""What a web process loads before its first request (``revops/wsgi.py``, ``revops/asgi.py``).

Django loads the URLconf, and with it every view module, on a process's first request, and
compiles each template the first time it renders, builds the URL reverse map on the first
{% url %}, and its first full garbage collection walks every object the imports made: ~0.3 s,
~0.1–0.3 s, ~0.2 s and ~0.09 s of the first page a process served (cProfile; the last two
together ~90 ms of a dashboard's very first view, old code against new), paid again by
every web worker gunicorn starts or restarts. Done here, at boot: with ``gunicorn --preload``
(docker-compose.yml) once, in the master, and shared by the forked workers.
"""

import gc
import time
from pathlib import Path

from django.conf import settings
from django.db import connections
from django.template import engines
from django.urls import get_resolver
from django.utils import translation


def web_process_warm() -> float:
    """Import every view (the URLconf), build the URL reverse map, compile every project
    template into the template engine's cache, then freeze what was loaded out of the garbage
    collector's reach. Returns the seconds it took."""
    started = time.perf_counter()
    resolver = get_resolver()
    resolver.url_patterns  # noqa: B018  (the property imports the URLconf)
    # The reverse map is built on the first reverse() (a page's first {% url %}) for each
    # language: ~0.2 s of compiling every pattern's regex. Requests use the default language.
    with translation.override(settings.LANGUAGE_CODE):
        resolver.reverse_dict  # noqa: B018  (the property builds it)
    engine = engines["django"]
    for directory in settings.TEMPLATES[0]["DIRS"]:
        for path in sorted(Path(directory).rglob("*.html")):
            engine.get_template(path.relative_to(directory).as_posix())
    # A connection opened here would be shared by every forked worker: none is kept.
    connections.close_all()
    # Everything loaded so far lives as long as the process: moved out of the collector's
    # reach, so a full collection (~90 ms over these objects, seen inside a first view) does
    # not walk it again, and forked workers do not write to the pages they share.
    gc.collect()
    gc.freeze()
    return time.perf_counter() - started
