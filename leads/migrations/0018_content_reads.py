"""A touch's links (assets shared, objections heard) with the touch's lead and instant beside
them, in two narrow tables kept by triggers: ``leads_contentshare`` and ``leads_heardobjection``.

The content page asks, per handed-off lead or new deal, whether sales ever shared the lead an
asset, and counts the period's shares; the meeting's content slide matches every open and won
deal to the objections heard on its lead. Both went from every link to its touch (a hash of the
touch table, ~700k rows at 1M leads) for each read; now a lead's shares and objections are one
index range of a narrow table.

Triggers, in the writer's transaction whoever writes (ORM ``set``/``add``/``remove``, a delete
cascading from a touch, a lead, an asset or a tag, the demo's COPY, raw SQL): on PostgreSQL
statement-level with transition tables, as the content events' (0016); on SQLite row-level. A
link added adds its row; a link removed removes it; a link changed follows; a touch whose lead,
actor or instant changes (touches are append-only, but raw SQL can) carries its links' rows;
a TRUNCATE of the links or the touches empties them.
"""

from django.conf import settings
from django.db import migrations, models

SHARES = "leads_contentshare"
HEARD = "leads_heardobjection"
ASSET_LINKS = "leads_leadactivity_content_assets"
OBJECTION_LINKS = "leads_leadactivity_objections"
ACTIVITIES = "leads_leadactivity"

# (table kept, link table, the link's column, the kept row's column, the touch's extra columns)
KEPT = (
    (SHARES, ASSET_LINKS, "contentasset_id", "content_asset_id", ("actor_id",)),
    (HEARD, OBJECTION_LINKS, "objectiontag_id", "objection_id", ()),
)


def _values(link: str, link_column: str, extra) -> str:
    """A kept row's values from the link row ``link`` and its touch ``a``."""
    touch = [f"a.{column}" for column in ("lead_id", "occurred_at", *extra)]
    return ", ".join([f"{link}.id", f"{link}.leadactivity_id", f"{link}.{link_column}", *touch])


def _pg_sql(kept, links, link_column, column, extra) -> str:
    name = kept.removeprefix("leads_")
    columns = ", ".join(("link_id", "activity_id", column, "lead_id", "occurred_at", *extra))
    values = _values("k", link_column, extra)
    touch = ", ".join(f"{c} = a.{c}" for c in ("lead_id", "occurred_at", *extra))
    return f"""
CREATE FUNCTION leads_{name}_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {kept} ({columns})
    SELECT {values} FROM new_links k JOIN {ACTIVITIES} a ON a.id = k.leadactivity_id;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_{name}_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {kept} c USING old_links o WHERE c.link_id = o.id;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_{name}_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {kept} c USING old_links o WHERE c.link_id = o.id;
    INSERT INTO {kept} ({columns})
    SELECT {values} FROM new_links k JOIN {ACTIVITIES} a ON a.id = k.leadactivity_id;
    RETURN NULL;
END $$;
CREATE FUNCTION leads_{name}_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Only touches whose kept columns changed: through their links (indexed by touch).
    UPDATE {kept} c SET {touch}
    FROM new_touches a JOIN old_touches o ON o.id = a.id
    JOIN {links} k ON k.leadactivity_id = a.id
    WHERE c.link_id = k.id
      AND (a.lead_id, a.occurred_at{"".join(f", a.{e}" for e in extra)})
          IS DISTINCT FROM (o.lead_id, o.occurred_at{"".join(f", o.{e}" for e in extra)});
    RETURN NULL;
END $$;
CREATE FUNCTION leads_{name}_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE {kept};
    RETURN NULL;
EXCEPTION WHEN object_in_use THEN
    -- The same TRUNCATE names this table too (Django's flush): it is empty already.
    RETURN NULL;
END $$;
CREATE TRIGGER leads_{name}_insert AFTER INSERT ON {links}
    REFERENCING NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_insert();
CREATE TRIGGER leads_{name}_delete AFTER DELETE ON {links}
    REFERENCING OLD TABLE AS old_links
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_delete();
CREATE TRIGGER leads_{name}_update AFTER UPDATE ON {links}
    REFERENCING OLD TABLE AS old_links NEW TABLE AS new_links
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_update();
CREATE TRIGGER leads_{name}_truncate AFTER TRUNCATE ON {links}
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_truncate();
CREATE TRIGGER leads_{name}_touch AFTER UPDATE ON {ACTIVITIES}
    REFERENCING OLD TABLE AS old_touches NEW TABLE AS new_touches
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_touch();
CREATE TRIGGER leads_{name}_touches_truncate AFTER TRUNCATE ON {ACTIVITIES}
    FOR EACH STATEMENT EXECUTE FUNCTION leads_{name}_truncate();
"""


def _sqlite_sql(kept, links, link_column, column, extra) -> list[str]:
    name = kept.removeprefix("leads_")
    columns = ", ".join(("link_id", "activity_id", column, "lead_id", "occurred_at", *extra))
    values = _values("NEW", link_column, extra)
    touch = ", ".join(f"{c} = NEW.{c}" for c in ("lead_id", "occurred_at", *extra))
    insert = f"""INSERT INTO {kept} ({columns})
        SELECT {values} FROM {ACTIVITIES} a WHERE a.id = NEW.leadactivity_id;"""
    return [
        f"""CREATE TRIGGER leads_{name}_insert AFTER INSERT ON {links} BEGIN
        {insert}
    END""",
        f"""CREATE TRIGGER leads_{name}_delete AFTER DELETE ON {links} BEGIN
        DELETE FROM {kept} WHERE link_id = OLD.id;
    END""",
        f"""CREATE TRIGGER leads_{name}_update AFTER UPDATE ON {links} BEGIN
        DELETE FROM {kept} WHERE link_id = OLD.id;
        {insert}
    END""",
        f"""CREATE TRIGGER leads_{name}_touch
    AFTER UPDATE OF lead_id, occurred_at{"".join(f", {e}" for e in extra)} ON {ACTIVITIES} BEGIN
        UPDATE {kept} SET {touch} WHERE activity_id = NEW.id;
    END""",
    ]


SQLITE_TRIGGER_NAMES = [
    f"leads_{kept.removeprefix('leads_')}_{event}"
    for kept, *_ in KEPT
    for event in ("insert", "delete", "update", "touch")
]
PG_FUNCTIONS = [
    f"leads_{kept.removeprefix('leads_')}_{event}"
    for kept, *_ in KEPT
    for event in ("insert", "delete", "update", "touch", "truncate")
]


def fill(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    with connection.cursor() as cursor:
        for kept, links, link_column, column, extra in KEPT:
            if connection.vendor == "postgresql":
                cursor.execute(_pg_sql(kept, links, link_column, column, extra))
            else:
                for sql in _sqlite_sql(kept, links, link_column, column, extra):
                    cursor.execute(sql)
            columns = ", ".join(
                ("link_id", "activity_id", column, "lead_id", "occurred_at", *extra)
            )
            values = _values("k", link_column, extra)
            cursor.execute(
                f"INSERT INTO {kept} ({columns}) SELECT {values} "
                f"FROM {links} k JOIN {ACTIVITIES} a ON a.id = k.leadactivity_id"
            )
            if connection.vendor == "postgresql":
                cursor.execute(f"ANALYZE {kept}")


def unfill(apps, schema_editor):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for function in PG_FUNCTIONS:
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")
        elif connection.vendor == "sqlite":
            for trigger in SQLITE_TRIGGER_NAMES:
                cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")


def _link_fields() -> list:
    return [
        ("link_id", models.BigIntegerField(primary_key=True, serialize=False)),
        ("occurred_at", models.DateTimeField()),
        (
            "activity",
            models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="leads.leadactivity",
            ),
        ),
        (
            "lead",
            models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="leads.lead",
            ),
        ),
    ]


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0017_import_speed"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="ContentShare",
            fields=[
                *_link_fields(),
                (
                    "content_asset",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="leads.contentasset",
                    ),
                ),
                (
                    "actor",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={"abstract": False},
        ),
        migrations.CreateModel(
            name="HeardObjection",
            fields=[
                *_link_fields(),
                (
                    "objection",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="leads.objectiontag",
                    ),
                ),
            ],
            options={"abstract": False},
        ),
        # Filled before their indexes: one sorted build each.
        migrations.RunPython(fill, unfill),
        migrations.AddIndex(
            model_name="contentshare",
            index=models.Index(
                fields=["lead", "occurred_at", "content_asset"], name="content_share_lead"
            ),
        ),
        migrations.AddIndex(
            model_name="contentshare",
            index=models.Index(fields=["occurred_at"], name="content_share_at"),
        ),
        migrations.AddIndex(
            model_name="heardobjection",
            index=models.Index(
                fields=["lead", "objection", "occurred_at"], name="heard_objection_lead"
            ),
        ),
    ]
