"""Lead list benchmark (issue: speed at a million leads). Not a test.

Needs PostgreSQL with the benchmark data set, e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    .venv/bin/python bench/seed_bench.py --leads 1000000 --events-per-lead 10 \
        --database-url "$DATABASE_URL"
    .venv/bin/python bench/lead_list_bench.py

Prints, for the list unfiltered and filtered (one source; tier A):

1. the baseline: what the list cost with page numbers, in this run: ``COUNT(*)`` of the filtered
   list plus its page 2,000 by ``OFFSET 99950 LIMIT 50``, as SQL;
2. ``/leads/`` served through Django (a signed-in RevOps admin) at the depth of page 2,000, by
   the keyset cursor the "Older" link of page 1,999 carries: cold (first request after the
   server's buffers were left to other tables) and warm p50 / p95 over N requests, with the
   ratio to the target (200 ms) and to the baseline.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402
from timing import percentile, timed_get  # noqa: E402  (bench/timing.py)

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from leads.models import Lead, Source  # noqa: E402
from leads.roles import REVOPS_ADMIN  # noqa: E402
from revops.pagination import cursor_encode  # noqa: E402

TARGET_MS = 200.0
DEPTH = 1999 * 50  # rows before page 2,000


def offset_baseline(where: str, params: list) -> float:
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM leads_lead l WHERE {where}", params)
        cursor.fetchone()
        cursor.execute(
            f"SELECT l.id FROM leads_lead l WHERE {where} "
            "ORDER BY l.created_at DESC, l.id DESC OFFSET %s LIMIT 50",
            [*params, DEPTH],
        )
        cursor.fetchall()
    return (time.perf_counter() - started) * 1000


def deep_cursor(filters: dict) -> str:
    """The cursor page 1,999's "Older" link carries: the last lead shown on it."""
    leads = Lead.objects.filter(**filters).order_by("-created_at", "-pk")
    last = leads.values_list("created_at", "pk")[DEPTH - 1 : DEPTH].first()
    return cursor_encode(*last) if last else ""


def evict_lead_pages() -> None:
    """Push the lead table out of PostgreSQL's buffers by reading another big table (the OS
    cache stays: "cold" here means cold for the database, as after other work)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM scoring_leadscorestate WHERE grade <> ''")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL to the benchmark database.")
    user, _ = get_user_model().objects.get_or_create(username="bench.listadmin")
    user.groups.add(Group.objects.get(name=REVOPS_ADMIN))
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    source = Source.objects.order_by("pk").first()
    cases = [
        ("all leads", "TRUE", [], {}, ""),
        (f"source {source.name}", "l.source_id = %s", [source.pk], {"source_id": source.pk},
         f"source={source.pk}&"),
        ("tier A", "l.tier = %s", ["A"], {"tier": "A"}, "tier=A&"),
    ]  # fmt: skip
    print(f"data: {Lead.objects.count():,} leads")
    # The process's own first request (URL resolver, templates) is not the database's cold.
    timed_get(client, "/leads/?q=no-such-lead-anywhere")
    for label, where, params, filters, query in cases:
        cursor = deep_cursor(filters)
        if not cursor:
            print(f"{label}: fewer than {DEPTH:,} leads, skipped")
            continue
        evict_lead_pages()
        base = offset_baseline(where, params)
        url = f"/leads/?{query}after={cursor}"
        evict_lead_pages()
        cold = timed_get(client, url)
        warm = [timed_get(client, url) for _ in range(args.requests)]
        p50, p95 = statistics.median(warm), percentile(warm, 0.95)
        print(
            f"/leads/ page 2,000, {label}: cold {cold:.0f} ms, warm p50 {p50:.1f} / "
            f"p95 {p95:.1f} ms; cold / target {TARGET_MS:.0f} ms = {cold / TARGET_MS:.2f}; "
            f"baseline COUNT + OFFSET {base:.0f} ms (cold / baseline {cold / base:.3f})"
        )


if __name__ == "__main__":
    main()
