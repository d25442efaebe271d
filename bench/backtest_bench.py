"""Backtest benchmark (issue: simulate a draft ICP or scoring model before publishing). Not a test.

Needs PostgreSQL with the benchmark data set (1M leads, ~10M events), migrated, e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    .venv/bin/python manage.py migrate
    .venv/bin/python bench/backtest_bench.py --limit 50000     # a quick run, extrapolated
    .venv/bin/python bench/backtest_bench.py                   # every lead
    # through a real Celery worker instead of this process:
    CELERY_BROKER_URL=redis://127.0.0.1:6379/9 .venv/bin/python bench/backtest_bench.py --worker

It creates a draft ICP (a copy of the one in force, one criterion worth 5 points more) with the
normal services, starts a backtest of it with ``backtest_start`` and runs it to the end with
``backtest_run`` — the very call the Celery task makes — in this process (default) or in one solo
worker. It prints the wall time, leads/s, time per 2,000-lead chunk (p50 / p95), the peak RSS of
the process doing the work and the result rows written; with ``--limit N`` only the chunks of the
first N leads run and the time for every lead is extrapolated. ``--profile`` (in-process only)
prints the 10 functions with the highest cumulative time. Afterwards it deletes its backtest, its
draft and their audit entries: the database is left as found.
"""

import argparse
import cProfile
import io
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402

django.setup()

from auditlog.models import LogEntry  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.contenttypes.models import ContentType  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from leads.models import IcpCriterion, IcpVersion, Lead  # noqa: E402
from leads.selectors import icp_in_force  # noqa: E402
from leads.services import definition_create_draft  # noqa: E402
from scoring.backtest import services, tasks  # noqa: E402
from scoring.backtest.models import Backtest, BacktestLead  # noqa: E402

# README, Benchmarks: publishing a new ICP refits every lead in 37.0 s through 2 workers.
ICP_REFIT_SECONDS = 37.0


def table_rows(table: str) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")
        return cursor.fetchone()[0]


def make_draft() -> tuple[IcpVersion, str]:
    current = icp_in_force()
    if current is None:
        raise SystemExit("No ICP in force: seed the database first.")
    draft = definition_create_draft(
        model=IcpVersion, actor=None, copy_from=current, note="backtest benchmark"
    )
    criterion = draft.criteria.filter(is_exclusion=False).order_by("-points", "pk").first()
    criterion.points += 5
    criterion.save()
    return draft, f"ICP v{draft.number} from v{current.number}: {criterion.attribute} +5 points"


def start(draft: IcpVersion, limit: int | None) -> Backtest:
    """``backtest_start`` with the enqueue held back, so the range can be cut to ``limit``."""
    with mock.patch.object(tasks, "enqueue_backtest"):
        backtest = services.backtest_start(actor=None, draft_icp=draft)
    if limit is not None:
        last = Lead.objects.order_by("pk").values_list("pk", flat=True)[limit - 1 : limit].first()
        if last is not None and last < backtest.last_lead_id:
            Backtest.objects.filter(pk=backtest.pk).update(
                last_lead_id=last, total_leads=Lead.objects.filter(pk__lte=last).count()
            )
    backtest.refresh_from_db()
    return backtest


def run_in_process(backtest: Backtest, profile: bool) -> dict:
    marks: list[float] = []
    rss_before_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    profiler = cProfile.Profile() if profile else None
    started = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    services.backtest_run(
        backtest_id=backtest.pk, on_progress=lambda _bt: marks.append(time.perf_counter())
    )
    if profiler is not None:
        profiler.disable()
    elapsed = time.perf_counter() - started
    result = {
        "mode": "in-process (services.backtest_run, as the task calls it)",
        "elapsed": elapsed,
        "chunks": [b - a for a, b in zip([started, *marks], marks, strict=False)],
        "peak_rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "rss_before_kb": rss_before_kb,
    }
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(10)
        result["profile"] = out.getvalue()
    return result


def run_in_worker(backtest: Backtest) -> dict:
    broker = os.environ.get("CELERY_BROKER_URL", "")
    if not broker.startswith("redis://"):
        raise SystemExit("--worker runs against Redis: set CELERY_BROKER_URL=redis://…/9")
    from revops.celery import app

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "revops",
            "worker",
            "--pool=solo",
            "--loglevel=WARNING",
            "--hostname=backtestbench@%h",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            # Every queue, wherever the settings route the backtest.
            f"--queues={settings.ALL_QUEUES}",
        ],
        cwd=ROOT,
        env={**os.environ},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[f"backtestbench@{os.uname().nodename}"]):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise SystemExit("The worker did not start.")
        started = time.perf_counter()
        tasks.enqueue_backtest(backtest.pk)
        marks, seen = [], backtest.next_lead_id
        while True:
            watermark, status = Backtest.objects.values_list("next_lead_id", "status").get(
                pk=backtest.pk
            )
            if watermark != seen:
                marks.append(time.perf_counter())
                seen = watermark
            if status != Backtest.Status.RUNNING:
                break
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        peak = 0
        for line in Path(f"/proc/{worker.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):  # the process's own high-water mark of RSS
                peak = int(line.split()[1])
    finally:
        worker.terminate()
        worker.wait(timeout=30)
    return {
        "mode": "one solo Celery worker on Redis (run_backtest task)",
        "elapsed": elapsed,
        "chunks": [b - a for a, b in zip([started, *marks], marks, strict=False)],
        "peak_rss_kb": peak,
        "rss_before_kb": None,
    }


def clean_up(backtest: Backtest | None, draft: IcpVersion | None, since: datetime) -> None:
    """Delete what the run made: the backtest (its rows cascade), the draft and its criteria, and
    the audit entries and task results of those objects written since the start."""
    with transaction.atomic():
        if backtest is not None:
            BacktestLead.objects.filter(backtest=backtest).delete()
            Backtest.objects.filter(pk=backtest.pk).delete()
            try:
                from django_celery_results.models import TaskResult

                TaskResult.objects.filter(
                    task_name="scoring.backtest.tasks.run_backtest", date_created__gte=since
                ).delete()
            except ImportError:
                pass
        if draft is not None:
            criteria = list(IcpCriterion.objects.filter(version=draft).values_list("pk", flat=True))
            IcpVersion.objects.filter(pk=draft.pk).delete()
            for model, pks in ((IcpVersion, [draft.pk]), (IcpCriterion, criteria)):
                LogEntry.objects.filter(
                    content_type=ContentType.objects.get_for_model(model),
                    object_pk__in=[str(pk) for pk in pks],
                    timestamp__gte=since,
                ).delete()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * share) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, help="Run only the chunks of the first N leads.")
    parser.add_argument("--worker", action="store_true", help="Run it in a real Celery worker.")
    parser.add_argument("--profile", action="store_true", help="cProfile the in-process run.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run against PostgreSQL: set DATABASE_URL.")
    if args.profile and args.worker:
        raise SystemExit("--profile profiles this process: leave out --worker.")
    all_leads = Lead.objects.count()
    print(
        f"data: {all_leads:,} leads, {table_rows('leads_engagementevent'):,} events, "
        f"{table_rows('leads_handoff'):,} handoffs, {table_rows('leads_opportunity'):,} "
        f"opportunities"
    )
    since = timezone.now()
    draft = backtest = None
    try:
        draft, described = make_draft()
        backtest = start(draft, args.limit)
        print(f"draft: {described}; backtest #{backtest.pk} of {backtest.total_leads:,} leads")
        result = run_in_worker(backtest) if args.worker else run_in_process(backtest, args.profile)
        backtest.refresh_from_db()
        if backtest.status != Backtest.Status.DONE:
            raise SystemExit(f"backtest ended {backtest.status}: {backtest.error}")
        rows = BacktestLead.objects.filter(backtest=backtest).count()
        changed = BacktestLead.objects.filter(backtest=backtest, changed=True).count()
    finally:
        clean_up(backtest, draft, since)

    elapsed, chunks, processed = result["elapsed"], result["chunks"], backtest.processed
    print(f"mode: {result['mode']}")
    print(
        f"wall time: {elapsed:.1f} s for {processed:,} leads in {len(chunks)} chunks of "
        f"{services.BATCH_SIZE:,} ({processed / elapsed:,.0f} leads/s)"
    )
    if chunks:
        print(
            f"per chunk: p50 {statistics.median(chunks) * 1000:.0f} ms, "
            f"p95 {percentile(chunks, 0.95) * 1000:.0f} ms, max {max(chunks) * 1000:.0f} ms"
        )
    rss = f"peak RSS of the process doing the work: {result['peak_rss_kb'] / 1024:.0f} MB"
    if result["rss_before_kb"] is not None:
        rss += f" (before the run: {result['rss_before_kb'] / 1024:.0f} MB)"
    print(rss)
    print(
        f"result rows written: {rows:,} ({changed:,} changed tier or eligibility; the rest have a "
        f"known outcome); summary: {backtest.summary['changes']}"
    )
    full = elapsed * all_leads / processed if processed else 0.0
    if processed < all_leads:
        print(f"extrapolated to all {all_leads:,} leads: {full:.0f} s ({full / 60:.1f} min)")
    print(
        f"ratio to a full ICP refit on publish (README: {ICP_REFIT_SECONDS:.0f} s, 2 workers): "
        f"{full / ICP_REFIT_SECONDS:.1f} ×"
    )
    if "profile" in result:
        print(result["profile"])
    print("cleaned up: backtest, its rows, the draft ICP and their audit entries deleted")


if __name__ == "__main__":
    main()
