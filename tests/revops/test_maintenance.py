"""Table upkeep after bulk writes (revops.maintenance): statistics refreshed, and a VACUUM when
autovacuum will not come, outside any transaction."""

import json
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from leads.models import Lead
from revops import maintenance

pytestmark = [
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL upkeep"),
]


def counters(table: str) -> tuple[int, int]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT vacuum_count, analyze_count FROM pg_stat_user_tables WHERE relname = %s",
            [table],
        )
        return cursor.fetchone()


def test_vacuum_runs_only_when_wanted_and_never_inside_a_transaction(settings):
    from django.db import transaction

    settings.MAINTAIN_VACUUM = "always"
    vacuumed, analyzed = counters("leads_lead")
    assert maintenance.tables_maintain([Lead]) == "VACUUM (ANALYZE)"
    assert counters("leads_lead") == (vacuumed + 1, analyzed + 1)
    settings.MAINTAIN_VACUUM = "never"
    assert maintenance.tables_maintain([Lead]) == "ANALYZE"
    assert counters("leads_lead") == (vacuumed + 1, analyzed + 2)
    settings.MAINTAIN_VACUUM = "auto"
    with connection.cursor() as cursor:
        cursor.execute("SHOW autovacuum")
        assert maintenance.vacuum_wanted() is (cursor.fetchone()[0] == "off")
    settings.MAINTAIN_AFTER_ROWS = 100
    with transaction.atomic():
        assert maintenance.tables_maintain([Lead]) == ""
    assert maintenance.after_bulk_write([Lead], 99) == ""
    assert counters("leads_lead") == (vacuumed + 1, analyzed + 2)


def test_a_big_import_refreshes_the_statistics_of_what_it_wrote(settings, tmp_path):
    settings.MAINTAIN_AFTER_ROWS = 2
    settings.MAINTAIN_VACUUM = "never"
    path = tmp_path / "leads.csv"
    path.write_text("Email,First Name\nada@example.com,Ada\ngrace@example.com,Grace\n")
    mapping = tmp_path / "mapping.json"
    mapping.write_text(
        json.dumps({"kind": "leads", "fields": {"email": "Email", "first_name": "First Name"}})
    )
    _vacuumed, analyzed = counters("leads_lead")
    call_command("import_csv", "leads", str(path), "--mapping", str(mapping), stdout=StringIO())
    assert Lead.objects.count() == 2
    assert counters("leads_lead")[1] == analyzed + 1


def test_tidy_vacuums_the_tables_updates_churned_and_only_when_wanted(settings):
    from tests.factories import LeadFactory

    leads = LeadFactory.create_batch(300)
    Lead.objects.filter(pk__in=[lead.pk for lead in leads]).update(first_name="Again")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    settings.MAINTAIN_VACUUM = "never"
    assert maintenance.tables_tidy() == {"vacuumed": [], "analyzed": []}
    settings.MAINTAIN_VACUUM = "always"
    vacuumed, _analyzed = counters("leads_lead")
    done = maintenance.tables_tidy()
    assert "leads_lead" in done["vacuumed"]
    assert counters("leads_lead")[0] == vacuumed + 1
    assert "leads_lead" not in maintenance.tables_tidy()["vacuumed"]  # nothing dead any more


def test_tidy_analyzes_a_table_holding_rows_that_was_never_analyzed(settings):
    """A copied or restored database starts its activity counters from zero: a table loaded
    without an ANALYZE would keep no statistics for good."""
    from leads.models import ObjectionTag

    settings.MAINTAIN_VACUUM = "always"
    maintenance.tables_tidy()  # whatever earlier tests left
    ObjectionTag.objects.create(key="tidy-probe", label="Tidy probe")
    with connection.cursor() as cursor:
        # As after a bare load: rows, no statistics.
        cursor.execute(
            "UPDATE pg_class SET reltuples = -1 WHERE oid = 'leads_objectiontag'::regclass"
        )
    assert "leads_objectiontag" in maintenance.tables_tidy()["analyzed"]
    assert "leads_objectiontag" not in maintenance.tables_tidy()["analyzed"]  # analyzed now


def test_tidy_analyzes_a_trigger_kept_table_filled_after_an_empty_analyze(settings):
    """The narrow tables kept by triggers are analyzed empty by their migration; filled since,
    in a copied database whose counters say nothing changed, they held rows and no column
    statistics."""
    from leads.choices import ActivityAction, ActorType
    from leads.models import LeadActivity, ObjectionTag
    from tests.factories import LeadFactory

    settings.MAINTAIN_VACUUM = "always"
    maintenance.tables_tidy()
    touch = LeadActivity.objects.create(
        lead=LeadFactory(), action=ActivityAction.TOUCHED, actor_type=ActorType.USER
    )
    touch.objections.set(ObjectionTag.objects.all()[:2])
    with connection.cursor() as cursor:
        # As in a copy of a seeded database: analyzed while empty, counters from zero.
        cursor.execute("ANALYZE leads_heardobjection")
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = 'leads_heardobjection'::regclass")
        cursor.execute(
            "UPDATE pg_class SET reltuples = 0 WHERE oid = 'leads_heardobjection'::regclass"
        )
        cursor.execute(
            "SELECT pg_stat_reset_single_table_counters('leads_heardobjection'::regclass)"
        )
    assert "leads_heardobjection" in maintenance.tables_tidy()["analyzed"]
    assert "leads_heardobjection" not in maintenance.tables_tidy()["analyzed"]  # analyzed now


def test_tidy_vacuums_a_table_after_many_inserts(settings):
    """As autovacuum's insert threshold: an insert-only table gets its visibility map (the
    index-only scans of a trigger-kept table such as leads_contentevent)."""
    from leads.models import ObjectionTag

    settings.MAINTAIN_VACUUM = "always"
    maintenance.tables_tidy()
    ObjectionTag.objects.bulk_create(
        ObjectionTag(key=f"probe-{n}", label=f"Probe {n}") for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_force_next_flush()")
    assert "leads_objectiontag" in maintenance.tables_tidy()["vacuumed"]


def _mark_hours(count: int) -> None:
    """``count`` hours of lead changes marked for the rollup refresh, as the triggers mark them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO metrics_rollupdirty (fact, hour) SELECT 'cohort', "
            "date_trunc('hour', now()) - make_interval(hours => n) FROM generate_series(1, %s) n",
            [count],
        )


def test_a_refresh_that_took_many_marks_vacuums_the_mark_tables_when_wanted(settings):
    from metrics import rollups

    settings.MAINTAIN_VACUUM = "always"
    vacuumed = counters("metrics_rollupdirty")[0]
    _mark_hours(rollups.MARKS_VACUUM_PAST)
    rollups.rollups_refresh()
    assert counters("metrics_rollupdirty")[0] == vacuumed + 1
    assert counters("metrics_opendealdirty")[0] >= 1
    # A handful of marks, or a server whose autovacuum comes: no VACUUM.
    _mark_hours(10)
    rollups.rollups_refresh()
    settings.MAINTAIN_VACUUM = "never"
    _mark_hours(rollups.MARKS_VACUUM_PAST)
    rollups.rollups_refresh()
    assert counters("metrics_rollupdirty")[0] == vacuumed + 1
