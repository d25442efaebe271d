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
