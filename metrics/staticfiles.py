"""Serve plotly.js from the installed ``plotly`` package, so charts work with no internet (a
meeting room) and the repository carries no copy of it."""

from pathlib import Path

import plotly
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage

PLOTLY_JS = "vendor/plotly.min.js"
_PACKAGE_DATA = Path(plotly.__file__).resolve().parent / "package_data"


class PlotlyFinder(BaseFinder):
    """Finds exactly one file: ``vendor/plotly.min.js``."""

    def __init__(self, *args, **kwargs):
        self.storage = FileSystemStorage(location=str(_PACKAGE_DATA))
        self.storage.prefix = "vendor"

    def check(self, **kwargs):
        if not (_PACKAGE_DATA / "plotly.min.js").exists():
            from django.core.checks import Error

            return [Error("plotly.min.js is missing from the plotly package.", id="metrics.E001")]
        return []

    def find(self, path, find_all=False, **kwargs):
        if path != PLOTLY_JS:
            return [] if find_all else None
        match = str(_PACKAGE_DATA / "plotly.min.js")
        return [match] if find_all else match

    def list(self, ignore_patterns):
        yield "plotly.min.js", self.storage
