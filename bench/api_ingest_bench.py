"""API ingestion benchmark (issue: REST API and event ingestion). Not a test.

Needs PostgreSQL with the benchmark data set (1M leads), e.g.

    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/revops_bench
    .venv/bin/python bench/seed_bench.py --leads 1000000 --events-per-lead 10 \
        --database-url "$DATABASE_URL"
    .venv/bin/python bench/api_ingest_bench.py --batches 100

It starts gunicorn (``revops.wsgi``, 2 sync workers, DEBUG off) against that database, creates a
token for a bench user allowed to record events, and POSTs ``--batches`` batches of 1,000 new
events (unique external ids, random leads of the data set) to ``/api/v1/events/`` from
``--threads`` client threads (the standard library's http.client: no extra dependency). Every
request goes the whole way: JSON parsing, validation, one query for the leads, one for
duplicates, the insert, scoring's dirty flags and the rescoring message (kombu's filesystem
broker unless CELERY_BROKER_URL says otherwise). It prints events/s (target ≥ 10,000), then
PostgreSQL COPY of the same number of rows into leads_engagementevent (in a transaction rolled
back) and the ratio of the two, and how long validating one batch takes with the API's lean
validator and with a DRF serializer per event. The events it stored are deleted at the end.
"""

import argparse
import http.client
import io
import json
import os
import random
import shutil
import socket
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
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/revops_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.models import Permission  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402

from leads.api.events import parse_batch  # noqa: E402
from leads.api.serializers import EngagementEventInSerializer  # noqa: E402
from leads.choices import EventKind  # noqa: E402
from revops.api_tokens.selectors import api_tokens_of  # noqa: E402
from revops.api_tokens.services import api_token_create, api_token_revoke  # noqa: E402

BATCH = 1_000
TARGET = 10_000
SOURCE_SYSTEM = "api-bench"
KINDS = [EventKind.PAGE_VIEW, EventKind.EMAIL_OPEN, EventKind.EMAIL_CLICK, EventKind.PRICING_PAGE]
COPY_COLUMNS = "lead_id, kind, occurred_at, properties, source_system, external_id, received_at"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_token() -> str:
    users = get_user_model().objects
    user, _ = users.get_or_create(username="bench.api", defaults={"email": "api@bench"})
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="leads", codename="add_engagementevent")
    )
    for old in api_tokens_of(user=user):  # a fresh key per run, within the per-user limit
        api_token_revoke(token=old, actor=user)
    return api_token_create(user=user, name="api ingest bench").key


def sample_lead_ids(count: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id), max(id) FROM leads_lead")
        low, high = cursor.fetchone()
        cursor.execute(
            "SELECT id FROM leads_lead WHERE id = ANY(%s)",
            [random.sample(range(low, high + 1), min(count * 2, high - low + 1))],
        )
        ids = [row[0] for row in cursor.fetchall()]
    return ids[:count]


def make_events(run: str, batches: int, lead_ids: list[int]) -> list[list[dict]]:
    now = datetime.now(UTC)
    return [
        [
            {
                "lead": random.choice(lead_ids),
                "kind": KINDS[n % len(KINDS)],
                "occurred_at": (now - timedelta(minutes=n % 600)).isoformat(),
                "source_system": SOURCE_SYSTEM,
                "external_id": f"{run}-{b}-{n}",
                "properties": {"url": "/pricing", "campaign": "spring"},
            }
            for n in range(BATCH)
        ]
        for b in range(batches)
    ]


def start_gunicorn(port: int, workers: int, broker_folder: str) -> subprocess.Popen:
    env = {
        **os.environ,
        # Rescoring messages of the run go to a folder of its own (no worker consumes them:
        # the leads stay marked dirty, as the scoring sweep expects after a broker outage).
        "CELERY_BROKER_FOLDER": broker_folder,
        "DJANGO_SETTINGS_MODULE": "revops.settings.local",
        "DJANGO_DEBUG": "0",
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
    }
    log = ROOT / "var" / "log" / "api_ingest_bench_gunicorn.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [
            str(ROOT / ".venv/bin/gunicorn"),
            "revops.wsgi",
            "-w",
            str(workers),
            "-b",
            f"127.0.0.1:{port}",
            "--timeout",
            "120",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),  # errors of the run, if any
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return process
        except OSError:
            pass
        if process.poll() is not None:
            raise SystemExit("gunicorn exited before it answered")
        time.sleep(0.3)
    process.terminate()
    raise SystemExit("gunicorn did not answer /healthz within 60 s")


def post_batches(port: int, token: str, bodies: list[bytes], results: list) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"Token {token}", "Content-Type": "application/json"}
    for body in bodies:
        started = time.perf_counter()
        conn.request("POST", "/api/v1/events/", body=body, headers=headers)
        response = conn.getresponse()
        payload = response.read()
        results.append((response.status, time.perf_counter() - started, payload))


def run_api(port: int, token: str, bodies: list[bytes], threads: int) -> tuple[float, list]:
    results: list = []
    shares = [bodies[i::threads] for i in range(threads)]
    workers = [
        threading.Thread(target=post_batches, args=(port, token, share, results))
        for share in shares
    ]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return time.perf_counter() - started, results


def measure_copy(rows: int, lead_ids: list[int]) -> float:
    """COPY of ``rows`` events into the indexed table, in a transaction rolled back."""
    now = datetime.now(UTC).isoformat()
    buffer = io.StringIO()
    props = json.dumps({"url": "/pricing", "campaign": "spring"})
    for n in range(rows):
        kind = KINDS[n % len(KINDS)]
        lead = random.choice(lead_ids)
        buffer.write(f"{lead}\t{kind}\t{now}\t{props}\t{SOURCE_SYSTEM}-copy\tcopy-{n}\t{now}\n")
    buffer.seek(0)
    raw = connection.connection
    with raw.cursor() as cursor:
        cursor.execute("BEGIN")
        started = time.perf_counter()
        cursor.copy_expert(
            f"COPY leads_engagementevent ({COPY_COLUMNS}) FROM STDIN", buffer, size=1 << 20
        )
        elapsed = time.perf_counter() - started
        cursor.execute("ROLLBACK")
    return elapsed


def measure_validation(batch: list[dict], repeat: int = 5) -> tuple[float, float]:
    """Milliseconds to validate one batch: the API's validator (leads resolved in one query)
    and DRF's serializer per event (types only, no lead lookup: a lower bound)."""
    lean, drf = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        assert not parse_batch(batch).errors
        lean.append(time.perf_counter() - started)
        started = time.perf_counter()
        serializer = EngagementEventInSerializer(data=batch, many=True)
        assert serializer.is_valid(), serializer.errors
        drf.append(time.perf_counter() - started)
    return statistics.median(lean) * 1000, statistics.median(drf) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=100, help="batches of 1,000 events")
    parser.add_argument("--threads", type=int, default=2, help="client threads")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument(
        "--active-leads",
        type=int,
        default=50_000,
        help="leads the events go to, sampled at random from the data set (the working set)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the events it stored")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("The benchmark needs PostgreSQL (DATABASE_URL).")

    call_command("migrate", "api_tokens", verbosity=0)
    token = bench_token()
    leads = sample_lead_ids(args.active_leads)
    print(f"database: {connection.settings_dict['NAME']}, {len(leads):,} sampled leads")
    run = uuid.uuid4().hex[:8]
    warmup = [json.dumps(b).encode() for b in make_events(f"{run}-w", 4, leads)]
    batches = make_events(run, args.batches, leads)
    bodies = [json.dumps(b).encode() for b in batches]
    lean_ms, drf_ms = measure_validation(batches[0])

    port = free_port()
    broker_folder = tempfile.mkdtemp(prefix="api-bench-broker-")
    server = start_gunicorn(port, args.workers, broker_folder)
    try:
        run_api(port, token, warmup, args.threads)
        elapsed, results = run_api(port, token, bodies, args.threads)
        # Re-sending a batch stores nothing and says so.
        _, resend = run_api(port, token, bodies[:1], 1)
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(broker_folder, ignore_errors=True)

    statuses = sorted({status for status, _, _ in results})
    created = sum(json.loads(payload)["created"] for status, _, payload in results if status == 201)
    latencies = sorted(latency for _, latency, _ in results)
    events = len(bodies) * BATCH
    api_rate = events / elapsed
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM leads_engagementevent WHERE source_system = %s "
            "AND external_id LIKE %s",
            [SOURCE_SYSTEM, f"{run}-%"],
        )
        stored = cursor.fetchone()[0] - len(warmup) * BATCH
    resend_body = json.loads(resend[0][2])

    copy_seconds = measure_copy(events, leads)
    copy_rate = events / copy_seconds
    print(
        f"API: {events:,} events in {len(bodies)} batches of {BATCH:,} from {args.threads} "
        f"threads, gunicorn -w {args.workers}: {elapsed:.2f} s"
    )
    print(f"  statuses {statuses}; created {created:,}; rows stored {stored:,}")
    print(
        f"  request latency p50 {statistics.median(latencies) * 1000:.0f} ms, "
        f"p95 {latencies[int(len(latencies) * 0.95) - 1] * 1000:.0f} ms"
    )
    print(
        f"  re-sent batch: HTTP {resend[0][0]}, created {resend_body['created']}, "
        f"duplicates {resend_body['duplicate_count']}"
    )
    verdict = "meets" if api_rate >= TARGET else "MISSES"
    print(f"  => {api_rate:,.0f} events/s ({verdict} the {TARGET:,}/s target)")
    print(f"COPY: {events:,} rows in {copy_seconds:.2f} s => {copy_rate:,.0f} rows/s")
    print(f"ratio API / COPY: {api_rate / copy_rate:.2f}")
    print(
        f"validating one batch of {BATCH:,}: lean {lean_ms:.1f} ms, "
        f"DRF serializer per event {drf_ms:.1f} ms (without lead lookups)"
    )

    if not args.keep:
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM leads_engagementevent WHERE source_system = %s "
                "AND external_id LIKE %s",
                [SOURCE_SYSTEM, f"{run}-%"],
            )
            print(f"deleted the {cursor.rowcount:,} events the benchmark stored")


if __name__ == "__main__":
    main()
