"""Fault tests of the pipeline core (issue 13): real workers on a Redis of the test's own, against
the test's PostgreSQL database, under a ``kill -9``, a broker outage and a publish racing ingestion.

Each test ends with an *independent recomputation*: every lead scored again in Python, lead by
lead, with the pure engine (``scoring.engine.score_lead``) and the pure lifecycle rules
(``Lifecycle.score_target`` and the re-qualification rule), never through the bulk SQL under
test, and compared with what the workers stored: the score, the stage, and exactly one stage
transition and one handoff per lead that had to move.

Run them with PostgreSQL and redis-server (``DATABASE_URL=postgres://…``); they take 2–3 minutes
on a 2-core machine. Without those services they skip, unless REVOPS_REQUIRE_SERVICES=1 (CI).
"""

import random
import shutil
import threading
import time
import uuid
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, connections, transaction
from django.db.models import F, Max
from django.utils import timezone

from leads.choices import ActorType, HandoffOutcome
from leads.lifecycle import Rejection
from leads.models import (
    Account,
    EngagementEvent,
    Handoff,
    IcpVersion,
    Lead,
    RejectionReason,
    SalesRep,
    StageTransition,
)
from leads.selectors import icp_in_force, lifecycle_at
from leads.services import definition_create_draft, definition_publish, engagement_events_record
from scoring import engine, services, tasks
from scoring.models import LeadScoreState, RescoreChunk, RescoreJob, ScoringModel
from scoring.selectors import icp_spec, lead_facts, scoring_model_in_force, scoring_spec
from tests.conftest import REQUIRE_SERVICES, restore_default_definitions
from tests.scoring import test_worker_integration as integration
from tests.workers import celery_worker, free_port, kill_hard, redis_server, wait_for

# The worker integration tests' fixture: let this process publish to a broker.
publishing = integration.publishing

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Every queue the app routes to, as the embedded run consumes them.
ALL_QUEUES = settings.ALL_QUEUES
# The sweep re-sends a dirty lead's rescore when it was sent longer ago than this; small here so
# a test need not wait the production default (120 s) for a lost message.
REQUEUE_AFTER_SECONDS = 5
MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@pytest.fixture
def fault_services():
    problems = []
    if connection.vendor != "postgresql":
        problems.append("DATABASE_URL must point at PostgreSQL")
    if shutil.which("redis-server") is None:
        problems.append("redis-server is not installed")
    if problems:
        if REQUIRE_SERVICES:
            pytest.fail("the fault tests need " + " and ".join(problems))
        pytest.skip("; ".join(problems))


@pytest.fixture(autouse=True)
def definitions():
    restore_default_definitions()


@pytest.fixture
def worker_env():
    """What a worker process needs to use this test's database (its broker is added per test)."""
    db = connection.settings_dict
    return {
        "DJANGO_SETTINGS_MODULE": "revops.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_RESULT_BACKEND": "cache+memory://",
        "SCORING_REQUEUE_AFTER_SECONDS": str(REQUEUE_AFTER_SECONDS),
        "LOG_LEVEL": "WARNING",
    }


# --- The world: many leads, bulk-inserted ------------------------------------------------------

# Fit under the default ICP: "good" = software 10 + mid-market 10 + revenue 5 + NA 5 + Salesforce
# 10 = 40 (+ 10 for a director = 50); "plain" = 0; "micro" matches the micro-company exclusion.
ACCOUNTS = {
    "good": {
        "industry": "software",
        "employees": 800,
        "annual_revenue": 50_000_000,
        "region": "NA",
        "country": "US",
        "technologies": ["salesforce"],
    },
    "plain": {"industry": "retail", "employees": 100, "region": "APAC", "country": "SG"},
    "micro": {"industry": "software", "employees": 5, "region": "NA", "country": "US"},
}


@dataclass(frozen=True)
class Profile:
    account: str
    seniority: str
    stage: str = "lead"
    events: tuple[tuple[str, timedelta], ...] = ()  # (kind, how long ago)
    rejected_ago: timedelta | None = None  # rejected at an MQL handoff this long ago


def seed(count: int, profile: Callable[[int], Profile]) -> dict[int, str]:
    """``count`` leads with their events (and rejections), bulk-inserted, then scored in this
    process without moves (``rescore_all_now``). Returns each lead's stage."""
    now = timezone.now()
    run = uuid.uuid4().hex[:6]
    accounts = {
        key: Account.objects.create(name=f"{key} {run}", **facts) for key, facts in ACCOUNTS.items()
    }
    profiles = [profile(n) for n in range(count)]
    leads = Lead.objects.bulk_create(
        [
            Lead(
                first_name="Lead",
                last_name=str(n),
                email=f"lead{n}-{run}@corp{n % 7}.example",
                seniority=p.seniority,
                title=p.seniority.title(),
                account=accounts[p.account],
                stage=p.stage,
                stage_entered_at=now - 10 * DAY,
                in_marketing_nurture=p.stage in ("lead", "mql", "nurture"),
                created_at=now - 30 * DAY,
            )
            for n, p in enumerate(profiles)
        ],
        batch_size=5_000,
    )
    EngagementEvent.objects.bulk_create(
        [
            EngagementEvent(
                lead_id=lead.pk,
                kind=kind,
                occurred_at=now - ago,
                source_system="seed",
                external_id=f"{run}-{lead.pk}-{number}",
            )
            for lead, p in zip(leads, profiles, strict=True)
            for number, (kind, ago) in enumerate(p.events)
        ],
        batch_size=5_000,
    )
    reason = RejectionReason.objects.order_by("order").first()
    Handoff.objects.bulk_create(
        [
            Handoff(
                lead_id=lead.pk,
                stage="mql",
                assigned_at=now - p.rejected_ago - HOUR,
                rejected_at=now - p.rejected_ago,
                reject_reason=reason,
                outcome=HandoffOutcome.REJECTED,
            )
            for lead, p in zip(leads, profiles, strict=True)
            if p.rejected_ago is not None
        ]
    )
    users = get_user_model().objects
    for number in range(2):
        SalesRep.objects.create(
            user=users.create_user(f"rep{number}-{run}"), capacity=100_000, region=""
        )
    services.rescore_all_now(note="fault test seed")
    return {lead.pk: lead.stage for lead in leads}


def new_model(**weights: float) -> ScoringModel:
    current = scoring_model_in_force()
    draft = definition_create_draft(model=ScoringModel, actor=None, copy_from=current)
    for kind, points in weights.items():
        draft.weights.filter(kind=kind).update(points=points)
    return draft


def new_icp(criterion: str, points: int) -> IcpVersion:
    draft = definition_create_draft(model=IcpVersion, actor=None, copy_from=icp_in_force())
    assert draft.criteria.filter(name=criterion).update(points=points) == 1
    return draft


# --- The independent recomputation ---------------------------------------------------------


@dataclass
class Audit:
    leads: int = 0
    wrong_scores: list = field(default_factory=list)
    dirty: list = field(default_factory=list)
    not_moved: list = field(default_factory=list)  # should have moved, did not
    wrongly_moved: list = field(default_factory=list)  # moved, or moved elsewhere, wrongly
    history: list = field(default_factory=list)  # not exactly one transition + one handoff
    due: int = 0  # leads that had to move

    @property
    def problems(self) -> dict[str, list]:
        return {
            name: rows
            for name, rows in (
                ("wrong stored score", self.wrong_scores),
                ("still dirty", self.dirty),
                ("should have moved but did not", self.not_moved),
                ("moved wrongly", self.wrongly_moved),
                ("not exactly one transition and one handoff", self.history),
            )
            if rows
        }

    def report(self) -> str:
        return f"{self.leads:,} leads, {self.due:,} had to move; " + "; ".join(
            f"{name}: {len(rows):,} (e.g. {rows[:5]})" for name, rows in self.problems.items()
        )


def audit(initial: dict[int, str], *, transitions_after: int, handoffs_after: int) -> Audit:
    """Score every lead of ``initial`` again with the engine, lead by lead, and compare: the
    stored score, the stage the lifecycle rules say it must be in now (from its stage before the
    run), and exactly one transition and handoff written since the run began per lead that had
    to move (none for the others)."""
    at = timezone.now()
    icp_version, model = icp_in_force(at=at), scoring_model_in_force(at=at)
    icp, spec = icp_spec(icp_version), scoring_spec(model)
    as_of_day = engine.day_number(at)
    lifecycle = lifecycle_at(at)
    qualifying = {kind for kind, rule in spec.rules.items() if rule.weight > 0}
    ids = sorted(initial)

    events = defaultdict(list)
    for lead_id, kind, occurred_at in (
        EngagementEvent.objects.filter(lead_id__in=ids)
        .order_by()
        .values_list("lead_id", "kind", "occurred_at")
    ):
        events[lead_id].append((kind, occurred_at))
    rejections: dict[int, Rejection] = {}
    for lead_id, stage, rejected_at in (
        Handoff.objects.filter(lead_id__in=ids, outcome=HandoffOutcome.REJECTED)
        .order_by("lead_id", "rejected_at")
        .values_list("lead_id", "stage", "rejected_at")
    ):
        rejections[lead_id] = Rejection(stage_key=stage, rejected_at=rejected_at)  # latest wins
    transitions = defaultdict(list)
    for lead_id, from_stage, to_stage, actor_type in (
        StageTransition.objects.filter(lead_id__in=ids, pk__gt=transitions_after)
        .order_by("pk")
        .values_list("lead_id", "from_stage", "to_stage", "actor_type")
    ):
        transitions[lead_id].append((from_stage, to_stage, actor_type))
    handoffs = defaultdict(list)
    for lead_id, stage, outcome in (
        Handoff.objects.filter(lead_id__in=ids, pk__gt=handoffs_after)
        .order_by("pk")
        .values_list("lead_id", "stage", "outcome")
    ):
        handoffs[lead_id].append((stage, outcome))
    states = {state.lead_id: state for state in LeadScoreState.objects.filter(lead_id__in=ids)}

    result = Audit()
    for lead in Lead.objects.filter(pk__in=ids).select_related("account").order_by("pk"):
        result.leads += 1
        score = engine.score_lead(
            icp,
            spec,
            lead_facts(lead),
            [(kind, engine.day_number(occurred_at)) for kind, occurred_at in events[lead.pk]],
            as_of_day=as_of_day,
        )
        state = states.get(lead.pk)
        stored = (
            None
            if state is None
            else (
                state.total,
                state.engagement,
                state.fit_points,
                state.fit_excluded,
                state.tier,
                state.grade,
                state.icp_version_id,
                state.scoring_model_id,
                state.as_of_day,
                lead.tier,
            )
        )
        expected = (
            score.total,
            score.engagement,
            score.fit.points,
            score.fit.excluded,
            score.tier,
            score.grade,
            icp_version.pk,
            model.pk,
            as_of_day,
            score.tier,
        )
        if stored != expected:
            result.wrong_scores.append((lead.pk, "stored", stored, "engine", expected))
        if state is not None and state.is_dirty:
            result.dirty.append(lead.pk)

        before = initial[lead.pk]
        target = lifecycle.score_target(before, score.total, excluded=score.fit.excluded)
        rejection = rejections.get(lead.pk)
        if target is not None and rejection is not None:
            counts_from = lifecycle.requalify_counts_from(rejection)
            engaged = [
                occurred_at
                for kind, occurred_at in events[lead.pk]
                if kind in qualifying and occurred_at >= counts_from
            ]
            if lifecycle.requalification(rejection, max(engaged, default=None)).blocked:
                target = None
        expected_stage = target.key if target is not None else before
        if target is not None:
            result.due += 1
        if lead.stage != expected_stage:
            bucket = result.not_moved if lead.stage == before else result.wrongly_moved
            bucket.append((lead.pk, before, lead.stage, expected_stage, score.total))
        moves = [(before, target.key, ActorType.SCORING)] if target is not None else []
        opened = [(target.key, HandoffOutcome.PENDING)] if target and target.opens_handoff else []
        if lead.stage == expected_stage and (
            transitions[lead.pk] != moves or handoffs[lead.pk] != opened
        ):
            result.history.append((lead.pk, transitions[lead.pk], handoffs[lead.pk]))
    return result


def watermarks() -> tuple[int, int]:
    """Ids of the newest stage transition and handoff: what a run writes comes after them."""
    return (
        StageTransition.objects.aggregate(m=Max("pk"))["m"] or 0,
        Handoff.objects.aggregate(m=Max("pk"))["m"] or 0,
    )


def dirty_count() -> int:
    return LeadScoreState.objects.filter(pending_seq__gt=F("scored_seq")).count()


def job_done(job_id: int) -> bool:
    return RescoreJob.objects.get(pk=job_id).status == RescoreJob.Status.DONE


class Ingestion(threading.Thread):
    """Records engagement events through ``engagement_events_record`` (as the API does) from a
    thread of its own, ``per_batch`` events for random leads every ``pause`` seconds, until
    stopped. Only kinds worth points: totals never go down, so a lead's stage follows from its
    final score."""

    KINDS = ("webinar_attended", "pricing_page", "email_click", "page_view", "content_download")

    def __init__(self, lead_ids: list[int], *, per_batch: int, pause: float, seed: int):
        super().__init__(daemon=True)
        self.lead_ids = lead_ids
        self.per_batch = per_batch
        self.pause = pause
        self.random = random.Random(seed)
        self.stop = threading.Event()
        self.touched: set[int] = set()
        self.recorded = 0
        self.batches = 0
        self.slowest = 0.0
        self.error: BaseException | None = None

    def run(self) -> None:
        run = uuid.uuid4().hex[:6]
        try:
            while not self.stop.is_set():
                now = timezone.now()
                events = [
                    EngagementEvent(
                        lead_id=self.random.choice(self.lead_ids),
                        kind=self.random.choice(self.KINDS),
                        occurred_at=now - MINUTE,
                        source_system="fault-test",
                        external_id=f"{run}-{self.batches}-{n}",
                    )
                    for n in range(self.per_batch)
                ]
                started = time.monotonic()
                stored, _ = engagement_events_record(events=events)
                self.slowest = max(self.slowest, time.monotonic() - started)
                self.recorded += len(stored)
                self.touched.update(event.lead_id for event in stored)
                self.batches += 1
                time.sleep(self.pause)
        except BaseException as error:  # reported by the test
            self.error = error
        finally:
            connections.close_all()

    def finish(self) -> None:
        self.stop.set()
        self.join(timeout=60)
        assert not self.is_alive(), "the ingestion thread did not stop"
        if self.error is not None:
            raise self.error


# --- (a) kill -9 mid full rescore ------------------------------------------------------------


def kill_profile(n: int) -> Profile:
    """Webinars are worth 10 points in the model in force and 20 in the one published: the
    crossers (50 fit + 10 + a page view < 65) reach the MQL threshold only after the publish."""
    group = n % 100
    webinar_today = ("webinar_attended", 2 * HOUR)
    old_view = ("page_view", 12 * DAY)
    if group < 2:  # crossers in Lead
        return Profile("good", "director", "lead", (webinar_today, old_view))
    if group < 3:  # crossers in Nurture (a score moves a lead out of nurture too)
        return Profile("good", "director", "nurture", (webinar_today,))
    if group < 5:  # as hot, but sales has them: never moved by a score
        return Profile("good", "director", "sal", (webinar_today,))
    if group < 7:  # poor fit (students): never an MQL, whatever their engagement
        return Profile("good", "student", "lead", (webinar_today, ("demo_request", HOUR)))
    if group < 8:  # poor fit (micro company)
        return Profile("micro", "director", "lead", (webinar_today, ("demo_request", HOUR)))
    if group < 9:  # rejected after their webinar: that engagement never re-qualifies them
        return Profile("good", "director", "nurture", (("webinar_attended", 3 * DAY),), 2 * DAY)
    if group < 10:  # rejected, then engaged again: they re-qualify
        return Profile("good", "director", "nurture", (("webinar_attended", DAY),), 3 * DAY)
    return Profile(
        "plain", "manager", "lead", (("page_view", (n % 20) * DAY), ("email_open", (n % 9) * DAY))
    )


def test_kill_9_mid_full_rescore_then_sweep_leaves_no_wrong_score_and_no_missed_move(
    fault_services, worker_env, publishing, capsys
):
    initial = seed(20_000, kill_profile)
    ids = sorted(initial)
    transitions_after, handoffs_after = watermarks()
    before_publish = audit(initial, transitions_after=transitions_after, handoffs_after=0)
    assert before_publish.due == 0, "the seeded world must be settled before the publish"

    with redis_server(free_port()) as broker:
        publishing(broker.url, "celery")
        env = {**worker_env, "CELERY_BROKER_URL": broker.url}
        with celery_worker(env, queue=ALL_QUEUES, hostname="doomed@%h") as doomed:
            definition_publish(version=new_model(webinar_attended=20), actor=None)
            job = RescoreJob.objects.order_by("-pk").first()

            def some_buckets_done():
                # Past the first 1,000 leads: a bucket holding due leads has committed.
                marks = RescoreChunk.objects.filter(job=job).values_list("next_lead_id", flat=True)
                return sum(bisect_left(ids, mark) for mark in marks) >= 1_000

            wait_for(some_buckets_done, timeout=120, interval=0.01)
            kill_hard(doomed)
        at_kill = RescoreChunk.objects.filter(job=job).values_list("next_lead_id", flat=True)
        done_at_kill = sum(bisect_left(ids, mark) for mark in at_kill)
        moved_at_kill = StageTransition.objects.filter(pk__gt=transitions_after).count()
        assert not job_done(job.pk), "the worker finished the job before it could be killed"

        # The sweep restarts a chunk nobody advanced for 120 s: let that time pass.
        RescoreChunk.objects.filter(job=job, finished_at__isnull=True).update(
            updated_at=timezone.now() - 10 * MINUTE
        )
        with celery_worker(env, queue=ALL_QUEUES, hostname="heir@%h", stop_timeout=120):
            swept = tasks.sweep_scoring()
            wait_for(lambda: job_done(job.pk), timeout=120, interval=0.2)
        # Leaving the block waited for the chunk's last moves (warm shutdown).

    result = audit(initial, transitions_after=transitions_after, handoffs_after=handoffs_after)
    with capsys.disabled():
        print(
            f"\n(a) killed after {done_at_kill:,} of {len(ids):,} leads rescored, "
            f"{moved_at_kill:,} moves made; sweep: {swept}; audit: {result.report()}"
        )
    assert swept["stalled_chunks"] == 1
    assert result.due > 500
    assert not result.problems, result.report()


# --- (b) the broker stopped for 30 s during ingestion ----------------------------------------


def outage_profile(n: int) -> Profile:
    """Half are good fits at about 59 points: one webinar or pricing page takes them over."""
    if n % 2:
        return Profile("good", "director", "lead", (("webinar_attended", 5 * DAY),))
    return Profile("plain", "manager", "lead", (("email_open", 3 * DAY),))


def test_broker_down_30s_during_ingestion_every_lead_reflects_its_events_within_2_minutes(
    fault_services, worker_env, publishing, settings, capsys
):
    settings.SCORING_REQUEUE_AFTER_SECONDS = REQUEUE_AFTER_SECONDS
    initial = seed(2_000, outage_profile)
    transitions_after, handoffs_after = watermarks()
    sweeps = []

    def sweep() -> None:
        sweeps.append(tasks.sweep_scoring())  # as beat would, every few seconds here

    with redis_server(free_port()) as broker:
        publishing(broker.url, "celery")
        env = {**worker_env, "CELERY_BROKER_URL": broker.url}
        with celery_worker(env, queue=ALL_QUEUES, hostname="survivor@%h", stop_timeout=60):
            ingestion = Ingestion(sorted(initial), per_batch=5, pause=0.1, seed=13)
            ingestion.start()
            time.sleep(5)
            broker.stop()
            down_at = time.monotonic()
            while time.monotonic() - down_at < 30:
                sweep()
                time.sleep(5)
            broker.start()
            back_at = time.monotonic()
            time.sleep(5)
            ingestion.finish()
            last_event_at = time.monotonic()

            touched = {lead_id: initial[lead_id] for lead_id in ingestion.touched}
            latest = None
            while time.monotonic() - back_at < 120:
                sweep()
                latest = audit(
                    touched, transitions_after=transitions_after, handoffs_after=handoffs_after
                )
                if not latest.problems:
                    break
                time.sleep(5)
            settled_after = time.monotonic() - back_at

    result = audit(initial, transitions_after=transitions_after, handoffs_after=handoffs_after)
    with capsys.disabled():
        print(
            f"\n(b) {ingestion.recorded:,} events for {len(touched):,} leads, broker down 30 s "
            f"(slowest recording {ingestion.slowest:.1f} s); settled {settled_after:.0f} s after "
            f"the broker returned ({settled_after - (last_event_at - back_at):.0f} s after the "
            f"last event); requeued by the sweeps: {sum(s['requeued'] for s in sweeps):,}; "
            f"audit: {result.report()}"
        )
    assert latest is not None and not latest.problems, latest.report()
    assert settled_after <= 120
    assert not result.problems, result.report()
    assert result.due > 0


# --- (c) ingestion while a new ICP is published and rescored by 2 workers ----------------------


def publish_race_profile(n: int) -> Profile:
    """The new ICP doubles "Target industry" (10 → 20): a good fit with a webinar goes from 60 to
    70 and crosses on the publish alone; events recorded meanwhile take others across."""
    group = n % 20
    if group == 0:
        return Profile("good", "director", "lead", (("webinar_attended", 2 * HOUR),))
    if group < 4:
        return Profile("good", "director", "lead", (("page_view", 4 * DAY),))
    if group < 5:
        return Profile("good", "student", "lead", (("demo_request", DAY),))
    return Profile("plain", "manager", "lead", (("email_open", 2 * DAY),))


def test_ingestion_during_an_icp_publish_on_two_workers_leaves_no_wrong_score_or_stage(
    fault_services, worker_env, publishing, settings, capsys
):
    settings.SCORING_REQUEUE_AFTER_SECONDS = REQUEUE_AFTER_SECONDS
    initial = seed(10_000, publish_race_profile)
    transitions_after, handoffs_after = watermarks()

    with redis_server(free_port()) as broker:
        publishing(broker.url, "celery")
        env = {**worker_env, "CELERY_BROKER_URL": broker.url}
        with (
            celery_worker(env, queue=ALL_QUEUES, hostname="one@%h", stop_timeout=120),
            celery_worker(env, queue=ALL_QUEUES, hostname="two@%h", stop_timeout=120),
        ):
            ingestion = Ingestion(sorted(initial), per_batch=10, pause=0.05, seed=7)
            ingestion.start()
            time.sleep(4)
            definition_publish(version=new_icp("Target industry", 20), actor=None)
            job = RescoreJob.objects.order_by("-pk").first()
            time.sleep(12)
            ingestion.finish()
            wait_for(lambda: job_done(job.pk), timeout=120, interval=0.2)
            wait_for(lambda: dirty_count() == 0, timeout=60, interval=0.5)
            swept = tasks.sweep_scoring()

    result = audit(initial, transitions_after=transitions_after, handoffs_after=handoffs_after)
    with capsys.disabled():
        print(
            f"\n(c) {ingestion.recorded:,} events for {len(ingestion.touched):,} leads during "
            f"the ICP publish; final sweep: {swept}; audit: {result.report()}"
        )
    assert result.due > 400
    assert not result.problems, result.report()


# --- (d) the interleaving behind (c), made deterministic ----------------------------------------


def test_an_incremental_rescore_started_before_a_publish_does_not_undo_its_full_rescore(
    fault_services, monkeypatch
):
    initial = seed(200, publish_race_profile)
    good = [lead_id for n, lead_id in enumerate(sorted(initial)) if n % 20 < 4]
    with transaction.atomic():
        services.leads_mark_dirty(lead_ids=good)  # events arrived: these wait for a rescore
    transitions_after, handoffs_after = watermarks()
    claim_dirty = services._claim_dirty

    def publish_first(lead_ids, **kwargs):
        # Between the incremental path's reads and its locks, another process publishes a new
        # ICP and its full rescore goes through every bucket (eagerly, in this test).
        def publish():
            try:
                definition_publish(version=new_icp("Target industry", 20), actor=None)
            finally:
                connections.close_all()

        thread = threading.Thread(target=publish)
        thread.start()
        thread.join()
        monkeypatch.setattr(services, "_claim_dirty", claim_dirty)
        return claim_dirty(lead_ids, **kwargs)

    monkeypatch.setattr(services, "_claim_dirty", publish_first)
    services.leads_rescore(lead_ids=good)
    assert RescoreJob.objects.filter(status=RescoreJob.Status.RUNNING).count() == 0
    tasks.sweep_scoring()

    result = audit(initial, transitions_after=transitions_after, handoffs_after=handoffs_after)
    assert not result.problems, result.report()
