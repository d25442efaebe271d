"""Cheaper writes of events, leads and stage history (issue 15, CSV import speed).

1. Five lead indexes and two stage-history indexes that a composite index already leads with
   go: ``source``, ``campaign``, ``owner`` (``lead_source_created``, ``lead_campaign_created``,
   ``lead_owner_stage``), ``stage`` and its ``LIKE`` twin (``lead_stage_entered``), and the
   history's ``to_stage`` pair (``transition_to_at``). Every new lead wrote 15 index entries,
   now 10; every history row 8, now 6. The plans that used them (EXPLAIN on a 1M-lead copy):
   whole-table counts by one of those columns read the composite index instead (index-only
   either way: 14–43 ms → 16–66 ms); the paged, ordered reads kept their plans.

2. Foreign keys that bulk writes check row by row become statement-level checks: the event
   table's lead and content asset, the lead's account and source, the stage history's lead.
   PostgreSQL checks a foreign key with one query per inserted row (~8 µs each: 1.7 s of a
   200k-event import, more than the key table's insert; 1.3–2.8 s of 100k new leads). Here one
   statement per insert checks every distinct value of the rows written (transition tables, as
   the key table's triggers in 0015); an update that changes a reference (rare: a publish
   rewrites tiers, not accounts) is checked per row. What the foreign key's row locks did, a
   transaction-level advisory lock does: the checks take it shared, a DELETE of the rows named
   (leads, content assets, accounts, sources) takes it exclusively before deleting and then
   refuses to delete a row still named. So a named row cannot vanish under an uncommitted
   write, nor be deleted while named, whoever writes (ORM, COPY, the admin, raw SQL).
   Differences from the foreign keys: the check runs at the end of each statement, not at
   commit (Django deletes or clears the rows naming a row before deleting it, and writes a
   lead's account before the lead, so nothing relied on the deferral), and such a DELETE waits
   for the transactions that wrote naming rows to end. Writes to an event partition directly
   (``leads.partitions``: rows moved out of the default partition, retention) are not checked:
   they move rows that were. The models keep the relations (``db_constraint=False``): Django
   still cascades, clears, protects and joins as before. Campaign and owner keep their foreign
   keys: mostly NULL on imported leads, they cost little.

SQLite keeps its foreign keys (state change only there).
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

# pg_advisory_xact_lock(namespace, key): scoring's buckets use 7301, the beat leader (7302, 1),
# rotations (7302, 2).
LOCK = "7302, 3"
# (table, column, referenced table, what a row of it is called): the foreign keys replaced.
REFERENCES = (
    ("leads_engagementevent", "lead_id", "leads_lead", "lead"),
    ("leads_engagementevent", "content_asset_id", "leads_contentasset", "content asset"),
    ("leads_lead", "account_id", "leads_account", "account"),
    ("leads_lead", "source_id", "leads_source", "source"),
    ("leads_stagetransition", "lead_id", "leads_lead", "lead"),
)


def _grouped(position: int) -> dict[str, list[tuple]]:
    grouped: dict[str, list[tuple]] = {}
    for reference in REFERENCES:
        grouped.setdefault(reference[position], []).append(reference)
    return grouped


def _raise(message: str, value: str, constraint: str) -> str:
    return (
        f"RAISE foreign_key_violation USING MESSAGE = format('{message}', {value}), "
        f"CONSTRAINT = '{constraint}';"
    )


def pg_checks() -> str:
    """The functions and triggers (one set per table that names rows, one per table named)."""
    sql = [
        f"""
CREATE FUNCTION leads_refs_lock() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Waits for every transaction that wrote rows naming this table's to end, and keeps new
    -- ones out until this one ends: the check after the delete sees every row that names one.
    PERFORM pg_advisory_xact_lock({LOCK});
    RETURN NULL;
END $$;"""
    ]
    for table, references in _grouped(0).items():
        statement, row, changed = [], [], []
        for _table, column, referenced, called in references:
            message = f'insert or update on table "{table}": {called} %s does not exist'
            constraint = f"{table}_{column}_check"
            statement.append(f"""
    SELECT n.{column} INTO missing
    FROM (SELECT DISTINCT {column} FROM new_rows WHERE {column} IS NOT NULL) n
    WHERE NOT EXISTS (SELECT 1 FROM {referenced} r WHERE r.id = n.{column}) LIMIT 1;
    IF FOUND THEN {_raise(message, "missing", constraint)} END IF;""")
            row.append(f"""
    IF NEW.{column} IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM {referenced} r WHERE r.id = NEW.{column}) THEN
        {_raise(message, f"NEW.{column}", constraint)}
    END IF;""")
            changed.append(f"OLD.{column} IS DISTINCT FROM NEW.{column}")
        columns = ", ".join(reference[1] for reference in references)
        sql.append(f"""
CREATE FUNCTION {table}_refs_check() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    missing bigint;
BEGIN
    -- Held until commit: no row checked here can be deleted before then.
    PERFORM pg_advisory_xact_lock_shared({LOCK});{"".join(statement)}
    RETURN NULL;
END $$;
CREATE TRIGGER {table}_refs_insert AFTER INSERT ON {table}
    REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {table}_refs_check();
CREATE FUNCTION {table}_refs_check_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_advisory_xact_lock_shared({LOCK});{"".join(row)}
    RETURN NULL;
END $$;
-- Updates that change a reference are rare (a publish rewrites tiers, not accounts): checked
-- per row, only when one changes.
CREATE TRIGGER {table}_refs_update AFTER UPDATE OF {columns} ON {table}
    FOR EACH ROW WHEN ({" OR ".join(changed)})
    EXECUTE FUNCTION {table}_refs_check_row();""")
    for referenced, references in _grouped(2).items():
        checks = []
        for table, column, _referenced, _called in references:
            message = f'delete on table "{referenced}": row %s is still named by "{table}"'
            checks.append(f"""
    SELECT o.id INTO named FROM old_rows o
    WHERE EXISTS (SELECT 1 FROM {table} t WHERE t.{column} = o.id) LIMIT 1;
    IF FOUND THEN {_raise(message, "named", f"{table}_{column}_check")} END IF;""")
        sql.append(f"""
CREATE FUNCTION {referenced}_refs_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    named bigint;
BEGIN{"".join(checks)}
    RETURN NULL;
END $$;
CREATE TRIGGER {referenced}_refs_lock BEFORE DELETE ON {referenced}
    FOR EACH STATEMENT EXECUTE FUNCTION leads_refs_lock();
CREATE TRIGGER {referenced}_refs_deleted AFTER DELETE ON {referenced}
    REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION {referenced}_refs_deleted();""")
    return "\n".join(sql)


def pg_checks_dropped() -> str:
    functions = ["leads_refs_lock()"]
    functions += [f"{table}_refs_check()" for table in _grouped(0)]
    functions += [f"{table}_refs_check_row()" for table in _grouped(0)]
    functions += [f"{referenced}_refs_deleted()" for referenced in _grouped(2)]
    return "\n".join(f"DROP FUNCTION IF EXISTS {name} CASCADE;" for name in functions)


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


def _foreign_keys(cursor, table: str, column: str, referenced: str) -> list[str]:
    cursor.execute(
        """
        SELECT k.conname FROM pg_constraint k
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = ANY(k.conkey)
        WHERE k.contype = 'f' AND k.conrelid = %s::regclass AND k.conparentid = 0
          AND k.confrelid = %s::regclass AND a.attname = %s
        """,
        [table, referenced, column],
    )
    return [row[0] for row in cursor.fetchall()]


def checks_instead_of_foreign_keys(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        for table, column, referenced, _called in REFERENCES:
            for name in _foreign_keys(cursor, table, column, referenced):
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
        cursor.execute(pg_checks())


def foreign_keys_instead_of_checks(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(pg_checks_dropped())
        for table, column, referenced, _called in REFERENCES:
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk_{referenced}_id "
                f"FOREIGN KEY ({column}) REFERENCES {referenced} (id) "
                "DEFERRABLE INITIALLY DEFERRED"
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
                    name="account",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="leads",
                        to="leads.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="stagetransition",
                    name="lead",
                    field=models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="transitions",
                        to="leads.lead",
                    ),
                ),
                migrations.AlterField(
                    model_name="lead",
                    name="source",
                    field=models.ForeignKey(
                        blank=True,
                        db_constraint=False,
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
