"""Running an import: the file streams through the pure row parser in chunks, references are
resolved in bulk (a few queries per chunk), and rows are written through the set-based write
layer (``leads.services.facts``, COPY on PostgreSQL, bulk INSERTs elsewhere) — in one
transaction, so a rejected import writes nothing. The import itself parses, maps, validates and
reports; every fact is written as the API and the admin write it.

Per kind, a handler turns parsed rows into writes:

* accounts — matched by external id, then domain, then name; updated or created;
* leads — matched by external id, then e-mail; created with the stage history their stage
  implies (``history.py``), or updated (a stage change writes the moves it implies);
* events — linked to their lead by its external id or e-mail; already-received events (same
  source system and external id) are counted, never duplicated; stage triggers apply;
* opportunities — linked to leads and accounts; their lead reaches Opportunity at the creation
  and Customer / Closed lost at the close;
* sales reps — users matched like owners, written with their territory, tiers, capacity and
  manager (their team) by ``leads.services.team.sales_reps_upsert``.

The write layer announces the leads whose facts changed (scoring marks them for a rescore in
the same transaction). Every problem is a ``RowError`` naming the row and the field.
"""

from __future__ import annotations

import gc
import logging
import pickle
import re
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from itertools import compress, repeat
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.utils import timezone

from leads.choices import (
    ActorType,
    OpportunityStage,
    OpportunityStatus,
    Seniority,
    SourceOrigin,
)
from leads.imports import csvfile, history
from leads.imports.countries import REGION_OF
from leads.imports.history import HistoryProblem
from leads.imports.mapping import (
    ACCOUNTS,
    EVENTS,
    LEADS,
    OPPORTUNITIES,
    SALES_REPS,
    FieldProblem,
    Mapping,
    MappingContext,
    MappingError,
    ParsedColumns,
    RowError,
    compile_mapping,
    dates_note,
    norm,
)
from leads.models import Account, Campaign, Lead, Opportunity, SalesRep, Source
from leads.selectors import lifecycle_at
from leads.services import facts, team
from leads.services.bulk import Writer, constraints_per_statement, rows_matching, writer_for

logger = logging.getLogger(__name__)

CHUNK_ROWS = 5_000
# Writing a file again after PostgreSQL broke a deadlock by rolling the import back.
DEADLOCK_ATTEMPTS = 3
DEADLOCK = "40P01"
MAX_STORED_ERRORS = 20_000
PREVIEW_ROWS = 20
DEFAULT_SOURCE_SYSTEM = "import"

COMMITTED, REJECTED, DRY_RUN, FAILED = "committed", "rejected", "dry_run", "failed"

Progress = Callable[[float, int], None]  # (fraction of the file read, rows read)


@dataclass
class ImportReport:
    """What an import did or would do; stored on the job as JSON."""

    kind: str
    file_name: str = ""
    deadlocked: bool = False  # the write was rolled back to break a deadlock (it is retried)
    encoding: str = ""
    encoding_note: str = ""
    delimiter: str = ""
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    duplicates: int = 0  # events received before (re-imports are idempotent)
    skipped: int = 0  # invalid rows left out (skip-invalid)
    error_rows: int = 0  # rows with at least one problem
    error_count: int = 0  # every problem found, stored or not
    errors: list[RowError] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the file or mapping is unusable
    notes: list[str] = field(default_factory=list)  # how values were read (dates, defaults)
    status: str = ""
    created_refs: dict[str, int] = field(default_factory=dict)
    transitions: int = 0
    rescore_leads: int = 0
    seconds: float = 0.0
    preview: list[dict] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # about the file (a repeated header name)
    dry_run: bool = False

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0

    @property
    def errors_not_stored(self) -> int:
        return max(0, self.error_count - len(self.errors))

    @property
    def summary(self) -> str:
        if self.problems:
            return " ".join(self.problems)[:490]
        counts = (
            f"{self.rows:,} rows: {self.created:,} created, {self.updated:,} updated, "
            f"{self.unchanged:,} unchanged"
        )
        if self.duplicates:
            counts += f", {self.duplicates:,} already received"
        if self.status == REJECTED:
            return (
                f"{'Would be rejected' if self.dry_run else 'Rejected, nothing imported'}: "
                f"{self.error_rows:,} of {self.rows:,} rows have problems. Fix them, or import "
                "with “skip invalid rows”."
            )
        if self.skipped:
            counts += f", {self.skipped:,} invalid row{'' if self.skipped == 1 else 's'} skipped"
        prefix = "Dry run, nothing written: " if self.dry_run else ""
        return prefix + counts + "."

    def as_dict(self) -> dict:
        return {
            "kind": self.kind,
            "file_name": self.file_name,
            "encoding": self.encoding,
            "encoding_note": self.encoding_note,
            "delimiter": self.delimiter,
            "rows": self.rows,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "duplicates": self.duplicates,
            "skipped": self.skipped,
            "error_rows": self.error_rows,
            "error_count": self.error_count,
            "errors": [error.as_dict() for error in self.errors],
            "errors_not_stored": self.errors_not_stored,
            "problems": self.problems,
            "notes": self.notes,
            "status": self.status,
            "dry_run": self.dry_run,
            "created_refs": self.created_refs,
            "transitions": self.transitions,
            "rescore_leads": self.rescore_leads,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second),
            "summary": self.summary,
            "preview": self.preview,
            "header": self.header,
            "warnings": self.warnings,
        }


def mapping_context() -> MappingContext:
    return MappingContext(lifecycle=lifecycle_at(), default_time_zone=settings.DISPLAY_TIME_ZONE)


# --- The run ----------------------------------------------------------------------------------


class ImportRun:
    """State shared by one import's handler: options, caches, the writer, the report."""

    def __init__(
        self,
        *,
        report: ImportReport,
        mapping: Mapping,
        context: MappingContext,
        writer: Writer,
        skip_invalid: bool,
        actor_id: int | None,
        label: str,
        preview: bool,
        validate_only: bool = False,
    ) -> None:
        self.report = report
        self.validate_only = validate_only
        self.mapping = mapping
        self.options = mapping.options
        self.lifecycle = context.lifecycle
        self.stage_names = {s.key: s.name for s in context.lifecycle.stages}
        self.writer = writer
        self.skip_invalid = skip_invalid
        self.actor_id = actor_id
        self.reason = f"Imported from {label}"[:300] if label else "Imported"
        self.now = timezone.now()
        self.preview_actions: dict[int, str] | None = {} if preview else None
        self.columns = {name: spec.source_label for name, spec in mapping.fields}
        self._error_rows: set[int] = set()
        self.announced: set[int] = set()  # leads the write layer announced (to be rescored)
        self.owner_ids: set[int] = set()  # every owner the rows name (to become reps)
        self.refs = Refs(self)
        # (fraction of the writing done) for handlers that write after reading everything.
        self.write_progress: Callable[[float], None] = lambda fraction: None

    @property
    def writing(self) -> bool:
        """All or nothing: after the first invalid row, keep validating but stop writing (and
        write nothing at all in the checking pass that precedes an all-or-nothing import)."""
        if self.validate_only:
            return False
        return self.skip_invalid or self.report.error_rows == 0

    def add_errors(self, errors: Iterable[RowError]) -> None:
        report = self.report
        for error in errors:
            report.error_count += 1
            if error.row not in self._error_rows:
                self._error_rows.add(error.row)
                report.error_rows += 1
            if len(report.errors) < MAX_STORED_ERRORS:
                report.errors.append(error)

    def error(self, row: int, field_name: str, message: str, value: Any = "") -> None:
        column = self.columns.get(field_name, "")
        if isinstance(value, datetime):
            value = f"{value:%Y-%m-%d %H:%M}"
        shown = "" if value is None else str(value)[:80]
        self.add_errors([RowError(row, field_name, column, shown, message)])

    def is_invalid(self, row: int) -> bool:
        return row in self._error_rows

    def end_chunk(self) -> None:
        self._error_rows.clear()

    def note(self, row: int, action: str) -> None:
        if self.preview_actions is not None:
            self.preview_actions[row] = action

    def count_ref(self, kind: str) -> None:
        self.report.created_refs[kind] = self.report.created_refs.get(kind, 0) + 1

    def move(self, lead_id: int, to_stage: str, at: datetime, reason: str = "") -> facts.StageMove:
        return facts.StageMove(lead_id=lead_id, to_stage=to_stage, at=at,
                               actor_type=IMPORT_ACTOR, actor_id=self.actor_id,
                               reason=reason or self.reason)  # fmt: skip


IMPORT_ACTOR = ActorType.IMPORT.value
UNKNOWN_SENIORITY = Seniority.UNKNOWN.value


# --- References: sources, campaigns, owners, accounts ----------------------------------------


class Refs:
    """Sources, campaigns and users are few: read once. Accounts are resolved per chunk by
    external id and domain (indexed), and by name from a map read on first use."""

    def __init__(self, run: ImportRun) -> None:
        self.run = run
        self._sources: dict[str, int] | None = None
        self._campaigns: dict[tuple[int, str], int] | None = None
        self._campaigns_by_name: dict[str, list[int]] = {}
        self._users: dict[str, dict[str, list[int]]] | None = None
        self._account_names: dict[str, int] | None = None
        self.account_by_ext: dict[str, int] = {}
        self.account_by_domain: dict[str, int] = {}
        self._usernames: set[str] = set()

    # sources and campaigns

    def source(self, name: str) -> int | None:
        if self._sources is None:
            self.run.writer.flush()  # no statement while a COPY is in flight
            self._sources = {}
            for source_id, source_name in Source.objects.order_by("pk").values_list("pk", "name"):
                self._sources.setdefault(source_name.lower(), source_id)
        return self._sources.get(name.lower())

    def source_create(self, name: str) -> int:
        found = self.source(name)
        if found is not None:
            return found
        self.run.writer.flush()
        source = Source.objects.create(
            name=name,
            channel_group=self.run.options.channel_group(name),
            origin=SourceOrigin.MARKETING,
        )
        self._sources[name.lower()] = source.pk
        self.run.count_ref("sources")
        return source.pk

    def _load_campaigns(self) -> None:
        if self._campaigns is None:
            self.run.writer.flush()
            self._campaigns = {}
            for pk, name, source_id in Campaign.objects.values_list("pk", "name", "source_id"):
                self._campaigns[(source_id, name.lower())] = pk
                self._campaigns_by_name.setdefault(name.lower(), []).append(pk)

    def campaign(self, name: str, source_id: int | None) -> int | None:
        """The campaign of that name (within the source when given); raises when the name is
        ambiguous without a source."""
        self._load_campaigns()
        if source_id is not None:
            return self._campaigns.get((source_id, name.lower()))
        found = self._campaigns_by_name.get(name.lower(), [])
        if len(found) > 1:
            raise FieldProblem("names campaigns of several sources; map the source as well")
        return found[0] if found else None

    def campaign_create(self, name: str, source_id: int) -> int:
        found = self.campaign(name, source_id)
        if found is not None:
            return found
        self.run.writer.flush()
        campaign = Campaign.objects.create(name=name, source_id=source_id)
        self._campaigns[(source_id, name.lower())] = campaign.pk
        self._campaigns_by_name.setdefault(name.lower(), []).append(campaign.pk)
        self.run.count_ref("campaigns")
        return campaign.pk

    # owners

    def _load_users(self) -> dict[str, dict[str, list[int]]]:
        if self._users is None:
            self.run.writer.flush()
            users = {"username": defaultdict(list), "email": defaultdict(list),
                     "name": defaultdict(list)}  # fmt: skip
            fields = ("pk", "username", "email", "first_name", "last_name")
            for pk, username, email, first, last in get_user_model().objects.values_list(*fields):
                users["username"][username.lower()].append(pk)
                self._usernames.add(username.lower())
                if email:
                    users["email"][email.lower()].append(pk)
                full = f"{first} {last}".strip().lower()
                if full:
                    users["name"][" ".join(full.split())].append(pk)
            self._users = users
        return self._users

    def owner(self, value: str) -> int | None:
        """The user a name, e-mail or username (an external id) means; None when nobody."""
        users = self._load_users()
        key = " ".join(value.lower().split())
        for kind in ("email", "username", "name") if "@" in key else ("username", "name"):
            found = users[kind].get(key, [])
            if len(found) > 1:
                raise FieldProblem(f"matches {len(found)} users by {kind}; use a username")
            if found:
                return found[0]
        return None

    def owner_create(self, value: str, *, name: str = "", counted_as: str = "owners") -> int:
        """An inactive user for an owner the database does not know (e.g. a former rep);
        ``name`` is the full name of one known by e-mail."""
        found = self.owner(value)
        if found is not None:
            return found
        text = " ".join(value.split())
        email = text.lower() if "@" in text else ""
        if email:
            base = email
            first, _, last = " ".join(name.split()).partition(" ")
        else:
            first, _, last = text.partition(" ")
            base = re.sub(r"[^a-z0-9@.+_-]+", ".", text.lower()).strip(".") or "owner"
        base = base[:140]
        username, suffix = base, 1
        while username in self._usernames:
            suffix += 1
            username = f"{base}.{suffix}"
        user = get_user_model()(
            username=username,
            email=email,
            first_name=first[:150],
            last_name=last[:150],
            is_active=False,
        )
        user.set_unusable_password()
        self.run.writer.flush()
        user.save()
        self._usernames.add(username)
        users = self._users
        users["username"][username].append(user.pk)
        if email:
            users["email"][email].append(user.pk)
        full = f"{first} {last}".strip().lower()
        if full:
            users["name"][full].append(user.pk)
        self.run.count_ref(counted_as)
        return user.pk

    # accounts

    def account_names(self) -> dict[str, int]:
        if self._account_names is None:
            self.run.writer.flush()
            self._account_names = {}
            for pk, name in Account.objects.order_by("pk").values_list("pk", "name"):
                self._account_names.setdefault(name.lower(), pk)
        return self._account_names

    def load_accounts(self, *, external_ids: set[str], domains: set[str]) -> None:
        """Fill the external id and domain caches for a chunk (two indexed queries)."""
        self.run.writer.flush()
        external_ids -= self.account_by_ext.keys()
        domains -= self.account_by_domain.keys()
        for row in rows_matching(Account, "external_id", external_ids, ["external_id", "pk"]):
            self.account_by_ext[row["external_id"]] = row["pk"]
        for row in rows_matching(Account, "domain", domains, ["domain", "pk"]):
            self.account_by_domain[row["domain"]] = row["pk"]

    def account(self, values: dict) -> int | None:
        """The account a row names: by external id, else domain, else name."""
        ext = values.get("account_external_id")
        if ext is not None and ext in self.account_by_ext:
            return self.account_by_ext[ext]
        domain = values.get("account_domain")
        if domain is not None and domain in self.account_by_domain:
            return self.account_by_domain[domain]
        name = values.get("account_name")
        if name is not None:
            return self.account_names().get(name.lower())
        return None

    def accounts_create(self, rows: list[dict]) -> None:
        """Create the accounts these rows name and the database lacks (one bulk write)."""
        new: dict[str, facts.NewAccount] = {}
        for values in rows:
            if self.account(values) is not None:
                continue
            domain = values.get("account_domain", "")
            name = values.get("account_name") or domain
            key = domain or name.lower()
            if key and key not in new:
                new[key] = facts.NewAccount(
                    name=name, domain=domain, external_id=values.get("account_external_id", "")
                )
        if not new:
            return
        created = facts.accounts_upsert(new=list(new.values()), writer=self.run.writer)
        for account, pk in zip(new.values(), created.created_ids, strict=True):
            if account.domain:
                self.account_by_domain[account.domain] = pk
            if account.external_id:
                self.account_by_ext[account.external_id] = pk
            self.account_names().setdefault(account.name.lower(), pk)
        self.run.report.created_refs["accounts"] = self.run.report.created_refs.get(
            "accounts", 0
        ) + len(created.created_ids)


def _account_keys(rows: list[tuple[int, dict]]) -> tuple[set[str], set[str]]:
    exts = {v["account_external_id"] for _, v in rows if "account_external_id" in v}
    domains = {v["account_domain"] for _, v in rows if "account_domain" in v}
    return exts, domains


ACCOUNT_FOUND = "_account_id"  # a row's account, once resolved (None: missing)


ACCOUNT_KEYS = ("account_external_id", "account_domain", "account_name")  # tried in this order


def _names_account(values: dict) -> bool:
    return any(key in values for key in ACCOUNT_KEYS)


class _RefResolver:
    """Resolves a row's source, campaign, owner and account: checks first (no writes), then,
    for rows still valid, creates what is missing and is allowed to be created."""

    def __init__(self, run: ImportRun, kind: str) -> None:
        self.run = run
        self.kind = kind
        self.options = run.options

    def check(self, row: int, values: dict) -> None:
        run, refs, options = self.run, self.run.refs, self.options
        source = values.get("source")
        if source is not None and refs.source(source) is None and not options.create_sources:
            run.error(row, "source", "is not a known source (creating sources is off)", source)
        campaign = values.get("campaign")
        if campaign is not None:
            source_id = refs.source(source) if source is not None else None
            try:
                found = (
                    None if (source and source_id is None) else refs.campaign(campaign, source_id)
                )
            except FieldProblem as problem:
                run.error(row, "campaign", str(problem), campaign)
                found = -1
            if found is None:
                if not options.create_campaigns:
                    run.error(
                        row, "campaign", "is not a known campaign (creating is off)", campaign
                    )
                elif source is None:
                    run.error(row, "campaign", "is new and needs a source to be created", campaign)
        owner = values.get("owner")
        if owner is not None:
            try:
                found = refs.owner(owner)
            except FieldProblem as problem:
                run.error(row, "owner", str(problem), owner)
            else:
                if found is None and not options.create_owners:
                    run.error(
                        row,
                        "owner",
                        "is not a user's username, e-mail or name (allow creating owners to "
                        "add them as inactive users)",
                        owner,
                    )
        names_account = _names_account(values)
        if names_account:
            values[ACCOUNT_FOUND] = refs.account(values)  # resolved once per row
        if names_account and values[ACCOUNT_FOUND] is None:
            field_name = next(key for key in ACCOUNT_KEYS if key in values)
            if not options.creates_accounts(self.kind):
                run.error(row, field_name, "is not a known account (creating is off)",
                          values[field_name])  # fmt: skip
            elif (
                field_name == "account_external_id"
                and len([key for key in ACCOUNT_KEYS if key in values]) == 1
            ):
                run.error(row, field_name,
                          "is not a known account; map its name or domain to create it",
                          values[field_name])  # fmt: skip

    def create_missing(self, rows: list[tuple[int, dict]]) -> None:
        refs = self.run.refs
        for _, values in rows:
            source = values.get("source")
            if source is not None:
                refs.source_create(source)
            campaign = values.get("campaign")
            if campaign is not None and source is not None:
                refs.campaign_create(campaign, refs.source(source))
            owner = values.get("owner")
            if owner is not None:
                refs.owner_create(owner)
        refs.accounts_create(
            [v for _, v in rows if ACCOUNT_FOUND in v and v[ACCOUNT_FOUND] is None]
        )

    def ids(self, values: dict) -> dict[str, int | None]:
        refs = self.run.refs
        out: dict[str, int | None] = {}
        if "source" in values:
            out["source"] = refs.source(values["source"])
        if "campaign" in values:
            source_id = out.get("source")
            out["campaign"] = refs.campaign(values["campaign"], source_id)
        if "owner" in values:
            out["owner"] = refs.owner(values["owner"])
            if out["owner"] is not None:
                self.run.owner_ids.add(out["owner"])
        if ACCOUNT_FOUND in values:
            out["account"] = values[ACCOUNT_FOUND] or refs.account(values)  # else created since
        return out


# --- Handlers ---------------------------------------------------------------------------------


class KindImport:
    kind = ""
    # Checks every row while staging what it will write (no id taken, nothing written before
    # the last row is checked), so all or nothing reads the file once instead of twice.
    single_pass = False

    def __init__(self, run: ImportRun) -> None:
        self.run = run

    def process(self, rows: list[tuple[int, dict]]) -> None:
        raise NotImplementedError

    def process_parsed(self, chunk: ParsedColumns) -> None:
        """A chunk of valid rows parsed column by column; a handler that can work on the
        columns overrides this, the others take the rows as ``process`` does."""
        self.process(list(zip(chunk.numbers, chunk.rows(), strict=True)))

    def finish(self) -> None:
        pass

    def in_file_duplicates(
        self, rows: list[tuple[int, dict]], keys: list[tuple[str, dict]]
    ) -> list[tuple[int, dict]]:
        """Rows whose key (e.g. e-mail) appeared on an earlier row are errors; ``keys`` are
        ``(field, seen-so-far)`` pairs kept across chunks."""
        kept = []
        for row, values in rows:
            duplicate = False
            for field_name, seen in keys:
                key = values.get(field_name)
                if key is None:
                    continue
                if isinstance(key, str):
                    key = key.lower()
                first = seen.setdefault(key, row)
                if first != row:
                    shown_field, shown = field_name, key
                    if isinstance(key, tuple):  # (what, value): reported on that field
                        shown_field = key[0].replace(" ", "_")
                        shown = key[1]
                    self.run.error(
                        row, shown_field, f"appears twice in the file (first on row {first})", shown
                    )
                    duplicate = True
            if not duplicate:
                kept.append((row, values))
        return kept


def _group_updates(updates: list[tuple[int, dict]]) -> dict[tuple[str, ...], list[tuple]]:
    grouped: dict[tuple[str, ...], list[tuple]] = defaultdict(list)
    for pk, changes in updates:
        names = tuple(sorted(changes))
        grouped[names].append((pk, *(changes[name] for name in names)))
    return grouped


# accounts ---------------------------------------------------------------------------------------

ACCOUNT_FIELDS = ["name", "domain", "industry", "employees", "annual_revenue", "country",
                  "region", "technologies", "signals", "external_id"]  # fmt: skip
ACCOUNT_DEFAULTS = {"domain": "", "industry": "", "employees": None, "annual_revenue": None,
                    "country": "", "region": "", "technologies": [], "signals": [],
                    "external_id": ""}  # fmt: skip


class AccountImport(KindImport):
    kind = ACCOUNTS

    def __init__(self, run: ImportRun) -> None:
        super().__init__(run)
        self.seen: dict = {}

    def process(self, rows):
        run, refs = self.run, self.run.refs
        for _, values in rows:
            # The key a row is matched by: its external id, else its domain, else its name.
            if "external_id" in values:
                values["match_key"] = ("external id", values["external_id"])
            elif "domain" in values:
                values["match_key"] = ("domain", values["domain"])
            else:
                values["match_key"] = ("name", values["name"].lower())
        rows = self.in_file_duplicates(rows, [("match_key", self.seen)])
        run.writer.flush()
        refs.load_accounts(
            external_ids={v["external_id"] for _, v in rows if "external_id" in v},
            domains={v["domain"] for _, v in rows if "domain" in v},
        )
        matches = {}
        for row, values in rows:
            by_ext = refs.account_by_ext.get(values.get("external_id", ""))
            by_domain = refs.account_by_domain.get(values.get("domain", ""))
            if by_ext and by_domain and by_ext != by_domain:
                run.error(
                    row,
                    "domain",
                    f"belongs to account #{by_domain}, but the external id is account #{by_ext}",
                    values["domain"],
                )
                continue
            match = by_ext or by_domain
            if match is None and "external_id" not in values and "domain" not in values:
                match = refs.account_names().get(values["name"].lower())
            if match is not None and not run.options.update_existing:
                run.error(row, "name", f"exists already (account #{match}); updating is off")
                continue
            matches[row] = match
        current = {
            a["pk"]: a
            for a in Account.objects.filter(pk__in={m for m in matches.values() if m}).values(
                "pk", *ACCOUNT_FIELDS, "created_at"
            )
        }
        new_rows, updates = [], []
        for row, values in rows:
            if run.is_invalid(row):
                continue
            values = dict(values)
            if "country" in values and "region" not in values and values["country"] in REGION_OF:
                values["region_derived"] = REGION_OF[values["country"]]
            match = matches.get(row)
            if match is None:
                region = values.get("region", values.get("region_derived", ""))
                record = {**ACCOUNT_DEFAULTS, **values, "region": region}
                new_rows.append(
                    facts.NewAccount(
                        **{name: record[name] for name in ACCOUNT_FIELDS},
                        created_at=values.get("created_at", run.now),
                    )
                )
                run.note(row, "create")
                continue
            existing = current[match]
            changes = {
                name: values[name]
                for name in [*ACCOUNT_FIELDS, "created_at"]
                if name in values and values[name] != existing[name]
            }
            if "region_derived" in values and not existing["region"] and "region" not in changes:
                changes["region"] = values["region_derived"]
            if changes:
                updates.append(facts.AccountChange(account_id=match, fields=changes))
                run.note(row, f"update account #{match}")
            else:
                run.note(row, f"unchanged account #{match}")
        run.report.created += len(new_rows)
        run.report.updated += len(updates)
        run.report.unchanged += sum(1 for m in matches.values() if m) - len(updates)
        if not run.writing:
            return
        # A changed account changes its leads' fit: the layer announces them.
        written = facts.accounts_upsert(new=new_rows, changed=updates, writer=run.writer)
        run.announced.update(written.lead_ids)


# leads ------------------------------------------------------------------------------------------

LEAD_CURRENT = ["pk", "first_name", "last_name", "email", "phone", "title", "seniority",
                "country", "account_id", "source_id", "campaign_id", "owner_id", "stage",
                "stage_entered_at", "in_marketing_nurture", "external_id",
                "created_at"]  # fmt: skip
LEAD_PLAIN = ("first_name", "last_name", "email", "phone", "title", "seniority", "country",
              "external_id", "created_at", "in_marketing_nurture")  # fmt: skip


def _split_name(values: dict) -> None:
    name = values.pop("name", None)
    if name and "first_name" not in values and "last_name" not in values:
        first, _, last = name.strip().rpartition(" ") if " " in name.strip() else (name, "", "")
        values["first_name"], values["last_name"] = first[:80], last[:80]


class CheckedChunks:
    """Chunks of checked rows kept for writing once the whole file is checked: pickled to a
    temporary file, so a file of millions of rows does not sit in memory."""

    def __init__(self) -> None:
        self.file = tempfile.TemporaryFile()  # noqa: SIM115 (read back in finish, then closed)
        self.count = 0

    def add(self, chunk: list) -> None:
        if chunk:
            pickle.dump(chunk, self.file, protocol=pickle.HIGHEST_PROTOCOL)
            self.count += 1

    def __iter__(self) -> Iterator[list]:
        self.file.seek(0)
        for _ in range(self.count):
            yield pickle.load(self.file)  # our own file, written just before

    def close(self) -> None:
        self.file.close()


class LeadImport(KindImport):
    """Reads the file once: each chunk is checked (matches, references, stage paths) with
    nothing written, and kept (``CheckedChunks``); once every row is checked, the chunks are
    written in order. A rejected file writes nothing and takes no ids, as when it was read
    twice, and the checks run in the writing transaction."""

    kind = LEADS
    single_pass = True

    def __init__(self, run: ImportRun) -> None:
        super().__init__(run)
        self.checked = CheckedChunks()
        self.new_leads = 0  # among the checked rows
        self.seen_ext: dict = {}
        self.seen_email: dict = {}
        self.refs = _RefResolver(run, LEADS)
        self.dated_fields = {f"{s.key}_at": s.key for s in run.lifecycle.stages}

    def _existing(self, rows) -> tuple[dict, dict]:
        exts = [v["external_id"] for _, v in rows if "external_id" in v]
        emails = [v["email"] for _, v in rows if "email" in v]
        by_ext = {lead["external_id"]: lead
                  for lead in rows_matching(Lead, "external_id", exts, LEAD_CURRENT)}  # fmt: skip
        by_email = {lead["email"]: lead
                    for lead in rows_matching(Lead, "email", emails, LEAD_CURRENT)}  # fmt: skip
        return by_ext, by_email

    def _dates(self, values: dict) -> dict[str, datetime]:
        return {key: values[name] for name, key in self.dated_fields.items() if name in values}

    def process(self, rows):
        run = self.run
        keys = [("external_id", self.seen_ext), ("email", self.seen_email)]
        rows = self.in_file_duplicates(rows, keys)
        run.writer.flush()
        by_ext, by_email = self._existing(rows)
        account_exts, account_domains = _account_keys(rows)
        run.refs.load_accounts(external_ids=account_exts, domains=account_domains)
        plans = []  # (row, values, current lead or None, timed steps)
        for row, values in rows:
            _split_name(values)
            current = self._match(row, values, by_ext, by_email)
            if run.is_invalid(row):
                continue
            self.refs.check(row, values)
            try:
                steps = self._steps(values, current)
            except HistoryProblem as problem:
                run.error(row, problem.field, str(problem), values.get(problem.field, ""))
                continue
            if not run.is_invalid(row):
                plans.append((row, values, current, steps))
        if run.writing:
            self.checked.add(plans)  # written in finish(), once every row is checked
            self.new_leads += sum(1 for plan in plans if plan[2] is None)
        else:
            self._count(plans)

    def finish(self) -> None:
        run = self.run
        if run.writing:
            # One statement for every new lead's id: chunks are then built while the last
            # one's COPYs run, with no statement between them (references created on the way
            # flush the writer first: Refs).
            run.writer.reserve_ids(Lead, self.new_leads)
        for number, plans in enumerate(self.checked, start=1):
            if run.writing:
                self._write(plans)
                run.write_progress(number / self.checked.count)
            else:  # a later row was bad: nothing is written; count what would have been
                self._count(plans)
        self.checked.close()

    def _write(self, plans) -> None:
        run = self.run
        self.refs.create_missing([(row, values) for row, values, _, _ in plans])
        new, changed, current_stages = [], [], {}
        for row, values, current, steps in plans:
            ids = self.refs.ids(values)
            if current is None:
                new.append(self._new_lead(values, ids, steps))
                run.note(row, "create")
                continue
            change = self._change(values, ids, current, steps)
            if change is not None:
                changed.append(change)
                current_stages[current["pk"]] = facts.LeadStage(
                    stage=current["stage"],
                    entered_at=current["stage_entered_at"],
                    in_nurture=current["in_marketing_nurture"],
                )
                run.note(row, f"update lead #{current['pk']}")
            else:
                run.note(row, f"unchanged lead #{current['pk']}")
        run.report.created += len(new)
        run.report.updated += len(changed)
        run.report.unchanged += sum(1 for p in plans if p[2] is not None) - len(changed)
        written = facts.leads_upsert(
            new=new, changed=changed, lifecycle=run.lifecycle, current=current_stages,
            writer=run.writer,
        )  # fmt: skip
        run.report.transitions += written.transitions
        run.announced.update(written.lead_ids)

    def _count(self, plans) -> None:
        """Counts while validating only (all or nothing, after a bad row): what would happen."""
        for row, _, current, _ in plans:
            if current is None:
                self.run.report.created += 1
                self.run.note(row, "create")
            else:
                self.run.report.updated += 1
                self.run.note(row, f"update lead #{current['pk']}")

    def _match(self, row, values, by_ext, by_email) -> dict | None:
        run = self.run
        ext, email = values.get("external_id"), values.get("email")
        found_ext = by_ext.get(ext) if ext is not None else None
        found_email = by_email.get(email) if email is not None else None
        if found_ext and found_email and found_ext["pk"] != found_email["pk"]:
            run.error(
                row,
                "email",
                f"belongs to lead #{found_email['pk']}, but the external id {ext!r} is lead "
                f"#{found_ext['pk']}",
                email,
            )
            return None
        current = found_ext or found_email
        if current is not None and not run.options.update_existing:
            run.error(row, "external_id" if found_ext else "email",
                      f"exists already (lead #{current['pk']}); updating is off",
                      ext if found_ext else email)  # fmt: skip
            return None
        return current

    def _steps(self, values: dict, current: dict | None) -> list[tuple[str, datetime]]:
        run = self.run
        dates = self._dates(values)
        if current is None:
            created = values.get("created_at", run.now)
            keys = history.creation_path(
                run.lifecycle, values.get("stage", run.lifecycle.first), set(dates)
            )
            return history.timed_steps(keys, start=created, dates=dates, names=run.stage_names)
        target = values.get("stage")
        if target is None or target == current["stage"]:
            return []
        keys = history.move_path(run.lifecycle, current["stage"], target)
        return history.timed_steps(
            keys,
            start=current["stage_entered_at"],
            dates=dates,
            names=run.stage_names,
            start_label=f"lead's entry into {run.stage_names.get(current['stage'], 'its stage')}",
            undated_at=run.now,
        )

    def _new_lead(self, values, ids, steps) -> facts.NewLead:
        run = self.run
        implied = f"Stage implied by the import ({run.reason})"
        return facts.NewLead(
            first_name=values.get("first_name", ""),
            last_name=values.get("last_name", ""),
            email=values.get("email", ""),
            phone=values.get("phone", ""),
            title=values.get("title", ""),
            seniority=values.get("seniority", UNKNOWN_SENIORITY),
            country=values.get("country", ""),
            account_id=ids.get("account"),
            source_id=ids.get("source"),
            campaign_id=ids.get("campaign"),
            owner_id=ids.get("owner"),
            external_id=values.get("external_id", ""),
            created_at=values.get("created_at", run.now),
            in_marketing_nurture=values.get("in_marketing_nurture"),
            path=tuple(
                facts.StageStep(stage=key, at=at, reason=run.reason if index == 0 else implied)
                for index, (key, at) in enumerate(steps)
            ),
            actor_type=IMPORT_ACTOR,
            actor_id=run.actor_id,
        )

    def _change(self, values, ids, current, steps) -> facts.LeadChange | None:
        """The lead's changes (None when the row changes nothing): fields that differ, and the
        stage path to the row's stage. A nurture flag in the file wins over the one the path
        implies."""
        fields = {
            name: values[name]
            for name in LEAD_PLAIN
            if name in values and values[name] != current[name]
        }
        for name, value in ids.items():
            if value != current[f"{name}_id"]:
                fields[name] = value
        if not fields and not steps:
            return None
        if steps and "in_marketing_nurture" in values:
            fields["in_marketing_nurture"] = values["in_marketing_nurture"]
        run = self.run
        return facts.LeadChange(
            lead_id=current["pk"],
            fields=fields,
            path=tuple(facts.StageStep(stage=key, at=at, reason=run.reason) for key, at in steps),
            actor_type=IMPORT_ACTOR,
            actor_id=run.actor_id,
        )


# events -----------------------------------------------------------------------------------------


class LeadKeys:
    """Lead ids by external id and e-mail, read per chunk and kept (misses too)."""

    def __init__(self) -> None:
        self.by_ext: dict[str, int | None] = {}
        self.by_email: dict[str, int | None] = {}

    def load(self, rows) -> None:
        self.load_keys(
            external_ids={v["lead_external_id"] for _, v in rows if "lead_external_id" in v},
            emails={v["lead_email"] for _, v in rows if "lead_email" in v},
        )

    def load_keys(self, *, external_ids: set[str] = frozenset(), emails: set[str] = frozenset()):
        exts = external_ids - self.by_ext.keys()
        emails = emails - self.by_email.keys()
        found = rows_matching(Lead, "external_id", exts, ["external_id", "pk"])
        self.by_ext.update(dict.fromkeys(exts))
        self.by_ext.update((row["external_id"], row["pk"]) for row in found)
        found = rows_matching(Lead, "email", emails, ["email", "pk"])
        self.by_email.update(dict.fromkeys(emails))
        self.by_email.update((row["email"], row["pk"]) for row in found)

    def lead_id(self, run: ImportRun, row: int, values: dict, *, required: bool) -> int | None:
        ext, email = values.get("lead_external_id"), values.get("lead_email")
        found = None
        if ext is not None:
            found = self.by_ext.get(ext)
        if found is None and email is not None:
            found = self.by_email.get(email)
        if found is None and (ext is not None or email is not None):
            if ext is not None:
                also = f" (nor is {email!r} a lead's e-mail)" if email else ""
                run.error(row, "lead_external_id", f"is no lead's external id{also}", ext)
            else:
                run.error(row, "lead_email", "is no lead's e-mail address", email)
        elif found is None and required:
            run.error(row, "lead_external_id", "names no lead")
        return found


class EventImport(KindImport):
    """Events already received (same source system and external id) are counted, never
    stored twice. The file is read once: valid new events are staged (``facts.events_stage``,
    a temporary table on PostgreSQL) and stored together at the end, when every row has been
    checked, in one statement (``facts.events_staged_store``), which then applies the stage
    triggers in the order the events occurred. A rejected file took no event ids."""

    kind = EVENTS
    single_pass = True

    def __init__(self, run: ImportRun) -> None:
        super().__init__(run)
        self.leads = LeadKeys()
        self.seen: dict = {}
        # The kinds that move a lead (e.g. meeting_booked: SAL → SQL), as in the live path.
        self.trigger_kinds = set(run.lifecycle.event_triggers)
        self.triggers: list[facts.EventRow] = []  # staged events of those kinds
        self.lead_ids: set[int] = set()  # leads of the staged events
        self.staged = 0

    def process(self, rows):
        run = self.run
        fresh = []
        for row, values in rows:
            values.setdefault("source_system", DEFAULT_SOURCE_SYSTEM)
            if "external_id" in values:
                key = (values["source_system"], values["external_id"])
                first = self.seen.setdefault(key, row)
                if first != row:
                    run.error(row, "external_id",
                              f"appears twice in the file (first on row {first})",
                              values["external_id"])  # fmt: skip
                    continue
            fresh.append((row, values))
        run.writer.flush()
        self.leads.load(fresh)
        events, rows_of = [], []
        for row, values in fresh:
            lead_id = self.leads.lead_id(run, row, values, required=True)
            if run.is_invalid(row) or lead_id is None:
                continue
            events.append(
                facts.EventRow(
                    lead_id=lead_id,
                    kind=values["kind"],
                    occurred_at=values["occurred_at"],
                    properties=values.get("properties", {}),
                    source_system=values["source_system"],
                    external_id=values.get("external_id", ""),
                    received_at=run.now,
                )
            )
            rows_of.append(row)
        received = facts.events_received((e.source_system, e.external_id) for e in events)
        new = []
        for event, row in zip(events, rows_of, strict=True):
            if event.external_id and (event.source_system, event.external_id) in received:
                run.report.duplicates += 1
                run.note(row, "already received")
            else:
                run.report.created += 1
                run.note(row, "create")
                new.append(event)
        if not run.writing:  # a bad row: nothing will be stored; keep checking
            return
        facts.events_stage(events=new, writer=run.writer)
        self.staged += len(new)
        self.lead_ids.update(e.lead_id for e in new)
        self.triggers += [e for e in new if e.kind in self.trigger_kinds]

    def process_parsed(self, chunk: ParsedColumns) -> None:
        """A chunk of clean rows whose events name their lead by one key, worked column by
        column: a chunk with a repeat, an unknown lead or blanks is processed row by row
        (``process``), which reports each problem."""
        columns, numbers = chunk.columns, chunk.numbers
        key_field = "lead_external_id" if "lead_external_id" in columns else "lead_email"
        if chunk.complete != columns.keys() or (
            "lead_external_id" in columns and "lead_email" in columns
        ):
            return super().process_parsed(chunk)
        run, count = self.run, len(numbers)
        systems = columns.get("source_system") or [DEFAULT_SOURCE_SYSTEM] * count
        external_ids = columns.get("external_id")
        keys = None
        if external_ids is not None:
            keys = list(zip(systems, external_ids, strict=True))
            if len(set(keys)) != count or not self.seen.keys().isdisjoint(keys):
                return super().process_parsed(chunk)
        run.writer.flush()
        lead_keys = columns[key_field]
        if key_field == "lead_external_id":
            self.leads.load_keys(external_ids=set(lead_keys))
            lead_ids = list(map(self.leads.by_ext.get, lead_keys))
        else:
            self.leads.load_keys(emails=set(lead_keys))
            lead_ids = list(map(self.leads.by_email.get, lead_keys))
        if None in lead_ids:
            return super().process_parsed(chunk)
        if keys is not None:
            self.seen.update(zip(keys, numbers, strict=True))
        properties = columns.get("properties") or [{}] * count
        rows = zip(lead_ids, columns["kind"], columns["occurred_at"], properties,
                   repeat(None), systems, external_ids or repeat(""), repeat(run.now))  # fmt: skip
        received = facts.events_received(keys) if keys is not None else set()
        if received:
            fresh = [key not in received for key in keys]
            rows = compress(rows, fresh)
            lead_ids = list(compress(lead_ids, fresh))
        rows = list(rows)
        run.report.duplicates += count - len(rows)
        run.report.created += len(rows)
        if not run.writing:
            return
        facts.events_stage(rows=rows, writer=run.writer)
        self.staged += len(rows)
        self.lead_ids.update(lead_ids)
        if not self.trigger_kinds.isdisjoint(columns["kind"]):
            self.triggers += [
                facts.EventRow(lead_id=row[0], kind=row[1], occurred_at=row[2])
                for row in rows
                if row[1] in self.trigger_kinds
            ]

    def finish(self) -> None:
        run = self.run
        if run.writing:
            facts.events_staged_store(
                writer=run.writer,
                lead_ids=self.lead_ids,
                triggers=self.triggers,
                lifecycle=run.lifecycle,
                batch=CHUNK_ROWS,
                progress=lambda stored: run.write_progress(stored / max(self.staged, 1)),
            )
            run.announced.update(self.lead_ids)


# opportunities ----------------------------------------------------------------------------------

OPPORTUNITY_FIELDS = ["name", "lead", "account", "owner", "amount", "currency", "stage", "status",
                      "created_at", "closed_at", "loss_reason", "external_id"]  # fmt: skip
OPPORTUNITY_CURRENT = ["pk", "name", "lead_id", "account_id", "owner_id", "amount", "currency",
                       "stage", "status", "created_at", "closed_at", "loss_reason",
                       "external_id"]  # fmt: skip
STATUS_OF_STAGE = {OpportunityStage.CLOSED_WON: OpportunityStatus.WON,
                   OpportunityStage.CLOSED_LOST: OpportunityStatus.LOST}  # fmt: skip
STAGE_OF_STATUS = {OpportunityStatus.WON: OpportunityStage.CLOSED_WON,
                   OpportunityStatus.LOST: OpportunityStage.CLOSED_LOST}  # fmt: skip


class OpportunityImport(KindImport):
    kind = OPPORTUNITIES

    def __init__(self, run: ImportRun) -> None:
        super().__init__(run)
        self.leads = LeadKeys()
        self.refs = _RefResolver(run, OPPORTUNITIES)
        self.seen: dict = {}
        self.deals: dict[int, list[tuple]] = defaultdict(
            list
        )  # lead id → (created, status, closed)
        self.created_from_close = 0  # new closed deals without a creation date
        self.created_now = 0  # new open deals without a creation date

    def process(self, rows):
        run = self.run
        rows = self.in_file_duplicates(rows, [("external_id", self.seen)])
        run.writer.flush()
        self.leads.load(rows)
        account_exts, account_domains = _account_keys(rows)
        run.refs.load_accounts(external_ids=account_exts, domains=account_domains)
        exts = [v["external_id"] for _, v in rows if "external_id" in v]
        existing = {
            o["external_id"]: o
            for o in rows_matching(Opportunity, "external_id", exts, OPPORTUNITY_CURRENT)
        }
        plans = []
        for row, values in rows:
            lead_id = self.leads.lead_id(run, row, values, required=False)
            self.refs.check(row, values)
            current = existing.get(values.get("external_id"))
            if current is not None and not run.options.update_existing:
                run.error(row, "external_id",
                          f"exists already (opportunity #{current['pk']}); updating is off",
                          values["external_id"])  # fmt: skip
            record = self._record(row, values, current)
            if not run.is_invalid(row):
                plans.append((row, values, current, lead_id, record))
        if not run.writing:
            for row, _, current, _, _ in plans:
                if current is None:
                    run.report.created += 1
                    run.note(row, "create")
                else:
                    run.report.updated += 1
                    run.note(row, f"update opportunity #{current['pk']}")
            return
        self.refs.create_missing([(row, values) for row, values, *_ in plans])
        new_rows, updates = [], []
        for row, values, current, lead_id, record in plans:
            ids = self.refs.ids(values)
            if lead_id is not None:
                record["lead"] = lead_id
            record.update({k: v for k, v in ids.items() if k in ("account", "owner")})
            if current is None:
                record.setdefault("lead", None)
                record.setdefault("account", None)
                record.setdefault("owner", None)
                new_rows.append(tuple(record[name] for name in OPPORTUNITY_FIELDS))
                run.note(row, "create")
            else:
                changes = {
                    name: value
                    for name, value in record.items()
                    if value != current[f"{name}_id" if name in ("lead", "account", "owner")
                                        else name]
                }  # fmt: skip
                if changes:
                    updates.append((current["pk"], changes))
                    run.note(row, f"update opportunity #{current['pk']}")
                else:
                    run.note(row, f"unchanged opportunity #{current['pk']}")
            deal_lead = record.get("lead", current["lead_id"] if current else None)
            if deal_lead is not None:
                self.deals[deal_lead].append(
                    (record["created_at"], record["status"], record["closed_at"])
                )
        run.report.created += len(new_rows)
        run.report.updated += len(updates)
        run.report.unchanged += sum(1 for p in plans if p[2] is not None) - len(updates)
        run.writer.insert(Opportunity, OPPORTUNITY_FIELDS, new_rows)
        for names, grouped in _group_updates(updates).items():
            run.writer.update(Opportunity, names, grouped)

    def _record(self, row: int, values: dict, current: dict | None) -> dict:
        """The opportunity's fields after this row, checked like ``Opportunity.clean``."""
        run = self.run
        base = current or {"name": "", "amount": 0, "currency": "USD", "loss_reason": "",
                           "external_id": "", "created_at": run.now, "closed_at": None,
                           "stage": None, "status": None}  # fmt: skip
        record = {name: values.get(name, base[name])
                  for name in ("name", "amount", "currency", "loss_reason", "external_id",
                               "created_at")}  # fmt: skip
        status, stage = values.get("status"), values.get("stage")
        if status is None and stage is not None:
            status = STATUS_OF_STAGE.get(stage, OpportunityStatus.OPEN.value)
        status = status or base["status"] or OpportunityStatus.OPEN.value
        if status in STAGE_OF_STATUS:
            if stage in STATUS_OF_STAGE and stage != STAGE_OF_STATUS[status]:
                run.error(row, "stage", f"contradicts the status {status}", stage)
            stage = STAGE_OF_STATUS[status].value
        elif stage in STATUS_OF_STAGE:
            run.error(row, "stage", "is closed, but the status is open", stage)
        stage = stage or (base["stage"] if base["stage"] not in STATUS_OF_STAGE else None)
        record["stage"] = stage or OpportunityStage.DISCOVERY.value
        record["status"] = status
        closed_at = values.get("closed_at", base["closed_at"] if current else None)
        if status == OpportunityStatus.OPEN:
            closed_at = None  # an open deal's close date is the expected one: not a fact yet
        elif closed_at is None:
            run.error(row, "closed_at", f"is required: a {status} opportunity needs its close date")
        if current is None and "created_at" not in values:
            # No creation date (a CRM export of closed deals): a closed deal was created when
            # it closed (an opportunity cycle of 0, never "closed before its creation"); an
            # open one when it is imported.
            if closed_at is not None:
                record["created_at"] = closed_at
                self.created_from_close += 1
            else:
                self.created_now += 1
        elif closed_at is not None and closed_at < record["created_at"]:
            run.error(row, "closed_at",
                      f"is before the opportunity's creation ({record['created_at']:%Y-%m-%d})",
                      f"{closed_at:%Y-%m-%d}")  # fmt: skip
        record["closed_at"] = closed_at
        return record

    def finish(self) -> None:
        """Move each lead with imported opportunities as its deals say, with the history an
        import implies (``history.deal_moves``: through the funnel stages it skipped)."""
        run = self.run
        if self.created_from_close:
            n = self.created_from_close
            run.report.notes.append(
                f"{n:,} {'opportunity has' if n == 1 else 'opportunities have'} no creation "
                "date: created = closed date."
            )
        if self.created_now:
            n = self.created_now
            run.report.notes.append(
                f"{n:,} open {'opportunity has' if n == 1 else 'opportunities have'} no "
                "creation date: created = the import's time."
            )
        if not self.deals or not run.writing:
            return
        run.writer.flush()
        lead_ids = list(self.deals)
        reason = f"Opportunity imported ({run.reason})"[:300]
        for start in range(0, len(lead_ids), CHUNK_ROWS):
            batch = lead_ids[start : start + CHUNK_ROWS]
            current = facts.lead_stages_locked(batch, writer=run.writer)
            moves = []
            for lead_id, state in current.items():
                deal = history.deal_milestones(self.deals[lead_id])
                path = history.deal_moves(
                    run.lifecycle, current=state.stage, entered_at=state.entered_at, deal=deal
                )
                moves += [run.move(lead_id, key, at, reason) for key, at in path]
            written = facts.stage_moves_record(
                moves=moves, lifecycle=run.lifecycle, current=current, writer=run.writer
            )
            run.report.transitions += len(written.transitions)


# sales reps -------------------------------------------------------------------------------------

REP_VALUES = ("region", "tiers", "capacity", "is_active")  # as parsed; the manager is resolved


class SalesRepImport(KindImport):
    """Reps and their teams (a team is its manager's reps): each row's rep and manager are
    users matched like owners (created inactive when allowed), then every rep is written at
    once by ``team.sales_reps_upsert`` at the end, so a manager may be named before or after
    their own row."""

    kind = SALES_REPS

    def __init__(self, run: ImportRun) -> None:
        super().__init__(run)
        self.seen: dict = {}  # a rep's user id, or its text when the user is new → first row
        self.plans: list[tuple[int, dict]] = []

    def _user(self, row: int, values: dict, field_name: str) -> int | None:
        """The user a cell names (None: new, to be created); errors when it cannot be."""
        try:
            found = self.run.refs.owner(values[field_name])
        except FieldProblem as problem:
            self.run.error(row, field_name, str(problem), values[field_name])
            return None
        if found is None and not self.run.options.create_owners:
            self.run.error(row, field_name, "is not a user's username, e-mail or name (allow "
                           "creating owners to add them as inactive users)",
                           values[field_name])  # fmt: skip
        return found

    def process(self, rows):
        run = self.run
        checked = []
        for row, values in rows:
            user_id = self._user(row, values, "rep")
            key = user_id if user_id is not None else " ".join(values["rep"].lower().split())
            first = self.seen.setdefault(key, row)
            if first != row:
                run.error(row, "rep", f"appears twice in the file (first on row {first})",
                          values["rep"])  # fmt: skip
            manager_id = self._user(row, values, "manager") if "manager" in values else None
            if "manager" in values and (
                (user_id is not None and manager_id == user_id)
                or norm(values["manager"]) == norm(values["rep"])
            ):
                run.error(row, "manager", "is the rep: a rep cannot be their own manager",
                          values["manager"])  # fmt: skip
            for name, message in team.sales_rep_problems(
                **{name: values[name] for name in REP_VALUES if name in values}
            ).items():
                run.error(row, name, message, values.get(name, ""))
            values["_ids"] = (user_id, manager_id)
            checked.append((row, values))
        existing = {
            rep["user_id"]: rep
            for rep in SalesRep.objects.filter(
                user_id__in=[v["_ids"][0] for _, v in checked if v["_ids"][0] is not None]
            ).values("pk", "user_id", "manager_id", *REP_VALUES)
        }
        for row, values in checked:
            if run.is_invalid(row):
                continue
            user_id, manager_id = values["_ids"]
            current = existing.get(user_id)
            if current is None:
                run.report.created += 1
                run.note(row, "create rep")
            elif not run.options.update_existing:
                run.error(row, "rep", f"is a sales rep already (rep #{current['pk']}); updating "
                          "is off", values["rep"])  # fmt: skip
                continue
            elif any(values[name] != current[name] for name in REP_VALUES if name in values) or (
                # a manager the import creates (no id yet) is a change too
                "manager" in values and (manager_id is None or manager_id != current["manager_id"])
            ):
                run.report.updated += 1
                run.note(row, f"update rep #{current['pk']}")
            else:
                run.report.unchanged += 1
                run.note(row, f"unchanged rep #{current['pk']}")
            self.plans.append((row, values))

    def finish(self) -> None:
        run, refs = self.run, self.run.refs
        if not run.writing or not self.plans:
            return
        run.writer.flush()
        reps = []
        for _, values in self.plans:
            user_id = refs.owner_create(
                values["rep"], name=values.get("name", ""), counted_as="users"
            )
            fields = {name: values[name] for name in REP_VALUES if name in values}
            if "manager" in values:
                fields["manager_id"] = refs.owner_create(values["manager"], counted_as="users")
            reps.append(team.RepValues(user_id=user_id, fields=fields))
        try:
            team.sales_reps_upsert(actor_id=run.actor_id, reps=reps)
        except ValidationError as problem:  # changed meanwhile: every row was checked first
            run.report.problems = [f"The sales reps were refused, nothing was written: {problem}"]


HANDLERS: dict[str, type[KindImport]] = {
    ACCOUNTS: AccountImport,
    LEADS: LeadImport,
    EVENTS: EventImport,
    OPPORTUNITIES: OpportunityImport,
    SALES_REPS: SalesRepImport,
}


# --- Entry point ------------------------------------------------------------------------------


def _parsed_chunks(
    csv_rows: csvfile.CsvRows,
    parser,
    run: ImportRun,
    *,
    limit: int | None,
    preview: list[dict] | None,
) -> Iterator[list[tuple[int, dict]] | ParsedColumns]:
    """The file's valid rows, ``CHUNK_ROWS`` rows read at a time: a chunk of clean rows parsed
    column by column (``RowParser.parse_clean``), any other row by row with its errors."""
    report = run.report
    for chunk in csv_rows.chunks(CHUNK_ROWS if limit is None else min(CHUNK_ROWS, limit)):
        if limit is not None:
            chunk = chunk[: max(0, limit - report.rows)]
        report.rows += len(chunk)
        parsed = parser.parse_clean(chunk) if preview is None else None
        if parsed is not None:
            yield parsed
        else:
            valid = []
            for row, cells in chunk:
                values, errors = parser.parse(row, cells)
                if errors:
                    run.add_errors(errors)
                else:
                    valid.append((row, values))
                if preview is not None:
                    preview.append({"row": row, "values": _displayable(values)})
            if valid:
                yield valid
        if limit is not None and report.rows >= limit:
            break


def _displayable(values: dict) -> dict:
    shown = {}
    for name, value in values.items():
        if isinstance(value, datetime):
            shown[name] = value.isoformat()
        elif isinstance(value, dict | list):
            shown[name] = value
        elif isinstance(value, bool):
            shown[name] = "yes" if value else "no"
        else:
            shown[name] = str(value)
    return shown


def _owners_become_reps(run: ImportRun) -> None:
    """With ``owners_become_reps``, every owner the rows name becomes a sales rep (on no team)
    in the import's transaction, so imported owners have a rep record at once."""
    if not run.options.owners_become_reps or not run.writing or not run.owner_ids:
        return
    created = team.sales_reps_ensure(actor_id=run.actor_id, user_ids=sorted(run.owner_ids))
    if created:
        run.report.created_refs["sales reps"] = len(created)


def import_file(
    *,
    path: Path | str,
    mapping: Mapping,
    skip_invalid: bool = False,
    dry_run: bool = False,
    limit: int | None = None,
    preview: bool = False,
    actor_id: int | None = None,
    label: str = "",
    progress: Progress | None = None,
) -> ImportReport:
    """Import a CSV file as ``mapping`` says, in one transaction: all or nothing, or — with
    ``skip_invalid`` — every valid row, reporting each skipped one. ``dry_run`` (and
    ``preview``, which also reads only the first ``limit`` rows) rolls everything back.

    All or nothing reads the file twice: every row is checked first, writing nothing, and only
    a file without problems is then written. Writing as we went and rolling back at the first
    bad row gave the same result but kept the ids the written rows had taken: sequences do not
    roll back, so a rejected 100k-row file used up 190k lead ids."""
    path = Path(path)
    started = time.perf_counter()
    dry_run = dry_run or preview
    single_pass = skip_invalid or getattr(HANDLERS.get(mapping.kind), "single_pass", False)
    passes = (False,) if single_pass else (True, False)  # validate_only
    report = ImportReport(kind=mapping.kind, file_name=label or path.name)
    try:
        fmt = csvfile.sniff(path, encoding=mapping.encoding, delimiter=mapping.delimiter)
        context = mapping_context()
        for number, validate_only in enumerate(passes):
            for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
                report = ImportReport(kind=mapping.kind, file_name=label or path.name)
                report.encoding, report.encoding_note = fmt.encoding, fmt.note
                report.delimiter = fmt.delimiter
                with csvfile.open_rows(path, fmt) as csv_rows:
                    report.header, report.warnings = csv_rows.header, csv_rows.warnings
                    parser = compile_mapping(mapping, csv_rows.header, context)
                    if note := dates_note(mapping, context):
                        report.notes.append(note)
                    with cyclic_gc_paused():
                        _run(report, mapping, context, parser, csv_rows,
                             skip_invalid=skip_invalid, dry_run=dry_run, limit=limit,
                             preview=preview, actor_id=actor_id, label=label or path.name,
                             validate_only=validate_only,
                             progress=_pass_progress(progress, number, len(passes)))  # fmt: skip
                # A long import and concurrent writes (API batches, rescores) can lock the same
                # leads in opposite orders; PostgreSQL then rolls one back. The file is written
                # whole or not at all, so writing it again is safe: only the last refusal counts.
                if not report.deadlocked or attempt == DEADLOCK_ATTEMPTS:
                    break
                logger.warning("Import %s met a deadlock; writing it again (%s)", label, attempt)
            if report.status == REJECTED:
                break
    except MappingError as problem:
        report.problems = problem.problems
        report.status = REJECTED
    except csvfile.CsvFileError as problem:
        report.problems = [str(problem)]
        report.status = REJECTED
    report.seconds = time.perf_counter() - started
    return report


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Python's cycle collector off while a file is imported, back on (as it was) after.

    An import allocates millions of short-lived, acyclic objects (cells, row dicts, dates,
    tuples), which reference counting frees; each of them also counts towards the collector's
    next pass, and every few passes it walks every live object, including the import's caches
    that grow with the file (keys seen, leads by key). On 200k events that was ~2 s of the
    import's ~5 s of Python. Cycles made meanwhile are collected once it is back on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _pass_progress(progress: Progress | None, number: int, passes: int) -> Progress | None:
    """Each pass over the file is its share of the progress bar."""
    if progress is None or passes == 1:
        return progress
    return lambda fraction, rows: progress((number + fraction) / passes, rows)


def _run(report, mapping, context, parser, csv_rows, *, skip_invalid, dry_run, limit, preview,
         actor_id, label, progress, validate_only=False) -> None:  # fmt: skip
    preview_rows: list[dict] | None = [] if preview else None
    with transaction.atomic():
        constraints_per_statement()
        writer = writer_for()
        writer.announced = set()  # announced once at the end (facts.announce_collected)
        run = ImportRun(report=report, mapping=mapping, context=context, writer=writer,
                        skip_invalid=skip_invalid, actor_id=actor_id, label=label,
                        preview=preview, validate_only=validate_only)  # fmt: skip
        handler = HANDLERS[mapping.kind](run)
        # A handler that writes once everything is read shows reading and writing as halves.
        read_share = 0.5 if handler.single_pass and not validate_only else 1.0
        if progress is not None and read_share < 1:
            run.write_progress = lambda fraction: progress(
                read_share + (1 - read_share) * fraction, report.rows
            )
        try:
            for chunk in _parsed_chunks(csv_rows, parser, run, limit=limit, preview=preview_rows):
                if isinstance(chunk, ParsedColumns):
                    handler.process_parsed(chunk)
                else:
                    handler.process(chunk)
                run.end_chunk()
                if progress is not None:
                    progress(csv_rows.fraction_read * read_share, report.rows)
            handler.finish()
            if run.writing:
                facts.announce_collected(writer)  # each lead once, inside the transaction
            writer.flush()
            _owners_become_reps(run)
            report.rescore_leads = len(run.announced) if run.writing else 0
        except csvfile.CsvFileError as problem:
            report.problems = [str(problem)]
        except DatabaseError as problem:
            # Every row was checked first, so this is a change made meanwhile by someone else
            # (e.g. the same e-mail address saved since): nothing is written, try again.
            report.problems = [f"The database refused the import, nothing was written: {problem}"]
            report.deadlocked = getattr(problem.__cause__, "pgcode", None) == DEADLOCK
        finally:
            try:
                writer.close()
            except DatabaseError as problem:
                report.problems = report.problems or [
                    f"The database refused the import, nothing was written: {problem}"
                ]
        if report.problems or (report.error_rows and not skip_invalid):
            report.status = REJECTED
        elif dry_run or validate_only:
            report.status = DRY_RUN
        else:
            report.status = COMMITTED
        if report.status != COMMITTED:
            transaction.set_rollback(True)
        report.dry_run = dry_run
        report.errors.sort(key=lambda error: error.row)  # parse and database checks, by row
        if skip_invalid:
            report.skipped = report.error_rows
        if report.status == REJECTED and not dry_run:  # nothing was written: say so
            report.created = report.updated = report.unchanged = report.duplicates = 0
            report.transitions = report.rescore_leads = 0
            report.created_refs = {}
    if preview_rows is not None:
        errors_by_row = defaultdict(list)
        for error in report.errors:
            errors_by_row[error.row].append(str(error))
        actions = run.preview_actions or {}
        for item in preview_rows:
            item["errors"] = errors_by_row.get(item["row"], [])
            item["action"] = "" if item["errors"] else actions.get(item["row"], "")
        report.preview = preview_rows
