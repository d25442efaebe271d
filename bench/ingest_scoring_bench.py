"""Ingestion vs incremental scoring benchmark (issue 13: the pipeline core). Not a test.

Needs PostgreSQL and redis-server; it starts a Redis of its own on a free port (never the shared
one). Run it on a freshly seeded database of its own, e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_ingest_bench
    createdb -h 127.0.0.1 -U postgres revops_ingest_bench      # once
    .venv/bin/python bench/ingest_scoring_bench.py --seed-leads 20000 --seconds 120

(``--seed-leads N`` runs ``manage.py migrate`` and ``manage.py seed_demo --reset --leads N``
first; without it the database is used as it is, so seed it again before a second run).

What it does, in one run:

1. Baseline, in this process, before any load: the per-lead path
   ``scoring.services.lead_rescore(lead_id=…)`` timed on ``--sample`` random leads (leads/s),
   and the set-based path the workers run (``leads_rescore`` + ``threshold_moves_apply`` on
   batches of ``scoring.tasks.INCREMENTAL_BATCH``) on as many dirty leads as the sample × 20.
2. Starts 2 Celery workers on the ``scoring`` queue and 1 on ``pipeline`` (solo pools), gunicorn
   (``revops.wsgi``, 2 workers) and a beat-like loop: the scoring sweep every 60 s and the
   dashboard snapshots every 30 s, as beat does, plus the SLA breach sweep
   (``leads.tasks.sweep_handoff_breaches``) every 10 s, each run timed from its enqueueing to its
   start (the result backend's ``date_started``) and to its end.
3. ``--threads`` clients POST batches of ``--batch`` new events to ``/api/v1/events/`` for
   ``--seconds`` (as fast as the API accepts them), to random leads.
4. Prints: events stored and errors; per touched lead, the lag from its last event
   (``received_at``) to its rescore (``LeadScoreState.scored_at``), p50/p95/max; how many leads
   were still stale (dirty) 60 s after the last event; the incremental path's rescored leads/s
   during the run (from the workers' task results: leads rescored ÷ busy seconds × workers);
   the SLA breach sweep's delay during the load; then a drain of ``--drain-leads`` leads marked
   dirty at once (leads/s end to end through the 2 workers) and the ratios to the per-lead
   baseline (targets: ≥ 2,000 leads/s, ≥ 40 ×; every touched lead rescored within 60 s of its
   last event; SLA sweep delay ≤ 60 s). The machine's load average is printed before, during
   and after.
"""

import argparse
import http.client
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/revops_ingest_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ["DJANGO_SETTINGS_MODULE"] = "revops.settings.local"
os.environ.setdefault("LOG_LEVEL", "WARNING")

from tests.workers import RedisServer, celery_worker, free_port  # noqa: E402

# The broker is this run's own Redis: known before Django reads its settings.
REDIS = RedisServer(free_port())
os.environ["CELERY_BROKER_URL"] = REDIS.url
os.environ["CELERY_RESULT_BACKEND"] = "django-db"

SOURCE_SYSTEM = "ingest-bench"
KINDS = [
    "page_view",
    "page_view",
    "email_open",
    "email_click",
    "pricing_page",
    "content_download",
    "webinar_registered",
]
TARGET_LEADS_PER_SECOND = 2_000
TARGET_RATIO = 40
TARGET_LAG_SECONDS = 60
TARGET_SLA_DELAY_SECONDS = 60


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(len(ordered) * share + 0.5) - 1))]


def seed(leads: int) -> None:
    env = {**os.environ}
    started = time.perf_counter()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    subprocess.run(
        [sys.executable, "manage.py", "seed_demo", "--reset", f"--leads={leads}", "-v0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    seconds = time.perf_counter() - started
    print(f"seeded {leads:,} leads (migrate + seed_demo --reset): {seconds:.0f} s")


class Load:
    """Samples the load average every 5 s while it runs."""

    def __init__(self):
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.wait(5):
            self.samples.append(os.getloadavg()[0])

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def summary(self) -> str:
        if not self.samples:
            return "no sample"
        return (
            f"1-min load average min {min(self.samples):.1f}, mean "
            f"{statistics.mean(self.samples):.1f}, max {max(self.samples):.1f}"
        )


class Beat(threading.Thread):
    """What beat would send during the run, and the SLA breach sweep every 10 s (timed)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.stop = threading.Event()
        self.breach_sweeps: list[tuple[str, float]] = []  # (task id, enqueued at, epoch s)
        self.scoring_sweeps: list[str] = []

    def run(self):
        from leads.tasks import sweep_handoff_breaches
        from metrics.tasks import refresh_snapshots
        from scoring.tasks import sweep_scoring

        tick = 0
        while not self.stop.is_set():
            if tick % 10 == 0:
                self.breach_sweeps.append((sweep_handoff_breaches.delay().id, time.time()))
            if tick % 30 == 0:
                refresh_snapshots.delay()
            if tick % 60 == 0:
                self.scoring_sweeps.append(sweep_scoring.delay().id)
            tick += 1
            self.stop.wait(1)


def post_events(port, token, lead_ids, batch, until, run, results, client):
    rng = random.Random(client)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    number = 0
    while time.monotonic() < until:
        now = datetime.now(UTC)
        body = json.dumps(
            [
                {
                    "lead": rng.choice(lead_ids),
                    "kind": rng.choice(KINDS),
                    "occurred_at": (now - timedelta(seconds=rng.randint(0, 3600))).isoformat(),
                    "source_system": SOURCE_SYSTEM,
                    "external_id": f"{run}-{client}-{number}-{n}",
                }
                for n in range(batch)
            ]
        ).encode()
        number += 1
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/events/", body=body, headers=headers)
            response = conn.getresponse()
            payload = response.read()
            status = response.status
        except OSError as error:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            payload, status = str(error).encode(), 0
        created = json.loads(payload).get("created", 0) if status == 201 else 0
        results.append((status, time.perf_counter() - started, created))


def per_lead_baseline(sample: int) -> float:
    from leads.models import Lead
    from scoring import services

    ids = list(Lead.objects.order_by("?").values_list("pk", flat=True)[:sample])
    started = time.perf_counter()
    for lead_id in ids:
        services.lead_rescore(lead_id=lead_id)
    return len(ids) / (time.perf_counter() - started)


def set_based_in_process(count: int, batch: int) -> float:
    """The workers' code path (``scoring.tasks.rescore_leads``) on batches of ``batch`` leads,
    in this process."""
    from django.db import transaction

    from leads.models import Lead
    from scoring import services

    ids = sorted(Lead.objects.order_by("?").values_list("pk", flat=True)[:count])
    with transaction.atomic():
        services.leads_mark_dirty(lead_ids=ids)
    started = time.perf_counter()
    rescored = 0
    for start in range(0, len(ids), batch):
        done = services.leads_rescore(lead_ids=ids[start : start + batch]).leads
        services.threshold_moves_apply(lead_ids=done)
        rescored += len(done)
    return rescored / (time.perf_counter() - started)


def dirty_among(lead_ids: list[int]) -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM scoring_leadscorestate WHERE lead_id = ANY(%s) "
            "AND pending_seq > scored_seq",
            [lead_ids],
        )
        return cursor.fetchone()[0]


def touched_leads(run: str) -> dict[int, datetime]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT lead_id, max(received_at) FROM leads_engagementevent "
            "WHERE source_system = %s AND external_id LIKE %s GROUP BY lead_id",
            [SOURCE_SYSTEM, f"{run}-%"],
        )
        return dict(cursor.fetchall())


def incremental_task_rate(since: datetime, until: datetime | None = None) -> tuple[int, float, int]:
    """Leads rescored by ``scoring.tasks.rescore_leads`` tasks that started in the window, the
    seconds the workers were busy with them, and how many tasks."""
    from django_celery_results.models import TaskResult

    rows = TaskResult.objects.filter(
        task_name="scoring.tasks.rescore_leads",
        status="SUCCESS",
        date_started__gte=since,
        date_started__isnull=False,
    )
    if until is not None:
        rows = rows.filter(date_started__lte=until)
    leads, busy, tasks = 0, 0.0, 0
    for result, started, done in rows.values_list("result", "date_started", "date_done"):
        leads += int(json.loads(result or "0") or 0)
        busy += (done - started).total_seconds()
        tasks += 1
    return leads, busy, tasks


def scoring_sweeps_requeued(task_ids: list[str]) -> list[int | None]:
    from django_celery_results.models import TaskResult

    found = dict(
        TaskResult.objects.filter(task_id__in=task_ids, status="SUCCESS").values_list(
            "task_id", "result"
        )
    )
    return [
        json.loads(found[task_id]).get("requeued") if task_id in found else None
        for task_id in task_ids
    ]


def sweep_delays(sweeps: list[tuple[str, float]]) -> list[tuple[float | None, float | None]]:
    from django_celery_results.models import TaskResult

    found = {
        row.task_id: row
        for row in TaskResult.objects.filter(task_id__in=[task_id for task_id, _ in sweeps])
    }
    delays = []
    for task_id, enqueued in sweeps:
        row = found.get(task_id)
        if row is None or row.date_started is None:
            delays.append((None, None))
            continue
        delays.append(
            (
                row.date_started.timestamp() - enqueued,
                row.date_done.timestamp() - enqueued if row.status == "SUCCESS" else None,
            )
        )
    return delays


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120, help="how long clients post events")
    parser.add_argument("--threads", type=int, default=4, help="API client threads")
    parser.add_argument("--batch", type=int, default=200, help="events per request")
    parser.add_argument("--gunicorn-workers", type=int, default=2)
    parser.add_argument("--sample", type=int, default=200, help="leads for the per-lead baseline")
    parser.add_argument("--drain-leads", type=int, default=20_000)
    parser.add_argument("--drain-timeout", type=float, default=600)
    parser.add_argument("--seed-leads", type=int, default=0, help="seed this many leads first")
    args = parser.parse_args()

    REDIS.start()
    try:
        if args.seed_leads:
            seed(args.seed_leads)
        run_bench(args)
    finally:
        REDIS.stop()


def run_bench(args) -> None:
    import django

    django.setup()
    from django.db import connection
    from django.utils import timezone

    from bench.api_ingest_bench import bench_token, start_gunicorn
    from leads.models import EngagementEvent, Lead
    from leads.services import engagement_events_record
    from scoring.tasks import INCREMENTAL_BATCH

    if connection.vendor != "postgresql":
        raise SystemExit("The benchmark needs PostgreSQL (DATABASE_URL).")
    from django.core.management import call_command

    call_command("migrate", verbosity=0)  # whatever the API's tokens need
    lead_ids = list(Lead.objects.values_list("pk", flat=True))
    print(
        f"database {connection.settings_dict['NAME']}: {len(lead_ids):,} leads, "
        f"{EngagementEvent.objects.count():,} events; {os.cpu_count()} cores; "
        f"load average {'/'.join(f'{v:.1f}' for v in os.getloadavg())} (1/5/15 min)"
    )

    per_lead = per_lead_baseline(args.sample)
    in_process = set_based_in_process(args.sample * 20, INCREMENTAL_BATCH)
    small_batches = set_based_in_process(args.sample * 10, 50)
    print(
        f"baseline, this process: per-lead path lead_rescore {per_lead:,.0f} leads/s "
        f"({args.sample} leads); set-based path of the workers {in_process:,.0f} leads/s "
        f"({args.sample * 20:,} leads in batches of {INCREMENTAL_BATCH:,}) = "
        f"{in_process / per_lead:.0f} ×; in batches of 50: {small_batches:,.0f} leads/s"
    )

    token = bench_token()
    run = uuid.uuid4().hex[:8]
    env = {
        "DATABASE_URL": os.environ["DATABASE_URL"],
        "CELERY_BROKER_URL": REDIS.url,
        "CELERY_RESULT_BACKEND": "django-db",
        "DJANGO_SETTINGS_MODULE": "revops.settings.local",
        "LOG_LEVEL": "WARNING",
    }
    port = free_port()
    with (
        celery_worker(env, queue="scoring", hostname="scoring1@%h", stop_timeout=120),
        celery_worker(env, queue="scoring", hostname="scoring2@%h", stop_timeout=120),
        celery_worker(env, queue="pipeline", hostname="pipeline@%h", stop_timeout=120),
    ):
        server = start_gunicorn(port, args.gunicorn_workers, tempfile.mkdtemp(prefix="ingest-"))
        beat = Beat()
        results: list = []
        load = Load()
        try:
            began = timezone.now()
            beat.start()
            with load:
                until = time.monotonic() + args.seconds
                clients = [
                    threading.Thread(
                        target=post_events,
                        args=(port, token, lead_ids, args.batch, until, run, results, client),
                    )
                    for client in range(args.threads)
                ]
                for client in clients:
                    client.start()
                for client in clients:
                    client.join()
                ended = timezone.now()
                touched = touched_leads(run)
                last_event = max(touched.values())
                wait = (last_event + timedelta(seconds=60) - timezone.now()).total_seconds()
                time.sleep(max(0.0, wait))
                stale_after_60 = dirty_among(list(touched))
            beat.stop.set()
            beat.join()
            breach_sweeps = list(beat.breach_sweeps)
            scoring_sweeps = list(beat.scoring_sweeps)
            deadline = time.monotonic() + args.drain_timeout
            while dirty_among(list(touched)) and time.monotonic() < deadline:
                time.sleep(1)
            still_dirty = dirty_among(list(touched))
            drained_at = timezone.now()
            clean_after = (drained_at - last_event).total_seconds()
            scored_at = dict(
                Lead.objects.filter(pk__in=list(touched)).values_list(
                    "pk", "score_state__scored_at"
                )
            )
            time.sleep(3)
            load_rescored, load_busy, load_tasks = incremental_task_rate(began, drained_at)
        finally:
            server.terminate()
            server.wait(timeout=30)

        # Drain: every lead of the sample dirty at once (an event each), 2 workers.
        drain_ids = random.sample(lead_ids, min(args.drain_leads, len(lead_ids)))
        now = timezone.now()
        drain_started = time.perf_counter()
        since = timezone.now()
        for start in range(0, len(drain_ids), 5_000):
            engagement_events_record(
                events=[
                    EngagementEvent(
                        lead_id=lead_id,
                        kind="page_view",
                        occurred_at=now,
                        source_system=SOURCE_SYSTEM,
                        external_id=f"{run}-drain-{lead_id}",
                    )
                    for lead_id in drain_ids[start : start + 5_000]
                ]
            )
        recorded = time.perf_counter() - drain_started
        deadline = time.monotonic() + args.drain_timeout
        while dirty_among(drain_ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        drain_seconds = time.perf_counter() - drain_started
        drain_left = dirty_among(drain_ids)
        time.sleep(3)  # the last tasks' results are stored just after their commit
        drain_rescored, drain_busy, _ = incremental_task_rate(since)

    statuses = sorted({status for status, _, _ in results})
    errors = sum(1 for status, _, _ in results if status not in (200, 201))
    created = sum(created for _, _, created in results)
    seconds = (ended - began).total_seconds()
    print(
        f"load: {args.threads} clients × batches of {args.batch} for {seconds:.0f} s through "
        f"gunicorn -w {args.gunicorn_workers}: {created:,} events stored "
        f"({created / seconds:,.0f}/s), HTTP {statuses}, {errors} failed requests, "
        f"{len(touched):,} leads touched; {load.summary()}"
    )
    lags = [
        max(0.0, (scored_at[lead_id] - last).total_seconds())
        for lead_id, last in touched.items()
        if scored_at.get(lead_id) is not None
    ]
    late = sum(1 for lag in lags if lag > TARGET_LAG_SECONDS)
    print(
        f"lag last event → rescore, {len(lags):,} leads: p50 {percentile(lags, 0.5):.1f} s, "
        f"p95 {percentile(lags, 0.95):.1f} s, max {max(lags):.1f} s; "
        f"{late:,} leads over {TARGET_LAG_SECONDS} s; still stale 60 s after the last event: "
        f"{stale_after_60:,}; all clean {clean_after:.0f} s after the last event "
        f"({still_dirty:,} still stale then) "
        f"({'meets' if stale_after_60 == 0 and late == 0 else 'MISSES'} the 60 s target)"
    )
    requeued = scoring_sweeps_requeued(scoring_sweeps)
    print(f"scoring sweeps during the load: {len(scoring_sweeps)}, leads re-sent: {requeued}")
    load_rate = load_rescored / load_busy * 2 if load_busy else 0.0
    print(
        f"incremental path during the load: {load_rescored:,} lead rescores by the 2 scoring "
        f"workers in {load_tasks:,} tasks ({load_rescored / max(load_tasks, 1):.0f} leads "
        f"each), {load_busy:.1f} busy worker-seconds => {load_rate:,.0f} leads/s when busy"
    )
    drain_rate = len(drain_ids) / drain_seconds
    verdict = "meets" if drain_rate >= TARGET_LEADS_PER_SECOND else "MISSES"
    print(
        f"drain: {len(drain_ids):,} leads marked dirty (recorded in {recorded:.1f} s), all "
        f"rescored by 2 workers in {drain_seconds:.1f} s ({drain_left:,} left) => "
        f"{drain_rate:,.0f} leads/s end to end ({verdict} the {TARGET_LEADS_PER_SECOND:,}/s "
        f"target); {drain_rescored:,} rescores in {drain_busy:.1f} busy worker-seconds"
    )
    ratio = drain_rate / per_lead
    print(
        f"ratio incremental (drain, 2 workers) ÷ per-lead (1 process): {ratio:.0f} × "
        f"({'meets' if ratio >= TARGET_RATIO else 'MISSES'} the {TARGET_RATIO} × target); "
        f"same process: {in_process / per_lead:.0f} ×"
    )
    delays = sweep_delays(breach_sweeps)
    waits = [wait for wait, _ in delays if wait is not None]
    dones = [done for _, done in delays if done is not None]
    if waits:
        verdict = "meets" if max(waits) <= TARGET_SLA_DELAY_SECONDS else "MISSES"
        print(
            f"SLA breach sweep during the load, {len(delays)} runs every 10 s on the pipeline "
            f"queue: enqueued → started p50 {percentile(waits, 0.5):.2f} s, max "
            f"{max(waits):.2f} s; → done p50 {percentile(dones, 0.5):.2f} s, max "
            f"{max(dones):.2f} s; never started: {len(delays) - len(waits)} ({verdict} the "
            f"{TARGET_SLA_DELAY_SECONDS} s target)"
        )
    else:
        print(f"SLA breach sweep: none of the {len(delays)} runs started (MISSES)")
    print(f"load average at the end: {'/'.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
