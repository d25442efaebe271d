"""Where a publish's time goes, chunk by chunk (issue 15). Not a test.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/<a copy of the seed> \\
        .venv/bin/python bench/publish_phases.py --kind weights --chunks 0,5

Publishes what ``bench/scoring_bench.py`` publishes (new weights: page views 2, e-mail clicks
4; an ICP whose best criterion gains 5 points; or one whose industry criterion takes one more
industry), without sending the rescore job to any worker, then runs the chosen chunks of its
job in this process, one after the other, and prints for each: wall seconds, this process's CPU
(Python) and its database session's CPU (PostgreSQL runs on this machine: its backend is a
process here), the wall seconds of the bucket work (``bring_up_to_date``) and of the stage
moves (``threshold_moves_apply``), and the statements that matter inside them: the reweight,
the refit, the tier mirrored onto the lead rows, and the moves' writes, each with the
write-ahead log it wrote (full-page images included: a publish rewrites every score page). CPU
seconds hold still on a shared machine; wall seconds do not.

The job is left unfinished (the other chunks are not run): use a copy made for this, and drop
it after. Each chunk is ``scoring.services.CHUNK_SIZE`` leads (a twentieth of a million-lead
publish).
"""

import argparse
import os
import sys
import time
from collections import defaultdict
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scoring_bench
from django.db import connection

from leads.services import definition_publish
from scoring import bulk, services, tasks
from scoring.models import RescoreJob

# Statements named by how they start; the rest are counted under the phase running them.
STATEMENTS = {
    "UPDATE scoring_leadscorestate SET (engagement": "reweight",
    "WITH refit AS": "refit",
    "UPDATE leads_lead SET tier": "tier onto leads",
    "UPDATE leads_lead SET stage": "moves: lead stages",
    'INSERT INTO "leads_stagetransition"': "moves: transitions",
    'INSERT INTO "leads_handoff"': "moves: handoffs",
    "UPDATE leads_lead SET owner_id": "moves: owners",
}


class Phases:
    def __init__(self) -> None:
        self.phase = "other"
        self.seconds: dict[str, float] = defaultdict(float)
        self.statements: dict[str, list] = defaultdict(lambda: [0, 0.0, 0])  # n, s, WAL bytes

    @contextmanager
    def of(self, name: str):
        outer, self.phase = self.phase, name
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started
            self.phase = outer

    def wrap(self, name: str, function):
        def timed(*args, **kwargs):
            with self.of(name):
                return function(*args, **kwargs)

        return timed

    def timing(self, execute, sql, params, many, context):
        head = sql.lstrip()
        label = next(
            (label for start, label in STATEMENTS.items() if head.startswith(start)),
            f"{self.phase}: other statements",
        )
        # Read past the wrapper (on the same session): the WAL position before and after.
        raw = context["connection"].connection.cursor()
        raw.execute("SELECT pg_current_wal_insert_lsn()")
        [(before,)] = raw.fetchall()
        entry = self.statements[label]
        started = time.perf_counter()
        try:
            result = execute(sql, params, many, context)
        finally:
            entry[0] += 1
            entry[1] += time.perf_counter() - started
        # After a statement that failed, the transaction takes no more reads: not measured.
        raw.execute("SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), %s)", [before])
        [(written,)] = raw.fetchall()
        entry[2] += int(written)
        raw.close()
        return result


def session_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / scoring_bench.CLOCK_TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind",
        choices=["weights", "icp", "icp-tests-more"],
        default="weights",
        help="icp: points changed (refitted from the score rows' match masks); icp-tests-more: "
        "an industry added to a criterion (refitted from each lead's facts)",
    )
    parser.add_argument("--chunks", default="0", help="Indexes of the job's chunks to run.")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        raise SystemExit("Run against PostgreSQL: set DATABASE_URL.")
    tasks.enqueue_job = lambda job_id: None  # no worker: the chunks run here
    draft = {
        "weights": lambda: scoring_bench.new_model(weights={"page_view": 2, "email_click": 4}),
        "icp": scoring_bench.new_icp,
        "icp-tests-more": scoring_bench.new_icp_testing_more,
    }[args.kind]()
    scoring_bench.settle()
    definition_publish(version=draft, actor=None)
    job = RescoreJob.objects.order_by("-pk").first()
    chunks = list(job.chunks.order_by("first_lead_id").values_list("pk", flat=True))
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        backend = cursor.fetchone()[0]
    print(f"{args.kind} publish, job {job.pk}: {len(chunks)} chunks ({scoring_bench.load()})")
    for index in (int(part) for part in args.chunks.split(",")):
        phases = Phases()
        bring, moves = bulk.bring_up_to_date, services.threshold_moves_apply
        bulk.bring_up_to_date = phases.wrap("buckets", bring)
        services.threshold_moves_apply = phases.wrap("moves", moves)
        python, session = time.process_time(), session_cpu_seconds(backend)
        started = time.perf_counter()
        try:
            with connection.execute_wrapper(phases.timing):
                moved = services.rescore_chunk_run(chunk_id=chunks[index])
        finally:
            bulk.bring_up_to_date, services.threshold_moves_apply = bring, moves
        print(
            f"chunk {index}: {time.perf_counter() - started:.2f} s wall; CPU: Python "
            f"{time.process_time() - python:.2f} s, database session "
            f"{session_cpu_seconds(backend) - session:.2f} s; {moved:,} stage moves "
            f"({scoring_bench.load()})"
        )
        for name, seconds in sorted(phases.seconds.items()):
            print(f"  {name}: {seconds:.2f} s wall")
        for label, (count, seconds, wal) in sorted(
            phases.statements.items(), key=lambda x: -x[1][1]
        ):
            print(f"    {label}: {seconds:.2f} s in {count} statements; WAL {wal / 1e6:.1f} MB")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")
    main()
