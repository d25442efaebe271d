"""Cheaper writes of events, leads and stage history (issue 15, CSV import speed).

1. Five lead indexes and two stage-history indexes that a composite index already leads with
   go: ``source``, ``campaign``, ``owner`` (``lead_source_created``, ``lead_campaign_created``,
   ``lead_owner_stage``), ``stage`` and its ``LIKE`` twin (``lead_stage_entered``), and the
   history's ``to_stage`` pair (``transition_to_at``). Every new lead wrote 15 index entries,
   now 10; every history row 8, now 6. The plans that used them (EXPLAIN on a 1M-lead copy):
   whole-table counts by one of those columns read the composite index instead (index-only
   either way: 14–43 ms → 16–66 ms); the paged, ordered reads kept their plans.

2. The event table's foreign keys (lead, content asset) become statement-level checks.
   PostgreSQL checks a foreign key with one query per inserted row (~8 µs each: 1.7 s of a
   200k-event import, more than the key table's insert). Here one statement per write checks
   every distinct lead and asset of the rows written (transition tables, as the key table's
   triggers in 0015). What the foreign key's row locks did, a transaction-level advisory lock
   does: the check takes it shared, a DELETE of leads or content assets takes it exclusively
   before deleting and then refuses to delete a row events still name. So a lead cannot vanish
   under an uncommitted event, nor be deleted while events name it, whoever writes (ORM, COPY,
   the admin, raw SQL). Differences from the foreign key: the check runs at the end of each
   statement, not at commit (Django deletes events before their lead, so nothing relied on the
   deferral), and a lead delete waits for transactions that inserted events to end. Writes to
   a partition directly (``leads.partitions``: rows moved out of the default partition,
   retention) are not checked: they move rows that were. The model keeps the relations
   (``db_constraint=False``): Django still cascades and joins as before.

SQLite keeps its foreign keys (state change only there).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

EVENTS = "leads_engagementevent"
# pg_advisory_xact_lock(namespace, key): scoring's buckets use 7301, the beat leader (7302, 1),
# rotations (7302, 2).
LOCK = "7302, 3"
REFERENCES = (("lead_id", "leads_lead"), ("content_asset_id", "leads_contentasset"))

PG_CHECKS = f"""
CREATE FUNCTION leads_event_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    -- Held until commit: no lead or asset checked here can be deleted before then.
    PERFORM pg_advisory_xact_lock_shared({LOCK});
    SELECT n.lead_id INTO missing FROM (SELECT DISTINCT lead_id FROM new_events) n
    WHERE NOT EXISTS (SELECT 1 FROM leads_lead l WHERE l.id = n.lead_id) LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('insert or update on table "{EVENTS}": lead %s does not exist',
                             missing),
            CONSTRAINT = 'leads_event_lead_check';
    END IF;
    SELECT n.content_asset_id INTO missing
    FROM (SELECT DISTINCT content_asset_id FROM new_events
          WHERE content_asset_id IS NOT NULL) n
    WHERE NOT EXISTS (SELECT 1 FROM leads_contentasset a WHERE a.id = n.content_asset_id)
    LIMIT 1;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format(
                'insert or update on table "{EVENTS}": content asset %s does not exist',
                missing),
            CONSTRAINT = 'leads_event_content_asset_check';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_event_refs_insert AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_check();
CREATE TRIGGER leads_event_refs_update AFTER UPDATE ON {EVENTS}
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_check();

CREATE FUNCTION leads_event_refs_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Waits for every transaction that wrote events to end, and keeps new ones out until
    -- this one ends: the check after the delete then sees every event that names a row.
    PERFORM pg_advisory_xact_lock({LOCK});
    RETURN NULL;
END $$;
CREATE FUNCTION leads_event_refs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN
    IF TG_TABLE_NAME = 'leads_lead' THEN
        SELECT o.id INTO named FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM {EVENTS} e WHERE e.lead_id = o.id) LIMIT 1;
    ELSE
        SELECT o.id INTO named FROM old_rows o
        WHERE EXISTS (SELECT 1 FROM {EVENTS} e WHERE e.content_asset_id = o.id) LIMIT 1;
    END IF;
    IF FOUND THEN
        RAISE foreign_key_violation USING
            MESSAGE = format('delete on table "%s": row %s is still named by "{EVENTS}"',
                             TG_TABLE_NAME, named),
            CONSTRAINT = 'leads_event_' || TG_TABLE_NAME || '_check';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_event_refs_lock BEFORE DELETE ON leads_lead
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_lock();
CREATE TRIGGER leads_event_refs_deleted AFTER DELETE ON leads_lead
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_deleted();
CREATE TRIGGER leads_event_refs_lock BEFORE DELETE ON leads_contentasset
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_lock();
CREATE TRIGGER leads_event_refs_deleted AFTER DELETE ON leads_contentasset
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_refs_deleted();
"""

PG_DROP_CHECKS = """
DROP FUNCTION IF EXISTS leads_event_refs_check() CASCADE;
DROP FUNCTION IF EXISTS leads_event_refs_lock() CASCADE;
DROP FUNCTION IF EXISTS leads_event_refs_deleted() CASCADE;
"""


# (index, table, column): the single-column indexes Django made for these fields (db_index), and
# on PostgreSQL the ``LIKE`` twin of the slugs'.
INDEXES = (
    ("leads_lead_source_id_a5f74de9", "leads_lead", "source_id"),
    ("leads_lead_campaign_id_5dd7a82a", "leads_lead", "campaign_id"),
    ("leads_lead_owner_id_1f4568d0", "leads_lead", "owner_id"),
    ("leads_lead_stage_d7dbd1fd", "leads_lead", "stage"),
    ("leads_stagetransition_to_stage_dea6c01d", "leads_stagetransition", "to_stage"),
)
LIKE_INDEXES = (
    ("leads_lead_stage_d7dbd1fd_like", "leads_lead", "stage"),
    ("leads_stagetransition_to_stage_dea6c01d_like", "leads_stagetransition", "to_stage"),
)


def indexes_dropped(apps, schema_editor):
    # Only the indexes: an AlterField of a foreign key's db_index also drops and re-adds the
    # constraint, which checks every row again (a million leads).
    with schema_editor.connection.cursor() as cursor:
        for name, _table, _column in (*INDEXES, *LIKE_INDEXES):
            cursor.execute(f"DROP INDEX IF EXISTS {name}")


def indexes_created(apps, schema_editor):
    postgresql = schema_editor.connection.vendor == "postgresql"
    with schema_editor.connection.cursor() as cursor:
        for name, table, column in INDEXES:
            cursor.execute(f"CREATE INDEX {name} ON {table} ({column})")
        for name, table, column in LIKE_INDEXES if postgresql else ():
            cursor.execute(f"CREATE INDEX {name} ON {table} ({column} varchar_pattern_ops)")


def _foreign_keys(cursor, column: str, table: str) -> list[str]:
    cursor.execute(
        """
        SELECT k.conname FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
        WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND k.conparentid = 0
          AND k.confrelid = %s::regclass AND a.attname = %s
        """,
        [EVENTS, table, column],
    )
    return [row[0] for row in cursor.fetchall()]


def checks_instead_of_foreign_keys(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for column, table in REFERENCES:
            for name in _foreign_keys(cursor, column, table):
                cursor.execute(f"ALTER TABLE {EVENTS} DROP CONSTRAINT {quote(name)}")
        cursor.execute(PG_CHECKS)


def foreign_keys_instead_of_checks(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(PG_DROP_CHECKS)
        for column, table in REFERENCES:
            cursor.execute(
                f"ALTER TABLE {EVENTS} ADD CONSTRAINT {EVENTS}_{column}_fk_{table}_id "
                f"FOREIGN KEY ({column}) REFERENCES {table} (id) DEFERRABLE INITIALLY DEFERRED"
            )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0016_content_events"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        # The model's state only: the database changes are the two operations below.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="lead",
                    name="source",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="leads",
                        to="leads.source",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="campaign",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="leads",
                        to="leads.campaign",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="owner",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="owned_leads",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="stage",
                    field=models.SlugField(db_index=False, default="lead", max_length=30),
                ),
                migrations.AlterField(
                    model_name="stagetransition",
                    name="to_stage",
                    field=models.SlugField(db_index=False, max_length=30),
                ),
                migrations.AlterField(
                    model_name="engagementevent",
                    name="lead",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="events",
                        to="leads.lead",
                    ),
                ),
                migrations.AlterField(
                    model_name="engagementevent",
                    name="content_asset",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="events",
                        to="leads.contentasset",
                    ),
                ),
            ],
        ),
        # Not inside SeparateDatabaseAndState: there ``sqlmigrate`` would run them for real.
        migrations.RunPython(indexes_dropped, indexes_created),
        migrations.RunPython(checks_instead_of_foreign_keys, foreign_keys_instead_of_checks),
    ]
