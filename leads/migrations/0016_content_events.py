"""Content-linked engagement events in a narrow table of their own, kept by triggers on the
event table, which also keeps those of retired months (it absorbs ``FoldedContentEvent``).

The content KPIs read a lead's linked events over all time; on the partitioned event table
(0015) that probes every month partition per lead (docs/scaling.md, "Content reads over
partitions"). ``leads_contentevent`` holds (event id, lead, asset, instant, kind) of each event
with an asset, indexed by lead and instant.

Triggers, in the writer's transaction whoever writes (ORM, COPY, admin, raw SQL): on PostgreSQL
statement-level with transition tables, as the key table's (0015); on SQLite row-level. Writes
to a partition directly (``leads.partitions``: moving rows out of the default partition,
retention's DROP and DELETE) fire none of them, by design: moved rows keep their row, retired
ones stay. The rows of ``FoldedContentEvent`` move in with negative ids (their event ids were
not kept). Note for SQLite: a later migration that rebuilds the event table there drops its
triggers and must recreate them.
"""

import django.db.models.deletion
from django.db import migrations, models

import leads.choices

EVENTS = "leads_engagementevent"
CONTENT = "leads_contentevent"
FOLDED = "leads_foldedcontentevent"
COLUMNS = "event_id, lead_id, content_asset_id, occurred_at, kind"

PG_TRIGGERS = f"""
CREATE FUNCTION leads_content_events_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {CONTENT} ({COLUMNS})
    SELECT id, lead_id, content_asset_id, occurred_at, kind FROM new_events
    WHERE content_asset_id IS NOT NULL;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_content_events_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {CONTENT} c USING old_events o
    WHERE o.content_asset_id IS NOT NULL AND c.event_id = o.id;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_content_events_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Events unlinked (or whose id changed): their rows go.
    DELETE FROM {CONTENT} c USING old_events o
    WHERE o.content_asset_id IS NOT NULL AND c.event_id = o.id
      AND NOT EXISTS (SELECT 1 FROM new_events n
                      WHERE n.id = o.id AND n.content_asset_id IS NOT NULL);
    -- Events linked now: their rows follow them (only changed ones are written).
    INSERT INTO {CONTENT} AS c ({COLUMNS})
    SELECT id, lead_id, content_asset_id, occurred_at, kind FROM new_events
    WHERE content_asset_id IS NOT NULL
    ON CONFLICT (event_id) DO UPDATE
    SET lead_id = EXCLUDED.lead_id, content_asset_id = EXCLUDED.content_asset_id,
        occurred_at = EXCLUDED.occurred_at, kind = EXCLUDED.kind
    WHERE (c.lead_id, c.content_asset_id, c.occurred_at, c.kind)
          IS DISTINCT FROM (EXCLUDED.lead_id, EXCLUDED.content_asset_id,
                            EXCLUDED.occurred_at, EXCLUDED.kind);
    RETURN NULL;
END $$;
CREATE FUNCTION leads_content_events_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {CONTENT};
    RETURN NULL;
EXCEPTION WHEN object_in_use THEN
    -- The same TRUNCATE names this table too (Django's flush): it is empty already.
    RETURN NULL;
END $$;
CREATE TRIGGER leads_content_events_insert AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_content_events_insert();
CREATE TRIGGER leads_content_events_delete AFTER DELETE ON {EVENTS}
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_content_events_delete();
CREATE TRIGGER leads_content_events_update AFTER UPDATE ON {EVENTS}
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_content_events_update();
CREATE TRIGGER leads_content_events_truncate AFTER TRUNCATE ON {EVENTS}
    FOR EACH STATEMENT EXECUTE FUNCTION leads_content_events_truncate();
"""
PG_DROP_TRIGGERS = """
DROP FUNCTION IF EXISTS leads_content_events_insert() CASCADE;
DROP FUNCTION IF EXISTS leads_content_events_delete() CASCADE;
DROP FUNCTION IF EXISTS leads_content_events_update() CASCADE;
DROP FUNCTION IF EXISTS leads_content_events_truncate() CASCADE;
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER leads_content_events_insert AFTER INSERT ON {EVENTS}
    WHEN NEW.content_asset_id IS NOT NULL BEGIN
        INSERT INTO {CONTENT} ({COLUMNS})
        VALUES (NEW.id, NEW.lead_id, NEW.content_asset_id, NEW.occurred_at, NEW.kind);
    END""",
    f"""CREATE TRIGGER leads_content_events_delete AFTER DELETE ON {EVENTS}
    WHEN OLD.content_asset_id IS NOT NULL BEGIN
        DELETE FROM {CONTENT} WHERE event_id = OLD.id;
    END""",
    f"""CREATE TRIGGER leads_content_events_update
    AFTER UPDATE OF id, lead_id, content_asset_id, occurred_at, kind ON {EVENTS}
    WHEN OLD.content_asset_id IS NOT NULL OR NEW.content_asset_id IS NOT NULL BEGIN
        DELETE FROM {CONTENT} WHERE event_id = OLD.id;
        INSERT INTO {CONTENT} ({COLUMNS})
        SELECT NEW.id, NEW.lead_id, NEW.content_asset_id, NEW.occurred_at, NEW.kind
        WHERE NEW.content_asset_id IS NOT NULL;
    END""",
]
SQLITE_TRIGGER_NAMES = ("insert", "delete", "update")


def fill(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_TRIGGERS)
        else:
            for sql in SQLITE_TRIGGERS:
                cursor.execute(sql)
        cursor.execute(
            f"INSERT INTO {CONTENT} ({COLUMNS}) "
            f"SELECT id, lead_id, content_asset_id, occurred_at, kind FROM {EVENTS} "
            "WHERE content_asset_id IS NOT NULL"
        )
        cursor.execute(
            f"INSERT INTO {CONTENT} ({COLUMNS}) "
            f"SELECT -id, lead_id, content_asset_id, occurred_at, kind FROM {FOLDED}"
        )
        if connection.vendor == "postgresql":
            cursor.execute(f"ANALYZE {CONTENT}")


def unfill(apps, schema_editor):
    """Back to ``FoldedContentEvent``: the rows of events no longer in the event table (those
    retention retired) move there."""
    connection = schema_editor.connection
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_DROP_TRIGGERS)
        else:
            for name in SQLITE_TRIGGER_NAMES:
                cursor.execute(f"DROP TRIGGER IF EXISTS leads_content_events_{name}")
        cursor.execute(
            f"INSERT INTO {FOLDED} (lead_id, kind, occurred_at, content_asset_id) "
            f"SELECT c.lead_id, c.kind, c.occurred_at, c.content_asset_id FROM {CONTENT} c "
            f"WHERE NOT EXISTS (SELECT 1 FROM {EVENTS} e WHERE e.id = c.event_id)"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0015_partition_events"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContentEvent",
            fields=[
                ("event_id", models.BigIntegerField(primary_key=True, serialize=False)),
                ("occurred_at", models.DateTimeField()),
                ("kind", models.CharField(choices=leads.choices.EventKind.choices, max_length=30)),
                (
                    "content_asset",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="leads.contentasset",
                    ),
                ),
                (
                    "lead",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="leads.lead",
                    ),
                ),
            ],
        ),
        # Filled before its indexes: one sorted build each instead of a million inserts.
        migrations.RunPython(fill, unfill),
        migrations.AddIndex(
            model_name="contentevent",
            index=models.Index(
                fields=["lead", "occurred_at", "content_asset"], name="content_event_lead"
            ),
        ),
        migrations.AddIndex(
            model_name="contentevent",
            index=models.Index(fields=["content_asset"], name="content_event_asset"),
        ),
        migrations.DeleteModel(
            name="FoldedContentEvent",
        ),
        # The open-stage leads' ids and accounts from the index (see Lead.Meta).
        migrations.RemoveIndex(model_name="lead", name="lead_stage_entered"),
        migrations.AddIndex(
            model_name="lead",
            index=models.Index(
                fields=["stage", "stage_entered_at", "id", "account"], name="lead_stage_entered"
            ),
        ),
    ]
