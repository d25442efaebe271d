"""A publish's rescore, bucket by bucket: what each bucket reads, what it locks, and rows that
an incremental rescore changes under it."""

from unittest import mock

import pytest
from django.db import connection, transaction

from leads.models import Account, IcpVersion, Lead
from scoring import bulk, engine, services
from scoring.models import AccountFit, AccountFitBuild, LeadScoreState, ScoringModel
from tests.scoring.test_bulk_equivalence import (
    AS_OF_DAY,
    bulk_score,
    load,
    scores_by_engine,
    scores_in_database,
)

ICP = engine.IcpSpec(
    1,
    (
        engine.Criterion("Software", "industry", ("software",), points=25),
        engine.Criterion("Execs", "seniority", ("executive", "vp"), points=15),
        engine.Criterion("Students", "seniority", ("student",), is_exclusion=True),
    ),
    30,
    20,
    10,
)
RULES = {
    "page_view": engine.KindRule(1.0, 5),
    "pricing_page": engine.KindRule(8.0, 3),
    "demo_request": engine.KindRule(30.0, 1),
}
FIRST = engine.ScoringSpec(1, 30.0, RULES)
# New weights, same half-life and caps: the stored sums stay valid.
REWEIGHTED = engine.ScoringSpec(2, 30.0, {**RULES, "page_view": engine.KindRule(4.0, 5)})
# Another half-life: sums read under it are not valid for REWEIGHTED.
OTHER_HALF_LIFE = engine.ScoringSpec(3, 7.0, RULES)


def lead_rows(count: int) -> list[dict]:
    seniorities = ["executive", "vp", "student", "manager"]
    return [
        {
            "account": index % 2,
            "seniority": seniorities[index % 4],
            "title": "",
            "country": "US",
            "domain": "gmail.com" if index % 3 == 0 else "acme.io",
            "events": [("page_view", index % 40, 1 + index % 4), ("pricing_page", 3, index % 3)],
        }
        for index in range(count)
    ]


ACCOUNTS = [
    {
        "industry": "software",
        "employees": 200,
        "annual_revenue": None,
        "country": "US",
        "region": "NA",
        "technologies": [],
        "signals": [],
    },
    {
        "industry": "retail",
        "employees": 20,
        "annual_revenue": None,
        "country": "DE",
        "region": "EMEA",
        "technologies": [],
        "signals": [],
    },
]


def rows_read(table: str) -> int:
    """Rows this transaction has read from the table, by any scan."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0) "
            "FROM pg_stat_xact_user_tables WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()[0]


def plan_as_on_a_million_rows() -> None:
    """Plan as PostgreSQL does for a bucket of a big table: a range read by its index, and
    joins of 10,000 rows hashed (on a few rows it would choose nested loops, which hide a
    join's unbounded side)."""
    with connection.cursor() as cursor:
        for setting in ("enable_seqscan", "enable_nestloop", "enable_mergejoin"):
            cursor.execute(f"SET LOCAL {setting} = off")


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="plans, row counts and advisory locks of PostgreSQL"
)
def test_a_bucket_of_a_publish_reads_only_its_own_rows():
    """Each bucket's statements are bounded by its id range: a rescore of 10,000 leads once
    read the whole million-row table (a self-join, a LIMIT 1 that scanned from the table's
    start), so a publish read the table once per bucket."""
    leads = load(ACCOUNTS, lead_rows(80))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    model_id = ScoringModel.objects.get(number=1).pk
    lo, hi = leads[10].pk, leads[14].pk
    plan_as_on_a_million_rows()
    before = rows_read(LeadScoreState._meta.db_table)
    bulk.bring_up_to_date(
        lo,
        hi,
        icp=ICP,
        icp_version_id=icp_id,
        spec=REWEIGHTED,
        model_id=model_id + 1000,  # a new model's id: every row of the range is stale
        keep_sums_of=[model_id, model_id + 1000],
        as_of_day=AS_OF_DAY,
    )
    read = rows_read(LeadScoreState._meta.db_table) - before
    in_range = hi - lo + 1
    # Two passes over the range (what is stale, the rescore); the 80-row table is never read
    # whole.
    assert read <= 3 * in_range, read
    scored = scores_in_database(leads[10:15])
    assert scored == scores_by_engine(leads[10:15], ICP, REWEIGHTED)
    assert scores_in_database(leads[:10]) == scores_by_engine(leads[:10], ICP, FIRST)


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="plans, row counts and advisory locks of PostgreSQL"
)
def test_an_icp_publish_refits_a_bucket_reading_only_its_rows_and_mirrors_changed_tiers():
    leads = load(ACCOUNTS, lead_rows(80))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    model_id = ScoringModel.objects.get(number=1).pk
    richer = engine.IcpSpec(
        2,
        (engine.Criterion("Any software", "industry", ("software",), points=40), *ICP.criteria),
        30,
        20,
        10,
    )
    lo, hi = leads[20].pk, leads[29].pk
    plan_as_on_a_million_rows()
    before = rows_read(LeadScoreState._meta.db_table)
    bulk.bring_up_to_date(
        lo,
        hi,
        icp=richer,
        icp_version_id=icp_id + 1000,
        spec=FIRST,
        model_id=model_id,
        keep_sums_of=[model_id],
        as_of_day=AS_OF_DAY,
    )
    # What is stale, the refit (the rescore finds nothing left: same model, same day).
    assert rows_read(LeadScoreState._meta.db_table) - before <= 3 * (hi - lo + 1)
    assert scores_in_database(leads[20:30]) == scores_by_engine(leads[20:30], richer, FIRST)


@pytest.mark.django_db
def test_a_row_rescored_meanwhile_under_other_rules_is_redone_under_the_row_locks():
    """New weights need no row lock first: each row is computed from itself. But an incremental
    rescore that read the rules before the publish may commit sums read with another
    half-life while the bucket runs; such a row is not scored from those sums, and the bucket
    does its range again under the locks."""
    leads = load(ACCOUNTS, lead_rows(8))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    first_id = ScoringModel.objects.get(number=1).pk
    new_id, older_rules_id = first_id + 1000, first_id + 2000
    lo, hi = leads[0].pk, leads[-1].pk
    changed = leads[3].pk
    staleness = bulk.range_staleness
    calls = []

    def incremental_rescore_commits_meanwhile(*args, **kwargs):
        calls.append(args)
        result = staleness(*args, **kwargs)
        if len(calls) == 1:
            bulk.rescore_exactly(
                [changed],
                icp=ICP,
                icp_version_id=icp_id,
                spec=OTHER_HALF_LIFE,
                model_id=older_rules_id,
                as_of_day=AS_OF_DAY,
            )
        return result

    lock_rows = mock.Mock()
    with mock.patch.object(bulk, "range_staleness", incremental_rescore_commits_meanwhile):
        bulk.bring_up_to_date(
            lo,
            hi,
            icp=ICP,
            icp_version_id=icp_id,
            spec=REWEIGHTED,
            model_id=new_id,
            keep_sums_of=[first_id, new_id],
            as_of_day=AS_OF_DAY,
            lock_rows=lock_rows,
        )
    lock_rows.assert_called_once_with()
    assert scores_in_database(leads) == scores_by_engine(leads, ICP, REWEIGHTED)
    state = LeadScoreState.objects.get(lead_id=changed)
    assert (state.sums_model_id, state.scoring_model_id) == (new_id, new_id)


@pytest.mark.django_db
def test_new_weights_lock_no_row_first_but_a_new_half_life_does():
    leads = load(ACCOUNTS, lead_rows(6))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    first_id = ScoringModel.objects.get(number=1).pk
    lo, hi = leads[0].pk, leads[-1].pk
    lock_rows = mock.Mock()
    common = {"icp": ICP, "icp_version_id": icp_id, "as_of_day": AS_OF_DAY}
    bulk.bring_up_to_date(
        lo,
        hi,
        spec=REWEIGHTED,
        model_id=first_id + 1000,
        keep_sums_of=[first_id, first_id + 1000],
        lock_rows=lock_rows,
        **common,
    )
    lock_rows.assert_not_called()
    assert scores_in_database(leads) == scores_by_engine(leads, ICP, REWEIGHTED)
    bulk.bring_up_to_date(
        lo,
        hi,
        spec=OTHER_HALF_LIFE,
        model_id=first_id + 2000,
        keep_sums_of=[first_id + 2000],
        lock_rows=lock_rows,
        **common,
    )
    lock_rows.assert_called_once_with()
    assert scores_in_database(leads) == scores_by_engine(leads, ICP, OTHER_HALF_LIFE)


@pytest.mark.django_db
@pytest.mark.skipif(
    connection.vendor != "postgresql", reason="plans, row counts and advisory locks of PostgreSQL"
)
def test_recording_events_holds_the_rescore_buckets_of_its_leads_shared(monkeypatch):
    """Ingestion waits for a bucket being rescored (and keeps one from starting) on the
    bucket's advisory lock, not on its rows: the bucket's UPDATE locks rows in its plan's
    order, the mark-dirty upsert in id order, and the two must never each hold a row the
    other waits for."""
    monkeypatch.setattr(services, "BUCKET_SIZE", 10)
    leads = load([], lead_rows(25))
    ids = [leads[0].pk, leads[24].pk]
    with transaction.atomic():
        services.leads_mark_dirty(lead_ids=ids)
        with connection.cursor() as cursor:
            # The buckets' namespace only: the write layer takes locks of its own too.
            cursor.execute(
                "SELECT classid, objid, mode, granted FROM pg_locks "
                "WHERE locktype = 'advisory' AND pid = pg_backend_pid() AND classid = %s "
                "ORDER BY objid",
                [services.ADVISORY_NAMESPACE],
            )
            held = cursor.fetchall()
    buckets = sorted({lead_id // 10 for lead_id in ids})
    assert held == [(services.ADVISORY_NAMESPACE, bucket, "ShareLock", True) for bucket in buckets]


def row_locked_or_changed(table: str, pk: int) -> bool:
    """Whether this transaction (or one of its savepoints) has locked or changed the row since
    it was inserted: PostgreSQL stamps the locker's transaction id in the row's ``xmax``."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT xmax::text <> '0' FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks of PostgreSQL")
def test_a_bucket_locks_its_chunk_but_not_the_job_so_two_workers_rescore_side_by_side(
    monkeypatch,
):
    """Each worker runs a chunk of the same job: a bucket's transaction holds its own chunk row,
    never the job's (locking the job row queued every bucket of one worker behind the other's,
    ~10 s of a million-lead ICP publish on two workers)."""
    leads = load(ACCOUNTS, lead_rows(6))
    bulk_score(leads, ICP, FIRST)
    job = services.rescore_job_create(reason="manual")
    [chunk] = job.chunks.all()
    held = []
    bring_up_to_date = bulk.bring_up_to_date

    def spy(*args, **kwargs):
        held.append(
            (
                row_locked_or_changed("scoring_rescorechunk", chunk.pk),
                row_locked_or_changed("scoring_rescorejob", job.pk),
            )
        )
        return bring_up_to_date(*args, **kwargs)

    monkeypatch.setattr(bulk, "bring_up_to_date", spy)
    services.rescore_chunk_run(chunk_id=chunk.pk, apply_moves=False)
    assert held == [(True, False)]
    job.refresh_from_db()
    assert job.status == job.Status.DONE


@pytest.mark.django_db
def test_a_bucket_counts_its_leads_once_for_its_progress():
    """The chunk's progress takes the range's lead count from the bucket (which counts it to
    find missing score states) instead of counting the leads again: a count of 10,000 ids on
    the lead table per bucket, ~1 s of a million-lead publish."""
    from django.test.utils import CaptureQueriesContext

    leads = load(ACCOUNTS, lead_rows(6))
    bulk_score(leads, ICP, FIRST)
    job = services.rescore_job_create(reason="manual")
    [chunk] = job.chunks.all()
    with CaptureQueriesContext(connection) as queries:
        services.rescore_chunk_run(chunk_id=chunk.pk, apply_moves=False)
    lead_counts = [
        query["sql"]
        for query in queries.captured_queries
        if "COUNT(*)" in query["sql"] and "leads_lead" in query["sql"]
    ]
    assert len(lead_counts) == 1, lead_counts
    chunk.refresh_from_db()
    assert chunk.processed == 6


RICHER = engine.IcpSpec(
    2,
    (
        engine.Criterion("Any software", "industry", ("software",), points=40),
        engine.Criterion("Home market", "country", ("us",), points=5),
        *ICP.criteria,
    ),
    30,
    20,
    10,
)


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row counts of PostgreSQL")
def test_an_icp_publish_reads_each_account_once_not_once_per_lead():
    """The buckets of an ICP publish join each account's part of the fit, computed once for the
    version: looking every lead's account up (scattered reads of the wide account table) was
    most of a million-lead ICP publish."""
    accounts = [
        {**ACCOUNTS[index % 2], "country": ["US", "", "DE"][index % 3]} for index in range(6)
    ]
    leads = load(accounts, [{**row, "account": index % 7 if index % 7 < 6 else None}
                            for index, row in enumerate(lead_rows(60))])  # fmt: skip
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    model_id = ScoringModel.objects.get(number=1).pk
    new_icp_id = icp_id + 1000
    before = rows_read("leads_account")
    for lo, hi in [(leads[0].pk, leads[29].pk), (leads[30].pk, leads[-1].pk)]:
        bulk.bring_up_to_date(
            lo,
            hi,
            icp=RICHER,
            icp_version_id=new_icp_id,
            spec=FIRST,
            model_id=model_id,
            keep_sums_of=[model_id],
            as_of_day=AS_OF_DAY,
        )
    assert rows_read("leads_account") - before == len(accounts)  # the build's one pass
    assert scores_in_database(leads) == scores_by_engine(leads, RICHER, FIRST)
    assert list(AccountFitBuild.objects.values_list("icp_version_id", "accounts")) == [
        (new_icp_id, len(accounts))
    ]


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="row counts of PostgreSQL")
def test_a_bucket_reads_the_fits_of_its_own_leads_accounts_only():
    """A bucket's refit probes the fits of the accounts its leads belong to: joined to every
    account's fit, each bucket of a million-lead publish hashed its leads and scanned all
    285,715 fits into the hash (the join took 60-86 ms; probed, 29-35 ms)."""
    leads = load(ACCOUNTS, lead_rows(200))
    others = [Account(name=f"Other {n}", domain=f"other{n}.example", **ACCOUNTS[n % 2])
              for n in range(3_000)]  # fmt: skip
    Account.objects.bulk_create(others)
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    new_icp_id = icp_id + 1000
    assert bulk.account_fits_build(icp=RICHER, icp_version_id=new_icp_id) == 3_002
    plan_as_on_a_million_rows()
    before = rows_read("scoring_accountfit")
    bulk.refit_in_sql(
        leads[0].pk, leads[-1].pk, icp=RICHER, icp_version_id=new_icp_id, spec=FIRST,
        account_fits=True,
    )  # fmt: skip
    assert rows_read("scoring_accountfit") - before == 2  # the two accounts of these leads
    assert scores_in_database(leads) == scores_by_engine(leads, RICHER, FIRST)


@pytest.mark.django_db
def test_account_fits_are_kept_for_the_version_in_force_only():
    leads = load(ACCOUNTS, lead_rows(6))
    icp_id = IcpVersion.objects.get(number=1).pk
    bulk_score(leads, ICP, FIRST, account_fits=True)
    assert set(AccountFit.objects.values_list("icp_version_id", flat=True)) == {icp_id}
    bulk.account_fits_build(icp=RICHER, icp_version_id=icp_id + 1000)
    assert list(AccountFitBuild.objects.values_list("icp_version_id", flat=True)) == [icp_id + 1000]
    assert AccountFit.objects.filter(icp_version_id=icp_id + 1000).count() == len(ACCOUNTS)
    assert not AccountFit.objects.filter(icp_version_id=icp_id).exists()


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="advisory locks of PostgreSQL")
def test_a_bucket_looks_accounts_up_itself_while_another_transaction_holds_the_fits_lock():
    """Never waits for another build (or for buckets still joining the fits of an older
    version): the bucket refits from the accounts, exactly."""
    leads = load(ACCOUNTS, lead_rows(10))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    model_id = ScoringModel.objects.get(number=1).pk
    with mock.patch.object(bulk, "_try_account_fits_lock", return_value=False) as lock:
        bulk.bring_up_to_date(
            leads[0].pk,
            leads[-1].pk,
            icp=RICHER,
            icp_version_id=icp_id + 1000,
            spec=FIRST,
            model_id=model_id,
            keep_sums_of=[model_id],
            as_of_day=AS_OF_DAY,
        )
    lock.assert_called_once_with(shared=False)
    assert not AccountFitBuild.objects.exists()
    assert scores_in_database(leads) == scores_by_engine(leads, RICHER, FIRST)


@pytest.mark.django_db
def test_an_account_changed_after_the_fits_were_built_refits_its_leads_from_the_account():
    """The fits are a snapshot of the publish: an account written later marks its leads, whose
    incremental rescore reads the account itself."""
    leads = load(ACCOUNTS, lead_rows(6))
    bulk_score(leads, ICP, FIRST, account_fits=True)
    Account = leads[0].account.__class__
    Account.objects.filter(pk=leads[1].account_id).update(industry="software")
    bulk.rescore_exactly(
        [lead.pk for lead in leads],
        icp=ICP,
        icp_version_id=IcpVersion.objects.get(number=1).pk,
        spec=FIRST,
        model_id=ScoringModel.objects.get(number=1).pk,
        as_of_day=AS_OF_DAY,
    )
    assert scores_in_database(leads) == scores_by_engine(leads, ICP, FIRST)
    assert {state.fit_points for state in LeadScoreState.objects.all()} >= {25}


@pytest.mark.django_db
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the accounts' write trigger")
def test_account_fits_built_before_an_account_changed_are_not_used_again():
    # The fits are a snapshot of the accounts: a new account, or one edited, after the build
    # makes it stale, so the next refit under the same version builds them again (a full
    # rescore refitted the leads of a new account as if they had none: tier C instead of A).
    leads = load(ACCOUNTS, lead_rows(4))
    bulk_score(leads, ICP, FIRST, account_fits=True)
    icp_id = IcpVersion.objects.get(number=1).pk
    assert bulk.account_fits_built(icp_id)

    account = Account.objects.create(name="New", domain="new.example", **ACCOUNTS[0])
    assert not bulk.account_fits_built(icp_id)
    more = load([], [{**row, "domain": "new.example"} for row in lead_rows(2)])
    Lead.objects.filter(pk__in=[lead.pk for lead in more]).update(account=account)
    more = list(Lead.objects.filter(pk__in=[lead.pk for lead in more]).order_by("pk"))
    assert bulk.account_fits_held(icp=ICP, icp_version_id=icp_id)  # built again
    lo, hi = leads[0].pk, more[-1].pk
    model_id = ScoringModel.objects.get(number=1).pk
    bulk.ensure_states(lo, hi)
    bulk.reread_sums(lo, hi, spec=FIRST, model_id=model_id, as_of_day=AS_OF_DAY)
    bulk.refit_in_sql(lo, hi, icp=ICP, icp_version_id=icp_id, spec=FIRST, account_fits=True)
    bulk.rescore_from_sums(lo, hi, spec=FIRST, model_id=model_id, as_of_day=AS_OF_DAY)
    everyone = [*leads, *more]
    assert scores_in_database(everyone) == scores_by_engine(everyone, ICP, FIRST)

    assert bulk.account_fits_built(icp_id)
    Account.objects.filter(pk=account.pk).update(employees=10)
    assert not bulk.account_fits_built(icp_id)


def lead_row_writes() -> tuple[int, int]:
    """Rows of the lead table this transaction updated, and how many of them in place (HOT)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables WHERE relname = %s",
            [Lead._meta.db_table],
        )
        return cursor.fetchone()


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's in-place updates")
def test_a_refit_writes_changed_tiers_onto_the_lead_rows_in_place():
    """No index holds the tier and lead pages keep room (leads 0021), so the tiers a publish
    mirrors onto the leads are rewritten on their page with no index entries: with the tier
    indexed, each was a new row version elsewhere and an entry in each of the lead's indexes."""
    leads = load(ACCOUNTS, lead_rows(40))
    bulk_score(leads, ICP, FIRST)
    icp_id = IcpVersion.objects.get(number=1).pk
    model_id = ScoringModel.objects.get(number=1).pk
    stricter = engine.IcpSpec(2, ICP.criteria, 100, 90, 80)  # every lead falls to tier D
    with connection.cursor() as cursor:
        # The room a page keeps is for the next version of its rows; rows deleted by earlier
        # tests in this database (autovacuum off) take it until a vacuum frees it.
        cursor.execute(f"VACUUM {Lead._meta.db_table}")
    software_executives = [leads[0], leads[16], leads[32]]  # tier A under ICP
    assert {lead.pk: "A" for lead in software_executives} == dict(
        Lead.objects.filter(pk__in=[lead.pk for lead in software_executives]).values_list(
            "pk", "tier"
        )
    )
    with transaction.atomic():
        updated, in_place = lead_row_writes()
        bulk.rescore_exactly(
            [lead.pk for lead in software_executives],
            icp=stricter,
            icp_version_id=icp_id + 1000,
            spec=FIRST,
            model_id=model_id,
            as_of_day=AS_OF_DAY,
        )
        updated_now, in_place_now = lead_row_writes()
    assert set(
        Lead.objects.filter(pk__in=[lead.pk for lead in software_executives]).values_list(
            "tier", flat=True
        )
    ) == {"D"}
    assert (updated_now - updated, in_place_now - in_place) == (3, 3)
