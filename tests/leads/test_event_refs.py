"""References checked once per statement on PostgreSQL instead of by a foreign key's query per
row (migration 0017, issue 15 import speed): the event's lead and content asset, the lead's
account and source, the stage history's lead. The same guarantees: no row names a row that does
not exist, whoever writes (ORM, COPY, raw SQL), and no named row is deleted while named.
Deleting through the ORM still cascades (events), clears (assets, accounts) and protects
(sources) as before. And the lead and stage-history tables keep no single-column index that a
composite one leads with."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import ProtectedError

from leads.models import EngagementEvent, Lead, StageTransition
from leads.services import facts
from leads.services.bulk import writer_for
from tests.factories import AccountFactory, LeadFactory, SourceFactory
from tests.metrics.factories import ContentAssetFactory

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's checks"),
]

AT = datetime(2026, 3, 2, 10, tzinfo=UTC)
LOCK = (7302, 3)


def raw_event(lead_id: int, asset_id: int | None = None, key: str = "") -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO leads_engagementevent (lead_id, kind, occurred_at, properties, "
            "content_asset_id, source_system, external_id, received_at) "
            "VALUES (%s, 'page_view', %s, '{}', %s, 't', %s, now())",
            [lead_id, AT, asset_id, key],
        )


def raw(sql: str, params: list) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def missing_lead_id() -> int:
    lead = LeadFactory()
    pk = lead.pk
    lead.delete()
    return pk


def test_an_event_naming_no_lead_fails_at_its_statement():
    with pytest.raises(IntegrityError, match=r"lead \d+ does not exist"), transaction.atomic():
        raw_event(missing_lead_id())


def test_an_event_naming_no_content_asset_fails():
    lead = LeadFactory()
    with pytest.raises(IntegrityError, match="content asset"), transaction.atomic():
        raw_event(lead.pk, asset_id=987_654_321)


def test_a_copy_naming_one_missing_lead_among_many_fails_whole():
    leads = LeadFactory.create_batch(3)
    rows = [
        facts.EventRow(lead_id=lead.pk, kind="page_view", occurred_at=AT, external_id=f"C{n}")
        for n, lead in enumerate(leads)
    ]
    rows.append(facts.EventRow(lead_id=missing_lead_id(), kind="page_view", occurred_at=AT))
    with pytest.raises(IntegrityError), transaction.atomic():
        writer = writer_for()
        facts.events_stage(events=rows, writer=writer)
        writer.insert_staged(EngagementEvent, facts.EVENT_FIELDS, order_by=["lead"])
        writer.close()
    assert not EngagementEvent.objects.exists()


def test_an_update_to_a_missing_lead_fails():
    lead = LeadFactory()
    raw_event(lead.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        EngagementEvent.objects.update(lead_id=missing_lead_id())


def test_deleting_a_lead_that_events_name_fails_unless_they_go_first():
    lead = LeadFactory()
    raw_event(lead.pk, key="K1")
    with pytest.raises(IntegrityError, match="still named"), transaction.atomic():
        raw("DELETE FROM leads_lead WHERE id = %s", [lead.pk])
    lead.delete()  # the ORM deletes its events first
    assert not EngagementEvent.objects.exists()


def test_deleting_an_asset_through_the_orm_clears_the_events_link_raw_sql_fails():
    lead, asset, other = LeadFactory(), ContentAssetFactory(), ContentAssetFactory()
    raw_event(lead.pk, asset_id=asset.pk)
    raw_event(lead.pk, asset_id=other.pk)
    with pytest.raises(IntegrityError), transaction.atomic():
        raw("DELETE FROM leads_contentasset WHERE id = %s", [other.pk])
    asset.delete()
    assert sorted(EngagementEvent.objects.values_list("content_asset_id", flat=True),
                  key=str) == sorted([None, other.pk], key=str)  # fmt: skip


def test_writing_events_holds_the_lock_lead_deletes_wait_for():
    lead = LeadFactory()
    with transaction.atomic():
        raw_event(lead.pk)
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT mode FROM pg_locks WHERE locktype = 'advisory' AND classid = %s "
                "AND objid = %s AND pid = pg_backend_pid()",
                list(LOCK),
            )
            assert [row[0] for row in cursor.fetchall()] == ["ShareLock"]


def test_a_lead_naming_no_account_or_source_fails_on_insert_and_on_update():
    with pytest.raises(IntegrityError, match=r"account \d+ does not exist"), transaction.atomic():
        Lead.objects.create(email="a@x.com", account_id=987_654_321)
    with pytest.raises(IntegrityError, match="source"), transaction.atomic():
        Lead.objects.bulk_create([Lead(email="b@x.com"), Lead(email="c@x.com", source_id=987_654)])
    lead = LeadFactory(account=AccountFactory())
    with pytest.raises(IntegrityError, match="account"), transaction.atomic():
        Lead.objects.filter(pk=lead.pk).update(account_id=987_654_321)
    Lead.objects.filter(pk=lead.pk).update(tier="A", account_id=None)  # no check needed


def test_accounts_and_sources_named_by_leads_are_cleared_protected_or_kept():
    account, source = AccountFactory(), SourceFactory()
    lead = LeadFactory(account=account, source=source)
    with pytest.raises(IntegrityError, match="still named"), transaction.atomic():
        raw("DELETE FROM leads_account WHERE id = %s", [account.pk])
    with pytest.raises(ProtectedError):
        source.delete()
    account.delete()  # the ORM clears the lead's account first
    lead.refresh_from_db()
    assert (lead.account_id, lead.source_id) == (None, source.pk)


def test_a_stage_history_row_naming_no_lead_fails():
    with pytest.raises(IntegrityError, match="lead"), transaction.atomic():
        StageTransition.objects.create(
            lead_id=missing_lead_id(), from_stage="", to_stage="lead", actor_type="system"
        )


@pytest.mark.parametrize("table", ["leads_engagementevent", "leads_stagetransition", "leads_lead"])
def test_no_foreign_key_a_bulk_write_checks_row_by_row_is_left(table):
    checked = {"leads_lead", "leads_contentasset", "leads_account", "leads_source"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT confrelid::regclass::text FROM pg_constraint WHERE contype = 'f' "
            "AND conrelid = %s::regclass",
            [table],
        )
        assert not {row[0] for row in cursor.fetchall()} & checked


def single_column_indexes(table: str) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.attname FROM pg_index x JOIN pg_attribute a "
            "ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] "
            "WHERE x.indrelid = %s::regclass AND x.indnatts = 1 AND x.indpred IS NULL",
            [table],
        )
        return {row[0] for row in cursor.fetchall()}


def test_no_single_column_index_that_a_composite_one_leads_with():
    lead = single_column_indexes("leads_lead")
    assert not lead & {"source_id", "campaign_id", "owner_id", "stage"}
    assert "to_stage" not in single_column_indexes("leads_stagetransition")
