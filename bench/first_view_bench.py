"""First views with no snapshot: this week's meeting and the content dashboard (issue 15). Not a
test.

Needs PostgreSQL with the benchmark data set (see ``dashboard_bench.py``), after the steps it takes
first (opportunities topped up, tables tidied, rollups refreshed). Prints each first view's server
time and, under it, the slowest statements by the line of our code that ran them, so a slow
first view names its query:

    DATABASE_URL=postgres://… .venv/bin/python bench/first_view_bench.py [meeting] [content] [home]

Targets: the meeting's first view of the week ≤ 500 ms, the content page's ≤ 300 ms for any
filter set. Snapshots are deleted before each view. ``home`` (not in the default set) times the
home page against its baseline in the same run: exact counts of the leads and the events, which
it showed before it read the planner's estimate of a large table.
"""

import os
import sys
import time
import traceback
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from leads.models import Source  # noqa: E402
from leads.roles import VIEWER  # noqa: E402
from metrics.meeting import display_today  # noqa: E402
from metrics.models import KpiSnapshot  # noqa: E402
from metrics.services import meeting_get_or_create_for_week  # noqa: E402
from revops.warmup import web_process_warm  # noqa: E402

MEETING_TARGET_MS = 500.0
CONTENT_TARGET_MS = 300.0
PRESETS = ("last_4_weeks", "this_quarter")
statements: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])


def _timed(execute, sql, params, many, context):
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        took = time.perf_counter() - started
        caller = "?"
        for frame in reversed(traceback.extract_stack()[:-1]):
            if frame.filename.startswith(str(ROOT)) and "/.venv/" not in frame.filename:
                caller = f"{Path(frame.filename).relative_to(ROOT)}:{frame.lineno} {frame.name}"
                break
        statements[caller][0] += 1
        statements[caller][1] += took


def first_view(client: Client, url: str, label: str, target: float, top: int) -> float:
    KpiSnapshot.objects.all().delete()
    statements.clear()
    started = time.perf_counter()
    response = client.get(url)
    took = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, (url, response.status_code)
    print(f"{label} {url}: {took:.0f} ms ({took / target:.2f} × target {target:.0f} ms)")
    for caller, (count, seconds) in sorted(statements.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"    {seconds * 1000:7.0f} ms {count:3d} q  {caller}")
    return took


def main() -> None:
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL to the benchmark database.")
    what = set(sys.argv[1:]) or {"meeting", "content"}
    user, _ = get_user_model().objects.get_or_create(username="bench.viewer")
    user.groups.add(Group.objects.get(name=VIEWER))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    with open("/proc/loadavg") as load:
        print(f"load average: {' '.join(load.read().split()[:3])}")
    # What revops/wsgi.py does before a web process serves: its URLconf, its templates.
    print(f"web process warm-up (revops.warmup): {web_process_warm() * 1000:.0f} ms")
    with connection.execute_wrapper(_timed):
        client.get("/dashboards/content/?preset=last_4_weeks")  # imports, templates: not timed
        if "meeting" in what:
            meeting_get_or_create_for_week(today=display_today(), user=None)
            url = client.get("/meeting/")["Location"]
            first_view(client, url, "meeting first view", MEETING_TARGET_MS, top=15)
        if "home" in what:
            started = time.perf_counter()
            with connection.cursor() as cursor:
                for table in ("leads_lead", "leads_engagementevent"):
                    cursor.execute(f"SELECT count(*) FROM {table}")
                    cursor.fetchone()
            exact = (time.perf_counter() - started) * 1000
            print(f"baseline, exact counts of the leads and the events: {exact:.0f} ms")
            took = first_view(client, "/", "home first view", CONTENT_TARGET_MS, top=3)
            print(f"home first view / baseline = {took / exact:.2f}")
        if "content" in what:
            source = Source.objects.order_by("pk").values_list("pk", flat=True).first()
            for preset in PRESETS:
                for extra in ("", f"&source={source}", "&tier=A", "&channel=events"):
                    url = f"/dashboards/content/?preset={preset}{extra}"
                    first_view(client, url, "content first view", CONTENT_TARGET_MS, top=3)


if __name__ == "__main__":
    main()
