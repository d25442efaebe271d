"""The README's "What is where" table stays current: every page it names exists, and
docs/screens.md, which links each page's screenshots, names the same pages."""

import re
from pathlib import Path

import pytest
from django.urls import Resolver404, resolve

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = {"<id>": "1", "<kind>": "icp"}


def section(text: str, heading: str) -> str:
    start = text.index(f"## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def table_pages(text: str) -> list[str]:
    """The paths of a markdown table's first column, e.g. `/leads/handoffs/<id>/`."""
    return re.findall(r"^\| `(/[^`]*)`", text, re.M)


@pytest.fixture(scope="module")
def where() -> list[str]:
    return table_pages(section((ROOT / "README.md").read_text(), "What is where"))


def test_every_page_in_the_table_exists(where):
    assert len(where) >= 15
    missing = []
    for path in where:
        for placeholder, sample in SAMPLES.items():
            path = path.replace(placeholder, sample)
        try:
            resolve(path)
        except Resolver404:
            missing.append(path)
    assert not missing, f"README 'What is where' names pages that do not exist: {missing}"


def test_the_screens_page_covers_the_tables_pages(where):
    screens = {path.split(" ")[0] for path in table_pages((ROOT / "docs/screens.md").read_text())}
    shown = screens
    not_screens = {"/leads/export.csv", "/scoring/jobs/latest/", "/healthz"}
    unshown = set(where) - not_screens - shown
    assert not unshown, (
        f"{sorted(unshown)}: link a screenshot of each (a browser test saves it to "
        "var/test-artifacts/) from docs/screens.md"
    )
