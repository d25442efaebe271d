"""Engagement events partitioned by month of ``occurred_at`` (PostgreSQL), with the idempotency
key moved to ``leads_eventkey``.

PostgreSQL: the populated table is converted in place of its name. The old table is renamed,
a ``PARTITION BY RANGE (occurred_at)`` table of the same columns is created with a primary key
``(id, occurred_at)``, a partition per month that holds rows (and for the months around now:
``leads.partitions.PARTITIONS_BACK`` behind, ``PARTITIONS_AHEAD`` ahead) plus a DEFAULT one for
anything else, the rows are copied (ids kept), the identity restarts where the old sequence
stood, and the old table's indexes and foreign keys are recreated on the parent (partitioned
indexes: one per partition). The copy is one ``INSERT … SELECT``: at a million events it is
seconds (docs/scaling.md, "Events partitioned by month"); a table of billions takes the
attach path written down there instead.

Both engines: the unique constraint on (source_system, external_id) is replaced by the key
table, kept by triggers on the event table (statement-level with transition tables on
PostgreSQL, row-level on SQLite, which keeps a plain table). Note for SQLite: a later migration
that rebuilds the event table there (an AlterField) drops its triggers and must recreate them.
"""

from datetime import UTC, datetime

import django.db.models.deletion
from django.db import migrations, models

import leads.choices

EVENTS = "leads_engagementevent"
OLD = "leads_engagementevent_unpartitioned"
KEYS = "leads_eventkey"
# Frozen copies of leads.partitions' policy (a migration must not change with the app).
PARTITIONS_BACK = 24
PARTITIONS_AHEAD = 3

PG_TRIGGERS = f"""
CREATE FUNCTION leads_event_keys_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {KEYS} (source_system, external_id, occurred_at)
    SELECT source_system, external_id, occurred_at FROM new_events WHERE external_id <> '';
    RETURN NULL;
END $$;
CREATE FUNCTION leads_event_keys_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {KEYS} k USING old_events o
    WHERE o.external_id <> '' AND k.source_system = o.source_system
      AND k.external_id = o.external_id;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_event_keys_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only keys that changed: an update of other fields leaves the key table alone.
    DELETE FROM {KEYS} k USING old_events o
    WHERE o.external_id <> '' AND k.source_system = o.source_system
      AND k.external_id = o.external_id
      AND NOT EXISTS (SELECT 1 FROM new_events n WHERE n.id = o.id
                      AND n.source_system = o.source_system AND n.external_id = o.external_id);
    INSERT INTO {KEYS} (source_system, external_id, occurred_at)
    SELECT n.source_system, n.external_id, n.occurred_at FROM new_events n
    WHERE n.external_id <> ''
      AND NOT EXISTS (SELECT 1 FROM old_events o WHERE o.id = n.id
                      AND o.source_system = n.source_system AND o.external_id = n.external_id);
    RETURN NULL;
END $$;
CREATE FUNCTION leads_event_keys_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {KEYS};
    RETURN NULL;
EXCEPTION WHEN object_in_use THEN
    -- The same TRUNCATE names the key table too (Django's flush): it is empty already.
    RETURN NULL;
END $$;
CREATE TRIGGER leads_event_keys_insert AFTER INSERT ON {EVENTS}
    REFERENCING NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_keys_insert();
CREATE TRIGGER leads_event_keys_delete AFTER DELETE ON {EVENTS}
    REFERENCING OLD TABLE AS old_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_keys_delete();
CREATE TRIGGER leads_event_keys_update AFTER UPDATE ON {EVENTS}
    REFERENCING OLD TABLE AS old_events NEW TABLE AS new_events
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_keys_update();
CREATE TRIGGER leads_event_keys_truncate AFTER TRUNCATE ON {EVENTS}
    FOR EACH STATEMENT EXECUTE FUNCTION leads_event_keys_truncate();
"""
PG_DROP_TRIGGERS = """
DROP FUNCTION IF EXISTS leads_event_keys_insert() CASCADE;
DROP FUNCTION IF EXISTS leads_event_keys_delete() CASCADE;
DROP FUNCTION IF EXISTS leads_event_keys_update() CASCADE;
DROP FUNCTION IF EXISTS leads_event_keys_truncate() CASCADE;
"""

SQLITE_TRIGGERS = [
    f"""CREATE TRIGGER leads_event_keys_insert AFTER INSERT ON {EVENTS}
    WHEN NEW.external_id <> '' BEGIN
        INSERT INTO {KEYS} (source_system, external_id, occurred_at)
        VALUES (NEW.source_system, NEW.external_id, NEW.occurred_at);
    END""",
    f"""CREATE TRIGGER leads_event_keys_delete AFTER DELETE ON {EVENTS}
    WHEN OLD.external_id <> '' BEGIN
        DELETE FROM {KEYS}
        WHERE source_system = OLD.source_system AND external_id = OLD.external_id;
    END""",
    f"""CREATE TRIGGER leads_event_keys_update AFTER UPDATE OF source_system, external_id
    ON {EVENTS}
    WHEN OLD.source_system <> NEW.source_system OR OLD.external_id <> NEW.external_id BEGIN
        DELETE FROM {KEYS}
        WHERE source_system = OLD.source_system AND external_id = OLD.external_id;
        INSERT INTO {KEYS} (source_system, external_id, occurred_at)
        SELECT NEW.source_system, NEW.external_id, NEW.occurred_at
        WHERE NEW.external_id <> '';
    END""",
]


def month_add(month: datetime, months: int) -> datetime:
    index = month.year * 12 + month.month - 1 + months
    return datetime(index // 12, index % 12 + 1, 1, tzinfo=UTC)


def _table_shape(cursor, table: str):
    """(index definitions but the primary key's, foreign keys as (name, definition), the id
    sequence's next value)."""
    cursor.execute(
        """
        SELECT pg_get_indexdef(ix.indexrelid) FROM pg_index ix
        WHERE ix.indrelid = %s::regclass AND NOT ix.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
        """,
        [table],
    )
    # Definitions name the table; on a partitioned one they read "ON ONLY", which would build
    # an index of the parent without its partitions'.
    indexes = [row[0].replace(" ON ONLY ", " ON ") for row in cursor.fetchall()]
    cursor.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE conrelid = %s::regclass AND contype = 'f'",
        [table],
    )
    foreign_keys = cursor.fetchall()
    cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
    sequence = cursor.fetchone()[0]
    cursor.execute(f"SELECT last_value, is_called FROM {sequence}")
    last, called = cursor.fetchone()
    return indexes, foreign_keys, last + 1 if called else last


def _drop_secondary(cursor, table: str) -> None:
    cursor.execute(
        """
        SELECT ix.indexrelid::regclass::text FROM pg_index ix
        WHERE ix.indrelid = %s::regclass AND NOT ix.indisprimary
          AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid)
        """,
        [table],
    )
    for (name,) in cursor.fetchall():
        cursor.execute(f"DROP INDEX {name}")


def _restore_shape(cursor, table: str, indexes, foreign_keys, next_id: int) -> None:
    cursor.execute(
        f"ALTER TABLE {table} ALTER COLUMN id ADD GENERATED BY DEFAULT AS IDENTITY "
        f"(START WITH {int(next_id)})"
    )
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")
    for definition in indexes:
        cursor.execute(definition)
    for name, definition in foreign_keys:
        cursor.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def _months_to_create(cursor, source: str, now: datetime) -> list[datetime]:
    cursor.execute(
        f"SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC') FROM {source}"
    )
    months = {row[0].replace(tzinfo=UTC) for row in cursor.fetchall()}
    current = datetime(now.year, now.month, 1, tzinfo=UTC)
    months.update(month_add(current, n) for n in range(-PARTITIONS_BACK, PARTITIONS_AHEAD + 1))
    return sorted(months)


def partition(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for sql in SQLITE_TRIGGERS:
                cursor.execute(sql)
            cursor.execute(
                f"INSERT INTO {KEYS} (source_system, external_id, occurred_at) "
                f"SELECT source_system, external_id, occurred_at FROM {EVENTS} "
                "WHERE external_id <> ''"
            )
            return
        if connection.vendor != "postgresql":
            return
        indexes, foreign_keys, next_id = _table_shape(cursor, EVENTS)
        _drop_secondary(cursor, EVENTS)
        cursor.execute(f"ALTER TABLE {EVENTS} RENAME TO {OLD}")
        cursor.execute(f"ALTER TABLE {OLD} RENAME CONSTRAINT {EVENTS}_pkey TO {OLD}_pkey")
        cursor.execute(
            f"CREATE TABLE {EVENTS} (LIKE {OLD} INCLUDING DEFAULTS, "
            "PRIMARY KEY (id, occurred_at)) PARTITION BY RANGE (occurred_at)"
        )
        for month in _months_to_create(cursor, OLD, datetime.now(UTC)):
            cursor.execute(
                f"CREATE TABLE {EVENTS}_p{month:%Y_%m} PARTITION OF {EVENTS} "
                "FOR VALUES FROM (%s) TO (%s)",
                [month, month_add(month, 1)],
            )
        cursor.execute(f"CREATE TABLE {EVENTS}_default PARTITION OF {EVENTS} DEFAULT")
        cursor.execute(PG_TRIGGERS)
        # The triggers write the keys of the copied rows (the old unique index vouches for them).
        cursor.execute(f"INSERT INTO {EVENTS} SELECT * FROM {OLD}")
        cursor.execute(f"DROP TABLE {OLD}")
        _restore_shape(cursor, EVENTS, indexes, foreign_keys, next_id)
        cursor.execute(f"ANALYZE {EVENTS}")


def unpartition(apps, schema_editor):
    """Back to one plain table (rows, ids and indexes kept); the keys' table goes after."""
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            for name in ("insert", "delete", "update"):
                cursor.execute(f"DROP TRIGGER IF EXISTS leads_event_keys_{name}")
            return
        if connection.vendor != "postgresql":
            return
        indexes, foreign_keys, next_id = _table_shape(cursor, EVENTS)
        cursor.execute(PG_DROP_TRIGGERS)
        _drop_secondary(cursor, EVENTS)
        partitioned = f"{EVENTS}_partitioned"
        cursor.execute(f"ALTER TABLE {EVENTS} RENAME TO {partitioned}")
        cursor.execute(
            f"ALTER TABLE {partitioned} RENAME CONSTRAINT {EVENTS}_pkey TO {partitioned}_pkey"
        )
        cursor.execute(f"CREATE TABLE {EVENTS} (LIKE {partitioned} INCLUDING DEFAULTS)")
        cursor.execute(f"ALTER TABLE {EVENTS} ADD CONSTRAINT {EVENTS}_pkey PRIMARY KEY (id)")
        cursor.execute(f"INSERT INTO {EVENTS} SELECT * FROM {partitioned}")
        cursor.execute(f"DROP TABLE {partitioned}")  # and its partitions
        _restore_shape(cursor, EVENTS, indexes, foreign_keys, next_id)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0014_handoff_due_indexes"),
    ]

    operations = [
        migrations.CreateModel(
            name="EventKey",
            fields=[
                (
                    "pk",
                    models.CompositePrimaryKey(
                        "source_system",
                        "external_id",
                        blank=True,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("source_system", models.CharField(max_length=40)),
                ("external_id", models.CharField(max_length=100)),
                ("occurred_at", models.DateTimeField()),
            ],
            options={
                "verbose_name": "received event key",
            },
        ),
        migrations.RemoveConstraint(
            model_name="engagementevent",
            name="leads_event_unique_external_id",
        ),
        migrations.CreateModel(
            name="FoldedContentEvent",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(choices=leads.choices.EventKind.choices, max_length=30)),
                ("occurred_at", models.DateTimeField()),
                (
                    "content_asset",
                    models.ForeignKey(
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
            options={
                "indexes": [
                    models.Index(
                        fields=["lead", "occurred_at"], name="folded_content_lead_occurred"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="FoldedEventDay",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("kind", models.CharField(choices=leads.choices.EventKind.choices, max_length=30)),
                ("day", models.IntegerField(help_text="UTC day number: days since 1970-01-01.")),
                ("events", models.PositiveIntegerField()),
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
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=("lead", "kind", "day"), name="folded_event_day_key"
                    )
                ],
            },
        ),
        migrations.RunPython(partition, unpartition),
    ]
