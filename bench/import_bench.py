"""CSV import benchmark (REST API / ingestion / CSV import issue). Not a test.

    .venv/bin/python bench/import_bench.py \
        [--database-url postgres://postgres@127.0.0.1:5432/revops_bench] \
        [--events 200000] [--event-leads 50000] [--leads 100000] [--rounds 2] \
        [--received 100000] [--phases]

Generates synthetic CSV files in a temporary folder — HubSpot-style engagement events for
existing leads, and new leads (e-mail, names, company and website, source, lifecycle stage,
create date, record id) — and imports them with the same code as the import pages
(``leads.imports.engine.import_file``: parsing and validation, reference resolution, stage
history, COPY, marking leads for rescoring). It also loads rows of the same shape with a bare
PostgreSQL ``COPY`` into the same tables (ids and references resolved beforehand, untimed), in
the same run, and prints both rates and their ratio. Every measurement writes keys (e-mails,
external ids, event ids) of its own: a rolled-back one leaves its keys in the unique indexes
until the closing VACUUM, and a later one writing the same keys would check each dead row.

Every measurement runs in a transaction that is rolled back, so the database keeps its data
(the id sequences advance, as any rolled-back insert makes them), and the tables written are
vacuumed at the end (rolled-back rows are dead tuples until then). Foreign keys are checked
per statement in both (``SET CONSTRAINTS ALL IMMEDIATE``), as the import does: a rolled-back
transaction with deferred checks would never check them.
Targets: events ≥ 50,000 rows/s, leads ≥ 20,000 rows/s.

``--received`` also re-imports that many events the database has already received (taken from
the seeded ones): nothing is written, so it times the idempotency check (the key lookups) and
the parsing alone. ``--phases`` prints where each import's time went: every SQL statement the
import ran on its connection, grouped (key lookups, the ordered INSERT with its triggers and
foreign-key checks, the rescoring marks…), and the rest, Python (reading, parsing, checking,
building the COPY data), with the staging COPYs overlapping it on the writer's thread.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import random
import resource
import sys
import tempfile
import time
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"events": 50_000, "leads": 20_000}


def load_average() -> str:
    """The 1-minute load average: the machine is shared, so every figure says how busy it was."""
    try:
        with open("/proc/loadavg") as loadavg:
            return loadavg.read().split()[0]
    except OSError:
        return "?"


def setup(database_url: str) -> None:
    sys.path.insert(0, str(ROOT))
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "revops.settings.local")
    import django

    django.setup()


# --- Synthetic files --------------------------------------------------------------------------


def write_events(path: Path, *, rows: int, leads: list[tuple[int, str]], seed: int) -> list:
    """HubSpot-like activity export for existing leads; returns the rows for the COPY."""
    rng = random.Random(seed)
    kinds = (
        ["page_view"] * 6
        + ["email_open"] * 3
        + ["email_click", "content_download", "pricing_page", "form_fill", "webinar_attended"]
    )
    start = datetime(2026, 1, 1, tzinfo=UTC)
    run = f"{seed}-{int(time.time())}"
    received = datetime.now(UTC).isoformat()
    copy_rows = []
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Record ID", "Activity Type", "Activity Date", "Activity ID"])
        for number in range(rows):
            lead_id, external_id = leads[rng.randrange(len(leads))]
            kind = kinds[rng.randrange(len(kinds))]
            at = start + timedelta(seconds=rng.randrange(90 * 86_400))
            event_id = f"BENCH-{run}-{number}"
            writer.writerow([external_id, kind, at.isoformat(), event_id])
            copy_rows.append((lead_id, kind, at.isoformat(), "{}", "bench", event_id, received))
    return copy_rows


def write_leads(
    path: Path, *, rows: int, accounts: list[tuple[int, str, str]], sources, seed: int
) -> list:
    """New contacts: 90 % at a known company's website, 10 % named by company only."""
    rng = random.Random(seed)
    stages = ["lead"] * 7 + ["mql", "mql", "sql"]
    firsts = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia"]
    lasts = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson"]
    run = f"{seed}{int(time.time()) % 100000}"
    start = datetime(2025, 6, 1, tzinfo=UTC)
    copy_rows = []
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(
            [
                "Record ID",
                "Email",
                "First Name",
                "Last Name",
                "Company Name",
                "Website URL",
                "Original Source",
                "Lifecycle Stage",
                "Create Date",
            ]
        )
        for number in range(rows):
            account_id, name, domain = accounts[rng.randrange(len(accounts))]
            first, last = firsts[rng.randrange(len(firsts))], lasts[rng.randrange(len(lasts))]
            email = f"{first}.{last}.{run}.{number}@bench-{domain}".lower()
            website = domain if rng.random() < 0.9 else ""
            source_id, source = sources[rng.randrange(len(sources))]
            stage = stages[rng.randrange(len(stages))]
            created = start + timedelta(seconds=rng.randrange(180 * 86_400))
            writer.writerow(
                [
                    f"BENCH-{run}-{number}",
                    email,
                    first,
                    last,
                    name,
                    website,
                    source,
                    stage,
                    created.isoformat(),
                ]
            )
            copy_rows.append(
                (
                    first,
                    last,
                    email,
                    "",
                    "",
                    "unknown",
                    "",
                    account_id,
                    source_id,
                    stage,
                    created.isoformat(),
                    "D",
                    stage == "lead" or stage == "mql",
                    f"BENCH-{run}-{number}",
                    created.isoformat(),
                    created.isoformat(),
                )
            )
    return copy_rows


# --- Measurements -----------------------------------------------------------------------------


def bare_copy(*loads: tuple[str, list[str], object], new_leads: int = 0) -> float:
    """Seconds for COPYs of ``(table, columns, rows)`` in one transaction (the CSV is built
    before the clock starts). With ``new_leads``, that many lead ids are drawn from the
    sequence first and ``rows`` is a function of them."""
    from django.db import connection, transaction

    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            ids = []
            if new_leads:
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence('leads_lead', 'id')) "
                    "FROM generate_series(1, %s)",
                    [new_leads],
                )
                ids = [row[0] for row in cursor.fetchall()]
            statements = []
            for table, columns, rows in loads:
                buffer = io.StringIO()
                # Texts quoted (an empty one is '' in a NOT NULL column), None unquoted (NULL).
                writer = csv.writer(buffer, lineterminator="\n", quoting=csv.QUOTE_NONNUMERIC)
                writer.writerows(rows(ids) if callable(rows) else rows)
                buffer.seek(0)
                sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT csv)"
                statements.append((sql, buffer))
            raw = cursor.cursor
            started = time.perf_counter()
            for sql, buffer in statements:
                raw.copy_expert(sql, buffer, size=1 << 18)
            seconds = time.perf_counter() - started
        transaction.set_rollback(True)
    return seconds


IMPLIED = {"lead": ["lead"], "mql": ["lead", "mql"], "sql": ["lead", "mql", "sal", "sql"]}


def everything_the_lead_import_writes(lead_rows, lead_columns):
    """The leads with ids, their stage history and their dirty score states (as the import
    writes them), for a like-for-like COPY baseline."""
    stage_at, created_at = lead_columns.index("stage"), lead_columns.index("created_at")

    def leads(ids):
        return [(lead_id, *row) for lead_id, row in zip(ids, lead_rows, strict=True)]

    def transitions(ids):
        rows = []
        for lead_id, row in zip(ids, lead_rows, strict=True):
            previous = ""
            for stage in IMPLIED[row[stage_at]]:
                rows.append((lead_id, previous, stage, row[created_at], "import", "Imported"))
                previous = stage
        return rows

    def states(ids):
        return [(lead_id, 1, 0, 0, 0) for lead_id in ids]

    return [
        ("leads_lead", ["id", *lead_columns], leads),
        (
            "leads_stagetransition",
            ["lead_id", "from_stage", "to_stage", "transitioned_at", "actor_type", "reason"],
            transitions,
        ),
        (
            "scoring_leadscorestate",
            ["lead_id", "pending_seq", "scored_seq", "epoch_day", "as_of_day"],
            states,
        ),
    ]


class Phases:
    """The import's SQL statements, timed and grouped by what they do (``--phases``)."""

    GROUPS = (
        ("key lookups", ("SELECT found.*",)),
        ("ids taken", ("SELECT nextval",)),
        ("staged rows stored (INSERT … SELECT: indexes, triggers, FK checks)", ("INSERT INTO",)),
        ("rescoring marks", ('INSERT INTO "scoring_', "SELECT pg_advisory_xact_lock_shared")),
        ("updates through temporary tables", ("UPDATE",)),
    )

    def __init__(self) -> None:
        self.seconds: dict[str, list] = {}
        self.copied: dict[str, list] = {}  # COPYs, on the writer's thread

    @contextmanager
    def copies(self):
        """Time the bulk writer's COPYs too (they run on its thread, beside the Python)."""
        from leads.services import bulk

        original = bulk.Writer._written

        def written(writer, label, rows, seconds):
            entry = self.copied.setdefault(label, [0, 0, 0.0])
            entry[0] += 1
            entry[1] += rows
            entry[2] += seconds
            original(writer, label, rows, seconds)

        bulk.Writer._written = written
        try:
            yield
        finally:
            bulk.Writer._written = original

    def group(self, sql: str) -> str:
        found = "other statements"
        for name, prefixes in self.GROUPS:
            if sql.lstrip().startswith(prefixes):
                found = name  # the last group that matches (marks are inserts too)
        return found

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            entry = self.seconds.setdefault(self.group(sql), [0, 0.0])
            entry[0] += 1
            entry[1] += time.perf_counter() - started

    def lines(self, total: float) -> list[str]:
        spent = sum(seconds for _, seconds in self.seconds.values())
        lines = [
            f"      {seconds:6.2f} s  {name} ({count} statement{'s' if count > 1 else ''})"
            for name, (count, seconds) in sorted(self.seconds.items(), key=lambda kv: -kv[1][1])
        ]
        lines.append(
            f"      {total - spent:6.2f} s  the rest: Python (reading, parsing, checking, COPY "
            "data) and waits for the COPYs below"
        )
        for label, (count, rows, seconds) in self.copied.items():
            if "engagementevent" in label and "staged" not in label:
                continue  # the staged rows' INSERT, counted above
            lines.append(
                f"        {seconds:6.2f} s  COPY {label}: {rows:,} rows in {count} "
                "(on the writer's thread, beside the Python)"
            )
        return lines


def timed_import(path: Path, mapping, *, phases: bool = False):
    from django.db import connection, transaction

    from leads.imports.engine import COMMITTED, import_file

    recorder = Phases()
    with (
        transaction.atomic(),
        connection.execute_wrapper(recorder if phases else _untimed),
        recorder.copies() if phases else nullcontext(),
    ):
        started = time.perf_counter()
        report = import_file(path=path, mapping=mapping, label=path.name)
        seconds = time.perf_counter() - started
        transaction.set_rollback(True)  # the database keeps its data
    if report.status != COMMITTED:
        raise SystemExit(f"import of {path.name} failed: {report.summary} {report.errors[:3]}")
    if phases:
        print("\n".join(recorder.lines(seconds)))
    return seconds, report


def _untimed(execute, sql, params, many, context):
    return execute(sql, params, many, context)


def write_received(path: Path, *, rows: int) -> int:
    """Events the database has received already (seeded ones, with their leads' external ids),
    as an export would send them again; returns how many were written."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT l.external_id, e.kind, e.occurred_at, e.source_system, e.external_id "
            "FROM leads_engagementevent e JOIN leads_lead l ON l.id = e.lead_id "
            "WHERE e.external_id <> '' AND l.external_id <> '' LIMIT %s",
            [rows],
        )
        found = cursor.fetchall()
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(["Record ID", "Activity Type", "Activity Date", "Source", "Activity ID"])
        writer.writerows((lead, kind, at.isoformat(), system, key)
                         for lead, kind, at, system, key in found)  # fmt: skip
    return len(found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/revops_bench")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--event-leads", type=int, default=50_000)
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2, help="Runs of each (the best counts).")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--received",
        type=int,
        default=100_000,
        help="Also re-import this many events received before (0: skip).",
    )
    parser.add_argument(
        "--phases", action="store_true", help="Print where each import's time went."
    )
    parser.add_argument(
        "--no-vacuum",
        action="store_true",
        help="Skip the VACUUM that reclaims the rolled-back rows at the end.",
    )
    args = parser.parse_args()
    setup(args.database_url)

    from django.db import connection

    from leads.imports.mapping import Mapping
    from leads.models import Account, Lead, Source

    if connection.vendor != "postgresql":
        raise SystemExit("The import benchmark compares with PostgreSQL COPY: use PostgreSQL.")
    total_leads = Lead.objects.count()
    print(
        f"Database: {connection.settings_dict['NAME']} — {total_leads:,} leads, "
        f"{Account.objects.count():,} accounts; load average {load_average()}"
    )
    rng = random.Random(args.seed)
    ids = list(Lead.objects.exclude(external_id="").values_list("pk", flat=True)[:2_000_000])
    sample = rng.sample(ids, min(args.event_leads, len(ids)))
    event_leads = list(Lead.objects.filter(pk__in=sample).values_list("pk", "external_id"))
    accounts = list(
        Account.objects.exclude(domain="").values_list("pk", "name", "domain")[:200_000]
    )
    sources = list(Source.objects.values_list("pk", "name"))

    events_mapping = Mapping.from_json(
        {
            "kind": "events",
            "fields": {
                "lead_external_id": "Record ID",
                "kind": "Activity Type",
                "occurred_at": "Activity Date",
                "external_id": "Activity ID",
                "source_system": {"constant": "bench"},
            },
        }
    )
    leads_mapping = Mapping.from_json(
        {
            "kind": "leads",
            "fields": {
                "external_id": "Record ID",
                "email": "Email",
                "first_name": "First Name",
                "last_name": "Last Name",
                "account_name": "Company Name",
                "account_domain": "Website URL",
                "source": "Original Source",
                "stage": "Lifecycle Stage",
                "created_at": "Create Date",
            },
        }
    )
    event_columns = [
        "lead_id",
        "kind",
        "occurred_at",
        "properties",
        "source_system",
        "external_id",
        "received_at",
    ]
    lead_columns = [
        "first_name",
        "last_name",
        "email",
        "phone",
        "title",
        "seniority",
        "country",
        "account_id",
        "source_id",
        "stage",
        "stage_entered_at",
        "tier",
        "in_marketing_nurture",
        "external_id",
        "created_at",
        "updated_at",
    ]
    results = {}
    with tempfile.TemporaryDirectory() as folder:

        def fresh(kind: str, round_number: int, part: int):
            """A file and its rows whose keys (e-mails, external ids, event ids) no other
            measurement wrote: a rolled-back measurement leaves its keys in the unique indexes
            until the closing VACUUM, and the next one writing the same keys would visit each
            dead row to check it (the import paid that for the COPY run before it)."""
            path = Path(folder) / f"{kind}-{round_number}-{part}.csv"
            seed = args.seed * 1000 + round_number * 10 + part
            if kind == "events":
                return path, write_events(path, rows=args.events, leads=event_leads, seed=seed)
            return path, write_leads(
                path, rows=args.leads, accounts=accounts, sources=sources, seed=seed
            )

        sizes = {kind: fresh(kind, 0, 0)[0].stat().st_size / 1e6 for kind in ("events", "leads")}
        print(
            f"Files: {args.events:,} events for {len(event_leads):,} existing leads "
            f"({sizes['events']:.1f} MB), {args.leads:,} new leads ({sizes['leads']:.1f} MB); "
            "each measurement writes keys of its own"
        )
        for kind, mapping, table, columns in (
            ("events", events_mapping, "leads_engagementevent", event_columns),
            ("leads", leads_mapping, "leads_lead", lead_columns),
        ):
            best_import, best_copy, best_all, report = None, None, None, None
            for round_number in range(1, args.rounds + 1):
                _, rows = fresh(kind, round_number, 1)
                copy_seconds = bare_copy((table, columns, rows))
                all_seconds = None
                if kind == "leads":
                    everything = everything_the_lead_import_writes(
                        fresh(kind, round_number, 2)[1], columns
                    )
                    all_seconds = bare_copy(*everything, new_leads=len(rows))
                path, _ = fresh(kind, round_number, 3)
                import_seconds, report = timed_import(path, mapping, phases=args.phases)
                line = (
                    f"  {kind} round {round_number} (load {load_average()}): "
                    f"import {import_seconds:.2f} s "
                    f"({len(rows) / import_seconds:,.0f} rows/s), COPY {copy_seconds:.2f} s "
                    f"({len(rows) / copy_seconds:,.0f} rows/s)"
                )
                if all_seconds is not None:
                    line += f", COPY of all it writes {all_seconds:.2f} s"
                    best_all = min(best_all or all_seconds, all_seconds)
                print(line)
                best_import = min(best_import or import_seconds, import_seconds)
                best_copy = min(best_copy or copy_seconds, copy_seconds)
            results[kind] = (len(rows), best_import, best_copy, best_all, report)
        received = None
        if args.received:
            again_csv = Path(folder) / "received.csv"
            count = write_received(again_csv, rows=args.received)
            again_mapping = Mapping.from_json(
                {
                    "kind": "events",
                    "fields": {
                        "lead_external_id": "Record ID",
                        "kind": "Activity Type",
                        "occurred_at": "Activity Date",
                        "source_system": "Source",
                        "external_id": "Activity ID",
                    },
                }
            )
            best = None
            for round_number in range(1, args.rounds + 1):
                seconds, report = timed_import(again_csv, again_mapping, phases=args.phases)
                print(
                    f"  events received before, round {round_number} (load "
                    f"{load_average()}): {seconds:.2f} s ({count / seconds:,.0f} rows/s), "
                    f"{report.duplicates:,} already received"
                )
                best = min(best or seconds, seconds)
            received = (count, best)
    print()
    print(
        f"{'':8} {'rows':>9} {'import rows/s':>14} {'COPY rows/s':>12} {'import/COPY':>12} "
        f"{'target':>8}  verdict"
    )
    for kind, (rows, import_seconds, copy_seconds, all_seconds, report) in results.items():
        import_rate, copy_rate = rows / import_seconds, rows / copy_seconds
        target = TARGETS[kind]
        verdict = "met" if import_rate >= target else f"missed ({import_rate / target:.2f} ×)"
        print(
            f"{kind:8} {rows:>9,} {import_rate:>14,.0f} {copy_rate:>12,.0f} "
            f"{import_rate / copy_rate:>12.2f} {target:>8,}  {verdict}"
        )
        if all_seconds is not None:
            print(
                f"{'':8} COPY of every row the import writes (leads, history, score states): "
                f"{rows / all_seconds:,.0f} leads/s; the import runs at "
                f"{all_seconds / import_seconds:.2f} × that"
            )
        extra = []
        if report.transitions:
            extra.append(f"{report.transitions:,} stage history rows")
        if report.rescore_leads:
            extra.append(f"{report.rescore_leads:,} leads marked for rescoring")
        if report.created_refs:
            extra.append(", ".join(f"{n:,} {k} created" for k, n in report.created_refs.items()))
        if extra:
            print(f"{'':8} (the import also wrote {'; '.join(extra)})")
    if received is not None:
        print(
            f"Re-import of {received[0]:,} events received before (nothing written): "
            f"{received[0] / received[1]:,.0f} rows/s"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"Peak memory of this process: {peak:.0f} MB (the generated rows for the COPYs included)."
    )
    print(f"Leads in the database afterwards: {Lead.objects.count():,} (rolled back: unchanged)")
    print(f"Load average (1 min) at the end: {load_average()}")
    if not args.no_vacuum:
        # Rolled-back rows stay behind as dead tuples (and index entries) until vacuumed; the
        # next benchmark (ours or another) would pay for them.
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(
                "VACUUM (ANALYZE) leads_engagementevent, leads_lead, leads_stagetransition, "
                "scoring_leadscorestate"
            )
        print(f"VACUUM of the tables written: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
