"""What every process pays to start (web, each worker, beat, manage.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _last_line_printed(code: str) -> str:
    """What ``code`` prints last, run in a fresh Python process under the test settings."""
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "revops.settings.test"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().splitlines()[-1]


def test_starting_django_does_not_import_scikit_learn():
    # Training and predicting import it when they run; the app registry, the lead features
    # and the model page do not (it was 2.3 s of a 4 s start).
    code = "import sys, django; django.setup(); print('sklearn' in sys.modules)"
    assert _last_line_printed(code) == "False"


def test_loading_the_urls_does_not_import_scikit_learn():
    # Every web process's first request loads the URLconf, which imports every view module,
    # the model page's among them: importing scikit-learn and SciPy there was ~0.8 s of the
    # first dashboard view of each process.
    code = (
        "import sys, django; django.setup(); "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "print('sklearn' in sys.modules, 'scipy' in sys.modules)"
    )
    assert _last_line_printed(code) == "False False"


def test_drawing_a_dashboards_figures_does_not_load_plotlys_validators():
    # A figure built with plotly.graph_objects validated every attribute on every request (~5 ms
    # a figure) and loaded the validators on a process's first (~130 ms): the app writes
    # Plotly's JSON itself; only the tests (VALIDATE_FIGURES) build each figure with them too.
    code = (
        "import sys, django; django.setup(); "
        "from django.urls import get_resolver; get_resolver().url_patterns; "
        "from metrics import charts; "
        "charts.trend_line([('W1', 1.0, 3, False), ('W2', 2.0, 4, True)]); "
        "charts.trend_sparkline([('W1', 1.0), ('W2', None)]); "
        "print('plotly.graph_objects' in sys.modules)"
    )
    assert _last_line_printed(code) == "False"


def test_a_web_process_loads_the_urls_and_compiles_the_templates_before_its_first_request():
    # revops/wsgi.py warms the process (revops/warmup.py): the first page a web worker served
    # paid for importing every view and compiling its templates (~0.5 s of a dashboard's very
    # first view); gunicorn --preload does it once in the master, for every worker.
    code = (
        "import sys, revops.wsgi; from django.template import engines; "
        "cache = engines['django'].engine.template_loaders[0].get_template_cache; "
        "print('metrics.views' in sys.modules, 'metrics/base_dashboard.html' in cache, "
        "'metrics/_chart.html' in cache)"
    )
    assert _last_line_printed(code) == "True True True"


def test_a_web_process_builds_the_url_reverse_map_before_its_first_request():
    # The first {% url %} of a process built the reverse map of every pattern (~0.2 s of
    # regex compiling inside a dashboard's very first view, cProfile): the warm-up builds it
    # for the language requests use.
    code = (
        "import revops.wsgi; from django.urls import get_resolver; "
        "from django.utils.translation import get_language; "
        "print(get_language() in get_resolver()._reverse_dict)"
    )
    assert _last_line_printed(code) == "True"


def test_a_web_process_keeps_what_it_loaded_at_boot_out_of_the_garbage_collectors_walks():
    # A full collection walked every object the imports made (a 90 ms pause inside the first
    # dashboard view); frozen after the warm-up, the collector skips them and forked workers
    # leave the pages they share with the master untouched.
    code = (
        "import gc, sys, revops.wsgi; "
        "print(gc.get_freeze_count() > 100_000, 'metrics.views' in sys.modules)"
    )
    assert _last_line_printed(code) == "True True"
