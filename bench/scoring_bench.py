"""Scoring benchmark (issue: lead scoring recomputed by Celery workers). Not a test.

Needs PostgreSQL (DATABASE_URL) seeded with the demo data, e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    export CELERY_BROKER_URL=redis://127.0.0.1:6379/3
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py seed_demo --reset --leads 1000000 --events-per-lead 10
    .venv/bin/python bench/scoring_bench.py --workers 2

Prints, with their ratio to the named baseline (a single hand-written
``UPDATE … FROM (SELECT … GROUP BY lead_id)`` that re-aggregates every event, run in this process):

1. publish new event weights ⇒ every lead rescored and visible, end to end through workers
   (target ≤ 10 s), and the same for a new ICP: one that changes a criterion's points (its
   leads refit from their score rows) and one that tests more (refit from the leads' facts);
2. publish a new half-life (events must be re-read): target ≤ 1.3 × the baseline;
3. incremental: event written ⇒ new score visible, p50 / p95 over N events, one worker
   (target p95 ≤ 1 s);
4. peak worker RSS during the full recomputes (target ≤ 300 MB).

Each publish also prints the stage moves it made (leads whose new score crossed a threshold)
and, for an ICP, the leads whose tier changed: both cost per lead, and vary with the data.

Flags for comparing code back to back on fresh copies of one seed (see ``--help``):
``--skip-warm-up`` (the copy is scored), ``--baseline-seconds`` (reuse the baseline an earlier
run on the same data printed: measuring it takes ~4 minutes at a million leads),
``--repeat-weights``, ``--skip-half-life``, ``--incremental-samples 0``.
"""

import argparse
import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.choices import ActorType  # noqa: E402
from leads.models import (  # noqa: E402
    Account,
    EngagementEvent,
    IcpVersion,
    Lead,
    StageTransition,
)
from leads.services import (  # noqa: E402
    definition_create_draft,
    definition_publish,
    engagement_events_record,
)
from scoring.models import LeadScoreState, RescoreJob, ScoringModel  # noqa: E402


def load() -> str:
    """The 1-minute load average: the machine is shared, so each figure says how busy it was."""
    return f"load {Path('/proc/loadavg').read_text().split()[0]}"


def baseline_single_statement() -> float:
    """The naive set-based rescore: re-read every event, weight and decay it, write each lead's
    engagement (into the same score table the product writes)."""
    sql = """
        UPDATE scoring_leadscorestate s SET engagement = agg.score
        FROM (
            SELECT e.lead_id,
                   SUM(w.points * POWER(2.0, -EXTRACT(EPOCH FROM (now() - e.occurred_at))
                                        / 86400.0 / 30.0)) AS score
            FROM leads_engagementevent e
            JOIN scoring_eventweight w ON w.kind = e.kind AND w.version_id = %s
            GROUP BY e.lead_id
        ) agg
        WHERE s.lead_id = agg.lead_id
    """
    model = ScoringModel.objects.get(number=1)
    started = time.perf_counter()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(sql, [model.pk])
        transaction.set_rollback(True)  # measure it, keep nothing
    return time.perf_counter() - started


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid: int) -> int | None:
    """User + system CPU ticks of a local process so far (None: it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return int(fields[11]) + int(fields[12])


class Workers:
    """N solo Celery worker processes, with their peak RSS sampled, and the CPU they and the
    database sessions serving them use (PostgreSQL runs on this machine: its backends are
    processes here too). CPU seconds hold still when the machine is shared, where wall-clock
    seconds grow with everyone else's load; a session that ends between two samples loses at
    most its last 0.2 s."""

    def __init__(self, count: int):
        self.count = count
        self.processes: list[subprocess.Popen] = []
        self.peak_rss_kb = 0
        self._stop = threading.Event()
        self._cpu_lock = threading.Lock()
        self._cpu_start: dict[int, int] = {}
        self._cpu_last: dict[int, int] = {}
        self._own_backends: set[int] = set()

    def __enter__(self):
        env = {**os.environ}
        for index in range(self.count):
            self.processes.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "revops",
                        "worker",
                        "--pool=solo",
                        "--loglevel=WARNING",
                        f"--hostname=bench{index}@%h",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                        # Every queue: scoring tasks go to "scoring", the rest elsewhere.
                        f"--queues={settings.ALL_QUEUES}",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        time.sleep(4)
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            self._own_backends.add(cursor.fetchone()[0])  # the bench's own session
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()
        return self

    def _backends(self) -> list[int]:
        """This database's other sessions: the workers'."""
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
            )
            return [pid for (pid,) in cursor.fetchall() if pid not in self._own_backends]

    def _sample_cpu(self) -> None:
        pids = [process.pid for process in self.processes] + self._backends()
        with self._cpu_lock:
            for pid in pids:
                ticks = cpu_ticks(pid)
                if ticks is None:
                    continue
                # A session first seen after the reset started after it: all its CPU counts.
                self._cpu_start.setdefault(pid, 0)
                self._cpu_last[pid] = ticks

    def _sample(self):
        rounds = 0
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self._own_backends.add(cursor.fetchone()[0])  # this thread's session
            while not self._stop.is_set():
                for process in self.processes:
                    try:
                        status = Path(f"/proc/{process.pid}/status").read_text()
                    except FileNotFoundError:
                        continue
                    for line in status.splitlines():
                        if line.startswith("VmRSS:"):
                            self.peak_rss_kb = max(self.peak_rss_kb, int(line.split()[1]))
                if rounds % 4 == 0:
                    self._sample_cpu()
                rounds += 1
                time.sleep(0.05)
        finally:
            connection.close()  # this thread's own session

    def reset_peak(self):
        self.peak_rss_kb = 0

    def reset_cpu(self) -> None:
        pids = [process.pid for process in self.processes] + self._backends()
        with self._cpu_lock:
            self._cpu_start = {pid: ticks for pid in pids if (ticks := cpu_ticks(pid)) is not None}
            self._cpu_last = dict(self._cpu_start)

    def cpu_seconds(self) -> float:
        self._sample_cpu()
        with self._cpu_lock:
            ticks = sum(last - self._cpu_start.get(pid, 0) for pid, last in self._cpu_last.items())
        return ticks / CLOCK_TICKS

    def __exit__(self, *exc):
        self._stop.set()
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            process.wait(timeout=30)


def wait_for_job(after_id: int, timeout: float = 900) -> RescoreJob:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = RescoreJob.objects.filter(pk__gt=after_id).order_by("-pk").first()
        if job is not None and job.status == RescoreJob.Status.DONE:
            return job
        time.sleep(0.05)
    raise SystemExit("rescore job did not finish in time")


def last_job_id() -> int:
    return RescoreJob.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def settle() -> None:
    """What the worker's post-job VACUUM does, done here synchronously so that one step's
    leftovers (and the baseline's rolled-back update) do not slow the next measurement."""
    from scoring.services import score_states_vacuum

    score_states_vacuum()


def last_transition_id() -> int:
    return StageTransition.objects.order_by("-pk").values_list("pk", flat=True).first() or 0


def publish_and_wait(draft, workers: Workers) -> tuple[float, str]:
    """Seconds from the publish to its rescore job done (every lead rescored and moved), and
    what it cost and changed: the CPU of the workers and their database sessions, the stage
    moves by scoring and, for an ICP, the leads whose tier changed."""
    settle()
    before = last_job_id()
    transitions = last_transition_id()
    tiers = dict(Lead.objects.values_list("tier").annotate(n=Count("pk")).order_by())
    tiers_before = Counter(tiers)
    workers.reset_cpu()
    started = time.perf_counter()
    definition_publish(version=draft, actor=None)
    wait_for_job(before)
    elapsed = time.perf_counter() - started
    cpu = workers.cpu_seconds()
    moves = StageTransition.objects.filter(pk__gt=transitions, actor_type=ActorType.SCORING).count()
    changed = f"CPU {cpu:.1f} s (workers + their database sessions); {moves:,} stage moves"
    if isinstance(draft, IcpVersion):
        tiers_after = Counter(
            dict(Lead.objects.values_list("tier").annotate(n=Count("pk")).order_by())
        )
        # Net shifts between tiers: a lower bound of the leads whose tier changed.
        shifted = sum((tiers_after - tiers_before).values())
        changed += f", ≥ {shifted:,} leads changed tier"
    return elapsed, changed


def new_model(**changes) -> ScoringModel:
    current = ScoringModel.objects.filter(status="published").order_by("-effective_from").first()
    draft = definition_create_draft(model=ScoringModel, actor=None, copy_from=current)
    weights = changes.pop("weights", {})
    for kind, points in weights.items():
        draft.weights.filter(kind=kind).update(points=points)
    if changes:
        ScoringModel.objects.filter(pk=draft.pk).update(**changes)
        draft.refresh_from_db()
    return draft


def new_icp() -> IcpVersion:
    current = IcpVersion.objects.filter(status="published").order_by("-effective_from").first()
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=current)
    criterion = draft.criteria.filter(is_exclusion=False).order_by("-points").first()
    criterion.points += 5
    criterion.save()
    return draft


def new_icp_testing_more() -> IcpVersion:
    """A version whose industry criterion takes one more industry (the accounts' commonest not
    yet in it): what it tests changes, so every lead is refitted from its facts."""
    current = IcpVersion.objects.filter(status="published").order_by("-effective_from").first()
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=current)
    criterion = draft.criteria.filter(attribute="industry").order_by("pk").first()
    if criterion is None:
        raise SystemExit("The ICP in force has no industry criterion to widen.")
    taken = {value.lower() for value in criterion.values}
    commonest = (
        Account.objects.exclude(industry="")
        .values_list("industry", flat=True)
        .annotate(n=Count("pk"))
        .order_by("-n")
    )
    criterion.values = [*criterion.values, next(i for i in commonest if i.lower() not in taken)]
    criterion.save()
    return draft


def incremental(samples: int) -> tuple[float, float]:
    lead_ids = list(Lead.objects.order_by("?").values_list("pk", flat=True)[:samples])
    latencies = []
    for number, lead_id in enumerate(lead_ids):
        event = EngagementEvent(
            lead_id=lead_id,
            kind="pricing_page",
            occurred_at=timezone.now() - timedelta(seconds=1),
            source_system="bench",
            external_id=f"bench-{time.time_ns()}-{number}",
        )
        started = time.perf_counter()
        engagement_events_record(events=[event])
        while True:
            pending, scored = LeadScoreState.objects.values_list("pending_seq", "scored_seq").get(
                lead_id=lead_id
            )
            if scored >= pending:
                break
            time.sleep(0.002)
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    return statistics.median(latencies), latencies[int(len(latencies) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--incremental-samples", type=int, default=1000)
    parser.add_argument(
        "--repeat-weights",
        type=int,
        default=3,
        help="Publish new weights this many more times and print each (the figure varies).",
    )
    parser.add_argument(
        "--skip-warm-up", action="store_true", help="Leads are already scored (a previous run)."
    )
    parser.add_argument(
        "--baseline-seconds",
        type=float,
        help="Do not measure the baseline: use this figure (an earlier run's on the same data).",
    )
    parser.add_argument(
        "--skip-half-life", action="store_true", help="Do not publish a new half-life."
    )
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run against PostgreSQL: set DATABASE_URL.")
    if not os.environ.get("CELERY_BROKER_URL", "").startswith("redis://"):
        raise SystemExit("Run against Redis: set CELERY_BROKER_URL=redis://…")
    leads = Lead.objects.count()
    events = EngagementEvent.objects.count()
    print(f"data: {leads:,} leads, {events:,} events; {args.workers} worker(s); {load()}")

    with Workers(args.workers) as workers:
        # Bring every lead to a scored state first (what a fresh install's first rescore does).
        if not args.skip_warm_up:
            before = last_job_id()
            from scoring.services import rescore_job_create
            from scoring.tasks import enqueue_job

            started = time.perf_counter()
            with transaction.atomic():
                job = rescore_job_create(reason="manual", note="benchmark warm-up")
                transaction.on_commit(lambda: enqueue_job(job.pk))
            wait_for_job(before)
            elapsed = time.perf_counter() - started
            print(f"first full scoring (re-reads all events): {elapsed:.2f} s ({load()})")
        if args.baseline_seconds:
            baseline = args.baseline_seconds
            print(f"baseline: {baseline:.2f} s, given (--baseline-seconds), not measured")
        else:
            baseline = baseline_single_statement()
            print(
                f"baseline single UPDATE … FROM (SELECT … GROUP BY lead_id): {baseline:.2f} s "
                f"({load()})"
            )

        workers.reset_peak()
        weights, changed = publish_and_wait(
            new_model(weights={"page_view": 2, "email_click": 4}), workers
        )
        print(
            f"publish new event weights ⇒ all leads rescored: {weights:.2f} s "
            f"({weights / 10:.2f} × the 10 s target; {weights / baseline:.3f} × baseline; "
            f"{changed}; {load()})"
        )
        for repeat in range(args.repeat_weights):
            again, changed = publish_and_wait(new_model(weights={"page_view": 3 + repeat}), workers)
            print(
                f"  again: {again:.2f} s ({again / 10:.2f} × the 10 s target; "
                f"{again / baseline:.3f} × baseline; {changed}; {load()})"
            )
        rss_weights = workers.peak_rss_kb
        workers.reset_peak()
        icp, changed = publish_and_wait(new_icp(), workers)
        print(
            f"publish a new ICP ⇒ all leads refitted: {icp:.2f} s "
            f"({icp / 10:.2f} × the 10 s target; {icp / baseline:.3f} × baseline; {changed}; "
            f"{load()})"
        )
        widened, changed = publish_and_wait(new_icp_testing_more(), workers)
        print(
            f"publish an ICP that tests more (an industry added) ⇒ all leads refitted from "
            f"their facts: {widened:.2f} s ({widened / 10:.2f} × the 10 s target; "
            f"{widened / baseline:.3f} × baseline; {changed}; {load()})"
        )
        rss = max(rss_weights, workers.peak_rss_kb)
        if args.skip_half_life:
            print("publish a new half-life: skipped (--skip-half-life)")
        else:
            workers.reset_peak()
            half_life, changed = publish_and_wait(new_model(half_life_days=21), workers)
            rss = max(rss, workers.peak_rss_kb)
            print(
                f"publish a new half-life (re-reads events): {half_life:.2f} s "
                f"({half_life / baseline:.2f} × baseline; target ≤ 1.3 ×; {changed}; {load()})"
            )
        print(f"peak worker RSS during full recomputes: {rss / 1024:.0f} MB (target ≤ 300 MB)")

    if args.incremental_samples <= 0:
        print("incremental: skipped (--incremental-samples 0)")
        return
    with Workers(1):
        p50, p95 = incremental(args.incremental_samples)
    print(
        f"incremental, event ⇒ score visible, {args.incremental_samples} events, one worker: "
        f"p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (target p95 ≤ 1000 ms; {load()})"
    )


if __name__ == "__main__":
    main()
