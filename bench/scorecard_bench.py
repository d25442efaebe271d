"""Scorecard and trends benchmark (issue 18: shared goals, the alignment scorecard, trends).
Not a test.

Needs PostgreSQL with the benchmark data set (``bench/run-all``, or ``seed_demo`` for a small
one), e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    .venv/bin/python bench/scorecard_bench.py

If the scorecard's period (this quarter, or this month when only it has goals) has no goals in
force, it first publishes one goal per metric for the whole revenue team, through the goal
services as a RevOps admin would. Then it prints, in one run:

1. the baseline: the plain SQL aggregates behind these pages on the raw tables (the goals'
   actuals for the period, the open pipeline by lead stage the forecast weighs, and the weekly
   series of the trends, one GROUP BY each), summed;
2. each page's first view with no snapshot at all (cold: every figure computed in the request),
   with its ratio to the baseline;
3. server time p50 / p95 of each page served from snapshots over ``--requests`` requests
   (target p95 ≤ 150 ms), with its ratio to the target and to the baseline.

The pages: the scorecard (/dashboards/scorecard/), the overview with the scorecard card and the
tiles' sparklines (/dashboards/), and the trend page (/dashboards/trends/).
"""

import argparse
import os
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402
from timing import percentile, timed_get  # noqa: E402  (bench/timing.py)

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.roles import VIEWER  # noqa: E402
from metrics import goal_selectors, goal_services, goals, rollups  # noqa: E402
from metrics.kpis import Period  # noqa: E402
from metrics.models import Goal, KpiSnapshot  # noqa: E402

P95_TARGET_MS = 150.0
PAGES = ["/dashboards/scorecard/", "/dashboards/", "/dashboards/trends/"]

# One goal per metric for the whole revenue team, when the period has none (rates in %, the
# response time in business hours, amounts in USD): what is measured is the reading, not
# whether the target is met.
BENCH_TARGETS = {
    "mqls": 4000,
    "sals": 2500,
    "sqls": 1500,
    "opportunities": 800,
    "marketing_pipeline": 20_000_000,
    "marketing_revenue": 5_000_000,
    "bookings": 8_000_000,
    "acceptance_rate": 70,
    "response_time": 4,
    "sla_compliance": 85,
    "decision_sla": 85,
    "feedback_loop": 90,
}

BASELINE_SQL = {
    "leads reaching MQL / SAL / SQL in the period (stage history)": """
        SELECT t.to_stage, count(DISTINCT t.lead_id)
        FROM leads_stagetransition t
        WHERE t.transitioned_at >= %(start)s AND t.transitioned_at < %(end)s
          AND t.to_stage IN ('mql', 'sal', 'sql')
        GROUP BY t.to_stage""",
    "acceptance, response median, response and decision SLA (period)": """
        SELECT count(*) FILTER (WHERE outcome = 'accepted'),
               count(*) FILTER (WHERE outcome = 'rejected'),
               percentile_cont(0.5) WITHIN GROUP (ORDER BY response_business_seconds),
               count(*) FILTER (WHERE first_response_at <= response_due_at),
               count(*) FILTER (WHERE accepted_at <= accept_due_at OR rejected_at <= accept_due_at),
               count(*) FILTER (WHERE outcome = 'rejected' AND reject_reason_id IS NOT NULL)
        FROM leads_handoff
        WHERE assigned_at >= %(start)s AND assigned_at < %(end)s""",
    "opportunities created and won by origin, open pipeline by lead stage": """
        SELECT s.origin, l.stage,
               sum(o.amount) FILTER (WHERE o.created_at >= %(start)s AND o.created_at < %(end)s),
               sum(o.amount) FILTER (WHERE o.status = 'won' AND o.closed_at >= %(start)s
                                     AND o.closed_at < %(end)s),
               sum(o.amount) FILTER (WHERE o.status = 'open')
        FROM leads_opportunity o
        LEFT JOIN leads_lead l ON l.id = o.lead_id
        LEFT JOIN leads_source s ON s.id = l.source_id
        GROUP BY s.origin, l.stage""",
    "weekly acceptance (14 weeks)": """
        SELECT date_trunc('week', assigned_at),
               count(*) FILTER (WHERE outcome = 'accepted'),
               count(*) FILTER (WHERE outcome IN ('accepted', 'rejected'))
        FROM leads_handoff
        WHERE assigned_at >= now() - interval '14 weeks'
        GROUP BY 1""",
    "weekly lead cohorts reaching opportunity (14 weeks)": """
        SELECT date_trunc('week', l.created_at), count(*),
               count(*) FILTER (WHERE EXISTS (
                   SELECT 1 FROM leads_stagetransition t
                   WHERE t.lead_id = l.id AND t.to_stage IN ('opportunity', 'customer')))
        FROM leads_lead l
        WHERE l.created_at >= now() - interval '14 weeks'
        GROUP BY 1""",
    "weekly closed results (14 weeks)": """
        SELECT date_trunc('week', closed_at),
               count(*) FILTER (WHERE status = 'won'), count(*) FILTER (WHERE status = 'lost'),
               avg(amount) FILTER (WHERE status = 'won')
        FROM leads_opportunity
        WHERE closed_at >= now() - interval '14 weeks'
        GROUP BY 1""",
}


def ensure_goals() -> goals.GoalPeriod:
    """The scorecard's period, with goals in force (published here if it had none)."""
    period = goal_selectors.scorecard_period(goal_selectors.local_today())
    in_force = goal_selectors.goal_set_in_force(period)
    if in_force is not None:
        print(f"goals in force for {period.label}: {in_force.goals.count()}")
        return period
    draft = goal_services.goal_set_create_draft(
        period=period, actor=None, note="Benchmark goals (bench/scorecard_bench.py)."
    )
    goal_services.goal_set_replace_goals(
        draft=draft,
        goals=[
            Goal(metric=metric, target=Decimal(target)) for metric, target in BENCH_TARGETS.items()
        ],
    )
    goal_services.goal_set_publish(draft=draft, actor=None)
    print(f"published {len(BENCH_TARGETS)} benchmark goals for {period.label}")
    return period


def baseline(period: goals.GoalPeriod) -> float:
    kpi_period = Period.from_dates(period.first_day, period.last_day, settings.DISPLAY_TIME_ZONE)
    params = {"start": kpi_period.start, "end": kpi_period.end}
    total = 0.0
    with connection.cursor() as cursor:
        for label, sql in BASELINE_SQL.items():
            started = time.perf_counter()
            cursor.execute(sql, params)
            cursor.fetchall()
            took = time.perf_counter() - started
            total += took
            print(f"  baseline {label}: {took * 1000:.0f} ms")
    print(f"baseline, plain SQL aggregates on raw tables: {total * 1000:.0f} ms in all")
    return total * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--requests", type=int, default=30, help="requests per page from snapshots (≥ 30)"
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL to the benchmark database.")
    requests = max(args.requests, 30)
    # What beat's 15 s rollup refresh has done by the time anyone opens the card.
    started = time.perf_counter()
    days = rollups.rollups_refresh()
    print(f"rollups refreshed as beat would ({time.perf_counter() - started:.1f} s): {days} days")
    period = ensure_goals()
    base_ms = baseline(period)
    user, _ = get_user_model().objects.get_or_create(username="bench.viewer")
    user.groups.add(Group.objects.get(name=VIEWER))  # everyone's card: the plainest role
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)

    for page in PAGES:
        # Each page's first view on its own, with nothing computed before it.
        KpiSnapshot.objects.all().delete()
        cold = timed_get(client, page)
        print(f"first view (no snapshot) {page}: {cold:.0f} ms ({cold / base_ms:.2f} × baseline)")

    for page in PAGES:
        timed_get(client, page)  # its snapshots stored (the overview's include the card's)
    # A Celery refresh keeps every snapshot at most 60 s old: time the pages as it serves them.
    KpiSnapshot.objects.update(computed_at=timezone.now())
    for page in PAGES:
        timings = [timed_get(client, page) for _ in range(requests)]
        p50, p95 = statistics.median(timings), percentile(timings, 0.95)
        print(
            f"{page} from snapshots, {len(timings)} requests: p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms; p95 / target {P95_TARGET_MS:.0f} ms = "
            f"{p95 / P95_TARGET_MS:.2f}; p95 / baseline = {p95 / base_ms:.3f}"
        )


if __name__ == "__main__":
    main()
