"""``manage.py seed_demo``: load the deterministic twelve-month demo data set."""

import argparse
import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser

from leads.demo.generator import DEMO_USERNAMES
from leads.demo.hooks import demo_reset, demo_seeded
from leads.demo.loader import (
    DemoDataError,
    SeedReport,
    TableLoad,
    demo_bulk_models,
    demo_data_present,
    demo_data_seed,
    model_for,
)
from leads.services import leads_score_all_now
from revops.maintenance import after_bulk_write, tables_tidy

PROGRESS_EVERY_SECONDS = 2.0


def _as_of(value: str) -> datetime:
    try:
        day = datetime.strptime(value, "%Y-%m-%d")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"use a date like 2026-03-01, not {value!r}") from exc
    return day.replace(tzinfo=UTC)


def _non_negative(kind):
    def parse(value: str):
        number = kind(value)
        if number < 0:
            raise ValueError(value)
        return number

    parse.__name__ = f"non-negative {kind.__name__}"
    return parse


class Command(BaseCommand):
    help = (
        "Load a deterministic demo data set: users, sources, campaigns, accounts, leads, "
        "engagement events, stage history, handoffs and opportunities over the 12 months "
        "before --as-of. The same --seed and --as-of always give the same data."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--no-score",
            action="store_true",
            help="Skip scoring the leads with the scoring engine after loading.",
        )
        parser.add_argument(
            "--leads", type=_non_negative(int), default=5000, help="Leads (default 5000)."
        )
        parser.add_argument(
            "--events-per-lead",
            type=_non_negative(float),
            default=8,
            help="Average engagement events per lead (default 8).",
        )
        parser.add_argument(
            "--as-of",
            type=_as_of,
            default=None,
            help="YYYY-MM-DD: the data ends at the start of this UTC day (default: today).",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete existing facts (leads, events, accounts, sources…) and the demo users "
            "first. Definitions are kept.",
        )
        parser.add_argument(
            "--if-empty",
            action="store_true",
            help="Do nothing (successfully) when the database already has leads or other facts.",
        )

    def handle(self, *args, **options) -> None:
        if options["reset"] and options["if_empty"]:
            raise CommandError("--reset and --if-empty contradict each other: pick one.")
        if options["if_empty"]:
            present = demo_data_present()
            if present:
                self.stdout.write(
                    f"Demo data not loaded: the database already has {', '.join(present)}."
                )
                return
        self.verbosity = options["verbosity"]
        self.started = time.monotonic()
        self.last_progress: dict[str, float] = {}
        if options["reset"]:
            # Other apps' demo rows that point at the demo users go first (past meetings).
            demo_reset(usernames=DEMO_USERNAMES)
        try:
            report = demo_data_seed(
                seed=options["seed"],
                leads=options["leads"],
                events_per_lead=options["events_per_lead"],
                as_of=options["as_of"],
                reset=options["reset"],
                progress=self.progress if self.verbosity >= 1 else None,
            )
        except DemoDataError as exc:
            raise CommandError(str(exc)) from exc
        self.summary(report)
        self.maintain(report)
        if not options["no_score"]:
            self.score_leads()
        # Other apps' demo rows (metrics: goals and past meetings), on the scored data.
        for line in demo_seeded(as_of=report.plan.as_of):
            self.stdout.write(line)
        self.tidy()

    def tidy(self) -> None:
        # Scoring and the rollups filled tables the load did not maintain (the score states,
        # the trigger-kept and rolled-up tables): with autovacuum off their statistics would
        # stay those of the empty tables, and the first pages would plan as if they were.
        started = time.monotonic()
        done = tables_tidy()
        if (done["vacuumed"] or done["analyzed"]) and self.verbosity >= 1:
            self.stdout.write(
                f"Tidied {len(done['vacuumed'])} tables (VACUUM, ANALYZE) and "
                f"{len(done['analyzed'])} more (ANALYZE) in {time.monotonic() - started:.1f} s."
            )

    def maintain(self, report: SeedReport) -> None:
        started = time.monotonic()
        rows = sum(load.rows for load in report.tables.values())
        command = after_bulk_write(demo_bulk_models(), rows)
        if command and self.verbosity >= 1:
            self.stdout.write(
                f"{command} of the loaded tables: {time.monotonic() - started:.1f} s."
            )

    def score_leads(self) -> None:
        # The generator's scores are a sketch; the engine's are the truth every page shows.
        started = time.monotonic()
        scored = leads_score_all_now(note="seed_demo")
        if scored is None:
            self.stdout.write("No scoring app is installed: the leads keep the generator's tiers.")
            return
        self.stdout.write(
            f"Scored {scored:,} leads with the scoring engine "
            f"in {time.monotonic() - started:.1f} s."
        )

    def progress(self, load: TableLoad) -> None:
        now = time.monotonic()
        if (
            self.verbosity < 2
            and now - self.last_progress.get(load.key, self.started) < PROGRESS_EVERY_SECONDS
        ):
            return
        self.last_progress[load.key] = now
        self.stdout.write(
            f"  … {load.key:<13} {load.rows:>12,} rows  {load.rows_per_second:>10,.0f} rows/s"
        )

    def summary(self, report: SeedReport) -> None:
        plan = report.plan
        if report.deleted:
            deleted = ", ".join(f"{count:,} {key}" for key, count in report.deleted.items())
            self.stdout.write(f"Reset: deleted {deleted} ({report.reset_seconds:.1f} s).")
        self.stdout.write(
            f"Demo data set: seed {plan.seed}, {plan.leads:,} leads, "
            f"{plan.events_per_lead:g} events per lead on average, the 12 months before "
            f"{plan.as_of:%Y-%m-%d} (UTC)."
        )
        if report.activities:
            self.stdout.write(f"Sales activities on the answered handoffs: {report.activities:,}.")
        self.stdout.write(f"  {'table':<22} {'rows':>12} {'write s':>9} {'rows/s':>11}")
        total_rows = 0
        for load in report.tables.values():
            total_rows += load.rows
            name = model_for(load.key)._meta.db_table
            self.stdout.write(
                f"  {name:<22} {load.rows:>12,} {load.seconds:>9.2f} {load.rows_per_second:>11,.0f}"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Loaded {total_rows:,} rows in {report.total_seconds:.1f} s "
                f"({total_rows / max(report.total_seconds, 1e-9):,.0f} rows/s overall, "
                "generation included)."
            )
        )
