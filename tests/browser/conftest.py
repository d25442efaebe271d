"""Real-browser tests: Debian's Chromium driven by Playwright against pytest-django's live
server. A missing browser skips locally and fails where services are required (CI)."""

import os
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_SERVICES

CHROMIUM = os.environ.get("REVOPS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(os.environ.get("REVOPS_TEST_ARTIFACTS", "var/test-artifacts"))
PASSWORD = "browser-test-pw"

# Playwright's sync API keeps an event loop running in the test thread; the ORM calls the tests
# make around it are still synchronous, which is what this switch acknowledges.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def _unavailable(reason: str):
    if REQUIRE_SERVICES:
        pytest.fail(f"Browser tests cannot run: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed")
    if not Path(CHROMIUM).exists():
        _unavailable(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(10_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def log_in(page, live_server, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")


# --- Automated accessibility check: axe-core (bundled by the axe-playwright-python package,
# pinned in requirements/dev.txt) injected from disk, so nothing is fetched from a CDN. The page's
# context needs bypass_csp=True: the site's policy allows no inline script, and stays that way
# for real visitors.

BLOCKING = ("serious", "critical")
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def axe_script() -> Path:
    try:
        import axe_playwright_python
    except ImportError:
        _unavailable("axe-core is missing: pip install -r requirements/dev.txt")
    script = Path(axe_playwright_python.__file__).with_name("axe.min.js")
    if not script.exists():
        _unavailable(f"axe-core is missing: no {script}")
    return script


def blocking_violations(page) -> list[str]:
    """axe-core's WCAG 2.x A/AA rules on the page as shown; one line per serious or critical
    violation and node, so a failure names the rule and the element."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(path=str(axe_script()))
    results = page.evaluate(
        "rules => axe.run(document, {runOnly: {type: 'tag', values: rules},"
        " resultTypes: ['violations']})",
        RULES,
    )
    return [
        f"{violation['id']} ({violation['impact']}): {node['target']} {node['failureSummary']}"
        for violation in results["violations"]
        if violation["impact"] in BLOCKING
        for node in violation["nodes"]
    ]
