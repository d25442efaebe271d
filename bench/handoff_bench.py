"""Handoff benchmark (issue: the MQL → sales handoff). Not a test.

Needs PostgreSQL with the benchmark data set (1M leads), e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    .venv/bin/python bench/seed_bench.py --leads 1000000 --events-per-lead 10 \
        --database-url "$DATABASE_URL"
    .venv/bin/python bench/handoff_bench.py

It tops the handoffs up to 150,000 open ones (750 bench reps with 200 each, on the SLA policy in
force, an escalation recipient set), then prints:

1. the sales queue of a rep with 200 open handoffs: server time p50 / p95 over N requests and
   its query count (target ≤ 200 ms);
2. the breach sweep over the 150,000 open handoffs (target ≤ 2 s per run): a steady-state
   sweep (1 % newly due, as between two beat runs), a sweep with nothing new, and the backlog
   case where every overdue handoff is new (worked off in bounded runs of at most 2,000 breaches
   per clock); each with its slowest run's ratio to the target.
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
from timing import percentile  # noqa: E402  (bench/timing.py)

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Group  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.models import Handoff, LeadActivity, Notification, SalesRep  # noqa: E402
from leads.roles import SALES_MANAGER, SALES_REP  # noqa: E402
from leads.selectors import sla_policy_for  # noqa: E402
from leads.services import handoff_breach_sweep  # noqa: E402

OPEN_TARGET = 150_000
PER_REP = 200
QUEUE_TARGET_MS = 200.0
SWEEP_TARGET_S = 2.0
BENCH_PREFIX = "bench.rep."


def ensure_open_handoffs() -> None:
    """750 reps × 200 pending handoffs, assigned over the last three days (so many overdue)."""
    users = get_user_model().objects
    open_now = Handoff.objects.filter(outcome="pending").count()
    missing = OPEN_TARGET - open_now
    if missing <= 0:
        print(f"{open_now:,} open handoffs already present")
        return
    reps_needed = -(-missing // PER_REP)
    started = time.perf_counter()
    manager, _ = users.get_or_create(username="bench.manager", defaults={"email": "m@bench"})
    policy = sla_policy_for(stage_key="mql", tier="B")
    existing = users.filter(username__startswith=BENCH_PREFIX).count()
    new_users = [
        users.model(username=f"{BENCH_PREFIX}{n}", email=f"rep{n}@bench", password="!")
        for n in range(existing, existing + reps_needed)
    ]
    users.bulk_create(new_users, batch_size=1_000)
    rep_ids = list(
        users.filter(username__in=[u.username for u in new_users]).values_list("pk", flat=True)
    )
    SalesRep.objects.bulk_create(
        [SalesRep(user_id=pk, manager=manager, capacity=PER_REP + 50) for pk in rep_ids]
    )
    # A rep works the queue through the "Sales rep" role; without it /leads/queue/ answers 403.
    reps_group = Group.objects.get(name=SALES_REP)
    reps_group.user_set.add(*rep_ids)
    manager.groups.add(Group.objects.get(name=SALES_MANAGER))
    with transaction.atomic(), connection.cursor() as cursor:
        # Published policies are immutable through the ORM; the benchmark sets an escalation
        # recipient directly so the sweep notifies two people per breach, as in a real setup.
        cursor.execute(
            "UPDATE leads_slapolicy SET escalate_to_id = %s WHERE escalate_to_id IS NULL",
            [manager.pk],
        )
        cursor.execute(
            """
            WITH picked AS (
                SELECT l.id AS lead_id, row_number() OVER (ORDER BY l.id) - 1 AS n
                FROM leads_lead l
                WHERE NOT EXISTS (
                    SELECT 1 FROM leads_handoff h WHERE h.lead_id = l.id AND h.outcome = 'pending'
                )
                ORDER BY l.id DESC
                LIMIT %(missing)s
            ), timed AS (
                SELECT lead_id, n,
                       now() - (random() * interval '72 hours') AS assigned_at,
                       random() AS answered
                FROM picked
            )
            INSERT INTO leads_handoff (
                lead_id, stage, assignee_id, sla_policy_id, assigned_at, response_due_at,
                accept_due_at, first_response_at, response_business_seconds, accepted_at,
                rejected_at, reject_reason_id, reject_note, outcome, revision
            )
            SELECT lead_id, 'mql', (%(reps)s::int[])[1 + (n %% %(rep_count)s)], %(policy)s,
                   assigned_at, assigned_at + interval '4 hours', assigned_at + interval '16 hours',
                   CASE WHEN answered < 0.4 THEN assigned_at + interval '1 hour' END,
                   CASE WHEN answered < 0.4 THEN 3600 END,
                   NULL, NULL, NULL, '', 'pending', 0
            FROM timed
            """,
            {
                "missing": missing,
                "reps": rep_ids,
                "rep_count": len(rep_ids),
                "policy": policy.pk if policy else None,
            },
        )
        cursor.execute("ANALYZE leads_handoff")
    print(
        f"added {missing:,} open handoffs for {len(rep_ids)} bench reps "
        f"in {time.perf_counter() - started:.1f} s"
    )


def bench_queue(requests: int) -> None:
    rep = (
        SalesRep.objects.filter(user__username__startswith=BENCH_PREFIX)
        .select_related("user")
        .first()
    )
    rep.user.groups.add(Group.objects.get(name=SALES_REP))  # also on a data set of older runs
    open_count = Handoff.objects.filter(assignee=rep.user, outcome="pending").count()
    client = Client(HTTP_HOST="localhost")
    client.force_login(rep.user)
    client.get("/leads/queue/")  # warm caches and connections
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get("/leads/queue/")
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    with CaptureQueriesContext(connection) as queries:
        client.get("/leads/queue/")
    p50, p95 = statistics.median(timings), percentile(timings, 0.95)
    print(
        f"sales queue ({open_count} open handoffs, page of 50): p50 {p50:.1f} ms, "
        f"p95 {p95:.1f} ms over {requests} requests, {len(queries)} queries; "
        f"p95 / target {QUEUE_TARGET_MS:.0f} ms = {p95 / QUEUE_TARGET_MS:.2f}"
    )


def reset_breaches(share: float) -> int:
    """Forget the breach marks of ``share`` of the marked handoffs (and their notices)."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM leads_handoff WHERE outcome = 'pending' "
            "AND (response_breached_at IS NOT NULL OR accept_breached_at IS NOT NULL) "
            "AND random() < %s",
            [share],
        )
        ids = [row[0] for row in cursor.fetchall()]
        if ids:
            cursor.execute("DELETE FROM leads_notification WHERE handoff_id = ANY(%s)", [ids])
            cursor.execute(
                "DELETE FROM leads_leadactivity WHERE handoff_id = ANY(%s) "
                "AND action IN ('response_breached', 'accept_breached')",
                [ids],
            )
            cursor.execute(
                "UPDATE leads_handoff SET response_breached_at = NULL, accept_breached_at = NULL "
                "WHERE id = ANY(%s)",
                [ids],
            )
    return len(ids)


def timed_sweep(label: str) -> None:
    """One sweep run (bounded by its per-run limit), then the runs it takes to drain the rest."""
    rounds, seconds, slowest = 0, 0.0, 0.0
    totals = {"response": 0, "accept": 0, "notifications": 0}
    while True:
        started = time.perf_counter()
        result = handoff_breach_sweep(now=timezone.now())
        took = time.perf_counter() - started
        rounds, seconds, slowest = rounds + 1, seconds + took, max(slowest, took)
        totals["response"] += result.response_breaches
        totals["accept"] += result.accept_breaches
        totals["notifications"] += result.notifications
        if not result.more:
            break
    print(
        f"breach sweep, {label}: {rounds} run(s), slowest {slowest:.2f} s, all {seconds:.2f} s "
        f"({totals['response']:,} response + {totals['accept']:,} accept breaches, "
        f"{totals['notifications']:,} notifications); slowest run / target "
        f"{SWEEP_TARGET_S:.0f} s = {slowest / SWEEP_TARGET_S:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("Run against PostgreSQL: set DATABASE_URL to the benchmark database.")
    ensure_open_handoffs()
    open_total = Handoff.objects.filter(outcome="pending").count()
    print(f"open handoffs: {open_total:,}")
    bench_queue(args.requests)
    timed_sweep("catching up with what is due now")
    reset_breaches(0.01)
    timed_sweep("steady state, ~1 % newly due")
    timed_sweep("nothing new (idempotent re-run)")
    forgotten = reset_breaches(1.0)
    print(f"(forgot {forgotten:,} breach marks)")
    timed_sweep("backlog, every overdue handoff new")
    print(
        f"notifications now {Notification.objects.count():,}, "
        f"breach activities {LeadActivity.objects.filter(action__endswith='breached').count():,}"
    )


if __name__ == "__main__":
    main()
