"""Read-replica benchmark (issue 17): dashboard p95 with reads on a streaming replica while
ingestion runs on the primary, beside the same run on one server. Not a test.

    .venv/bin/python bench/replica_bench.py                 # 100,000 leads, ~10 events each
    .venv/bin/python bench/replica_bench.py --leads 1000000

It sets up its own data: a private PostgreSQL primary on a free port in a temporary folder
(``tests/replica.py``; never the shared server), migrated and seeded by ``seed_demo`` as
``bench/seed_bench.py`` runs it, then a streaming standby of it (``pg_basebackup -R``). Then, in
the same run, for each setup:

- **one server**: the standby stopped, the app without ``DATABASE_REPLICA_URL``;
- **replica**: the standby streaming, the app with ``DATABASE_REPLICA_URL`` set to it;

another process posts events to ``/api/v1/events/`` (batches of 1,000, the API's whole path
through Django's test client) at a steady ``--ingest-rate`` on the primary, while a measuring
process opens the meeting's dashboards (overview, funnel, handoffs, pipeline) as a Viewer:
first views of filter sets nobody opened (computed in the request), then views served from
snapshots. It prints p50 / p95 of each for both setups and their ratio, the ingestion rate
each achieved, the replica's largest replay lag seen (the primary's ``pg_stat_replication``,
sampled every ½ s), the share of the pages' reads the replica served, and the 1-minute load
average. Both clusters are stopped and removed at the end, on an error, and on Ctrl-C.

Both servers share this machine's cores, so the replica's own hardware is not in the figures:
what they show is the primary relieved of the dashboards' queries, and what replication costs.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(BENCH))

from timing import percentile  # noqa: E402  (bench/timing.py)

DATABASE = "revops_replica_bench"
PAGES = ["/dashboards/", "/dashboards/funnel/", "/dashboards/handoffs/", "/dashboards/pipeline/"]
PRESETS = ["this_week", "last_4_weeks", "this_quarter"]
BATCH = 1_000
# Filters of the untimed warm-up pass (each setup's caches start as the one before left them).
WARMUP = ["?preset=last_quarter", "?preset=last_4_weeks&tier=B"]


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def app_env(primary_url: str, replica_url: str | None, broker_folder: str) -> dict[str, str]:
    """The application's settings for a child process: the private primary (and replica), no
    DEBUG query log, the rescoring messages into a folder nobody consumes (the leads stay
    marked dirty, as after a broker outage)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REPLICA_", "CELERY_", "CACHE_URL"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "revops.settings.local",
            "DJANGO_DEBUG": "0",
            "DATABASE_URL": primary_url,
            "CELERY_BROKER_URL": "filesystem://localhost/",
            "CELERY_BROKER_FOLDER": broker_folder,
        }
    )
    if replica_url:
        env["DATABASE_REPLICA_URL"] = replica_url
    return env


# --- Child: the ingestion load -------------------------------------------------------------


def child_ingest(rate: float) -> None:
    """Post batches of 1,000 events on a steady schedule (``rate`` events/s) until stdin closes;
    a batch that falls behind the schedule is sent at once. Prints "ready", then a JSON line."""
    import django

    django.setup()
    from api_ingest_bench import bench_token, make_events, sample_lead_ids
    from django.test import Client

    token = bench_token()
    leads = sample_lead_ids(50_000)
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Token {token}")
    run = f"{os.getpid()}-{time.time_ns()}"
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print("ready", flush=True)

    interval = BATCH / rate
    started = time.perf_counter()
    sent = created = 0
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    while not stop.is_set():
        due = started + sent * interval
        if (wait := due - time.perf_counter()) > 0:
            stop.wait(wait)
            continue
        body = json.dumps(make_events(f"{run}-{sent}", 1, leads)[0])
        posted = time.perf_counter()
        response = client.post("/api/v1/events/", data=body, content_type="application/json")
        latencies.append(time.perf_counter() - posted)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code == 201:
            created += response.json()["created"]
        sent += 1
    seconds = time.perf_counter() - started
    print(
        json.dumps(
            {
                "batches": sent,
                "created": created,
                "seconds": seconds,
                "statuses": statuses,
                "p95_ms": percentile(latencies, 0.95) * 1000 if latencies else None,
            }
        ),
        flush=True,
    )


# --- Child: the dashboards -------------------------------------------------------------------


def child_measure(rounds: int) -> None:
    """First views of new filter sets, then views from snapshots; prints one JSON line."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.db import connections
    from django.test import Client
    from django.utils import timezone

    from leads.models import Source
    from leads.roles import VIEWER
    from metrics.models import KpiSnapshot
    from revops import db_router

    reads: dict[str, int] = {}

    def count(alias):
        def wrapper(execute, sql, params, many, context):
            if sql.lstrip()[:4].upper() in ("SELE", "WITH"):
                reads[alias] = reads.get(alias, 0) + 1
            return execute(sql, params, many, context)

        return wrapper

    user, _ = get_user_model().objects.get_or_create(username="bench.viewer")
    user.groups.add(Group.objects.get(name=VIEWER))  # the meeting-room screen's role
    client = Client(HTTP_HOST="localhost")
    client.force_login(user)
    KpiSnapshot.objects.all().delete()
    sources = list(Source.objects.order_by("pk").values_list("pk", flat=True)[:2])
    filters = ["", *(f"&source={pk}" for pk in sources), "&tier=A", "&channel=events"]
    urls = [f"{page}?preset={p}{extra}" for page in PAGES for p in PRESETS for extra in filters]

    def timed(url: str) -> float:
        started = time.perf_counter()
        response = client.get(url)
        took = (time.perf_counter() - started) * 1000
        assert response.status_code == 200, (url, response.status_code)
        return took

    for url in (page + query for page in PAGES for query in WARMUP):
        timed(url)
    for alias in connections:
        connections[alias].execute_wrappers.append(count(alias))
    first = [timed(url) for url in urls]
    # What beat keeps true: every opened key recomputed within the last minute.
    KpiSnapshot.objects.update(computed_at=timezone.now())
    if db_router.replica_configured():
        # The snapshots' new time reaches the replica before the timed views read it.
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_insert_lsn()")
            (target,) = cursor.fetchone()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with connections["replica"].cursor() as cursor:
                cursor.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target])
                if cursor.fetchone()[0]:
                    break
            time.sleep(0.05)
        db_router.replica_health_forget()
    cached = [timed(url) for _ in range(rounds) for url in urls]
    print(json.dumps({"first": first, "cached": cached, "reads": reads, "urls": len(urls)}))


# --- The run ---------------------------------------------------------------------------------


class LagSampler(threading.Thread):
    """The standby's replay lag as the primary sees it, every half second, while it runs."""

    def __init__(self, primary_url: str):
        super().__init__(daemon=True)
        self.primary_url = primary_url
        self.stop = threading.Event()
        self.max_seconds = 0.0
        self.max_bytes = 0
        self.samples = 0

    def run(self) -> None:
        import psycopg2

        connection = psycopg2.connect(self.primary_url)
        connection.autocommit = True
        with connection, connection.cursor() as cursor:
            while not self.stop.wait(0.5):
                cursor.execute(
                    "SELECT coalesce(EXTRACT(EPOCH FROM replay_lag), 0)::float,"
                    " pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)::bigint"
                    " FROM pg_stat_replication"
                )
                for seconds, lag_bytes in cursor.fetchall():
                    self.max_seconds = max(self.max_seconds, seconds or 0.0)
                    self.max_bytes = max(self.max_bytes, lag_bytes or 0)
                self.samples += 1
        connection.close()


def measure(label: str, env: dict[str, str], args, pair, replica: bool) -> dict:
    """One setup: the ingestion load started, the dashboards measured, the load stopped."""
    me = [sys.executable, str(Path(__file__).resolve())]
    ingest = subprocess.Popen(
        [*me, "--child", "ingest", "--ingest-rate", str(args.ingest_rate)],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    sampler = LagSampler(pair.primary_url) if replica else None
    try:
        if ingest.stdout.readline().strip() != "ready":
            raise SystemExit("the ingestion process did not start")
        if sampler:
            sampler.start()
        time.sleep(args.settle)  # the load at its steady rate before the first page
        load_before = loadavg()
        result = subprocess.run(
            [*me, "--child", "measure", "--rounds", str(args.rounds)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise SystemExit(f"{label}: the measuring process failed:\n{result.stderr[-4000:]}")
        pages = json.loads(result.stdout.strip().splitlines()[-1])
        load_after = loadavg()
        ingest.stdin.close()
        summary = json.loads(ingest.stdout.readline())
        ingest.wait(timeout=60)
    finally:
        if ingest.poll() is None:
            ingest.kill()
            ingest.wait()
        if sampler:
            sampler.stop.set()
            sampler.join(timeout=5)
    return {
        "label": label,
        **pages,
        "ingest": summary,
        "load": f"{load_before} → {load_after}",
        "lag_seconds": sampler.max_seconds if sampler else None,
        "lag_bytes": sampler.max_bytes if sampler else None,
    }


def report(runs: list[dict]) -> None:
    """Each setup's passes pooled (p50 / p95 of all their requests), each pass's p95 beside."""
    labels = ["one server", "replica"]
    passes = {label: [r for r in runs if r["label"] == label] for label in labels}
    print()
    for kind, title in (("first", "first view of a new filter set"), ("cached", "from snapshots")):
        p50, p95 = {}, {}
        print(f"{title}:")
        for label in labels:
            pooled = [ms for r in passes[label] for ms in r[kind]]
            p50[label], p95[label] = statistics.median(pooled), percentile(pooled, 0.95)
            each = ", ".join(f"{percentile(r[kind], 0.95):.0f}" for r in passes[label])
            print(
                f"  {label:>10}: p50 {p50[label]:7.1f} ms, p95 {p95[label]:7.1f} ms "
                f"({len(pooled)} requests; p95 of each pass {each} ms)"
            )
        print(
            f"  replica / one server: p50 {p50['replica'] / p50['one server']:.2f} ×, "
            f"p95 {p95['replica'] / p95['one server']:.2f} ×"
        )
    print("ingestion on the primary while the pages ran:")
    for r in runs:
        s = r["ingest"]
        rate = s["created"] / s["seconds"] if s["seconds"] else 0.0
        total = sum(r["reads"].values()) or 1
        print(
            f"  {r['label']:>10}: {rate:,.0f} events/s created ({s['batches']} batches in "
            f"{s['seconds']:.1f} s; HTTP {s['statuses']}; batch p95 {s['p95_ms'] or 0:.0f} ms); "
            f"page reads on the replica {r['reads'].get('replica', 0) / total:.0%} of "
            f"{total:,} SELECTs; load {r['load']}"
        )
    lag = max(r["lag_seconds"] for r in passes["replica"])
    lag_bytes = max(r["lag_bytes"] for r in passes["replica"])
    print(f"replica lag, largest seen: {lag:.3f} s replay lag, {lag_bytes:,} bytes of WAL behind")


def _interrupted(signum, frame):
    raise KeyboardInterrupt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--events-per-lead", type=float, default=10)
    parser.add_argument(
        "--ingest-rate", type=float, default=2_000, help="events/s posted on the primary"
    )
    parser.add_argument("--rounds", type=int, default=3, help="snapshot views per filter set")
    parser.add_argument("--passes", type=int, default=2, help="passes of each setup")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds of load before pages")
    parser.add_argument("--child", choices=["ingest", "measure"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "ingest":
        child_ingest(args.ingest_rate)
        return
    if args.child == "measure":
        child_measure(args.rounds)
        return

    from seed_bench import run as manage  # the seed as bench/seed_bench.py runs it

    from tests.replica import postgres_bin_dir, replica_pair

    if postgres_bin_dir() is None:
        raise SystemExit("PostgreSQL's server programs (initdb, pg_basebackup) are needed.")
    # Ctrl-C and a plain kill both end in the clusters' cleanup below.
    signal.signal(signal.SIGTERM, _interrupted)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    print(f"== replica bench, code {commit}, load {loadavg()} on {os.cpu_count()} cores")
    with replica_pair(DATABASE, standby=False) as pair:
        broker = tempfile.mkdtemp(prefix="broker-", dir=pair.root)
        primary_env = app_env(pair.primary_url, None, broker)
        started = time.perf_counter()
        manage(["migrate", "-v0"], primary_env)
        seed = manage(
            [
                "seed_demo",
                "--reset",
                f"--leads={args.leads}",
                f"--events-per-lead={args.events_per_lead}",
                "-v0",
            ],
            primary_env,
        )
        print(
            f"primary on port {pair.primary.port}: migrated and seeded {args.leads:,} leads in "
            f"{time.perf_counter() - started:.0f} s (seed {seed:.0f} s)"
        )
        started = time.perf_counter()
        pair.start_standby(timeout=1800)
        pair.wait_caught_up(timeout=600)
        print(
            f"standby on port {pair.standby.port}: base backup and streaming in "
            f"{time.perf_counter() - started:.0f} s"
        )
        replica_env = app_env(pair.primary_url, pair.standby_url, broker)
        runs = []
        # The setups alternate (one server, replica, one server, …) so that neither always
        # runs on the caches the other warmed, nor always at the quieter moment.
        for number in range(1, args.passes + 1):
            pair.standby.stop("fast")
            print(f"== pass {number}: one server (load {loadavg()})", flush=True)
            runs.append(measure("one server", primary_env, args, pair, replica=False))
            pair.standby.start()
            pair.wait_streaming()
            pair.wait_caught_up(timeout=600)
            print(f"== pass {number}: replica (load {loadavg()})", flush=True)
            runs.append(measure("replica", replica_env, args, pair, replica=True))
        report(runs)
        print(
            f"data: {args.leads:,} leads, {args.events_per_lead:g} events per lead; ingestion "
            f"target {args.ingest_rate:,.0f} events/s; PostgreSQL "
            f"{pair.primary.psql('SHOW server_version')} (fsync off, shared_buffers "
            f"{pair.primary.psql('SHOW shared_buffers')}) for both clusters on this machine"
        )
    print(f"clusters stopped and removed (load {loadavg()})")


if __name__ == "__main__":
    main()
