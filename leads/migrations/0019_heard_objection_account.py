"""A heard objection keeps its lead's account too, so the meeting's content slide finds the
industries of the deals that heard an objection from this narrow table and the account table
alone: through the lead it read the lead table for every open deal (~200 MB at 1M leads).

Kept like the rest of the row (0018): a link added takes the lead's account; a touch moved to
another lead takes that lead's; and a lead whose account changes (or is cleared: the account
deleted sets it NULL) carries it to its rows, by the rows' lead index.
"""

import importlib

from django.db import migrations, models

HEARD = "leads_heardobjection"
OBJECTION_LINKS = "leads_leadactivity_objections"
ACTIVITIES = "leads_leadactivity"
LEADS = "leads_lead"

PG_SQL = f"""
CREATE OR REPLACE FUNCTION leads_heardobjection_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO {HEARD} (link_id, activity_id, objection_id, lead_id, occurred_at, account_id)
    SELECT k.id, k.leadactivity_id, k.objectiontag_id, a.lead_id, a.occurred_at, l.account_id
    FROM new_links k JOIN {ACTIVITIES} a ON a.id = k.leadactivity_id
    JOIN {LEADS} l ON l.id = a.lead_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION leads_heardobjection_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM {HEARD} c USING old_links o WHERE c.link_id = o.id;
    INSERT INTO {HEARD} (link_id, activity_id, objection_id, lead_id, occurred_at, account_id)
    SELECT k.id, k.leadactivity_id, k.objectiontag_id, a.lead_id, a.occurred_at, l.account_id
    FROM new_links k JOIN {ACTIVITIES} a ON a.id = k.leadactivity_id
    JOIN {LEADS} l ON l.id = a.lead_id;
    RETURN NULL;
END $$;
CREATE OR REPLACE FUNCTION leads_heardobjection_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {HEARD} c SET lead_id = a.lead_id, occurred_at = a.occurred_at,
                         account_id = l.account_id
    FROM new_touches a JOIN old_touches o ON o.id = a.id
    JOIN {OBJECTION_LINKS} k ON k.leadactivity_id = a.id
    JOIN {LEADS} l ON l.id = a.lead_id
    WHERE c.link_id = k.id
      AND (a.lead_id, a.occurred_at) IS DISTINCT FROM (o.lead_id, o.occurred_at);
    RETURN NULL;
END $$;
CREATE FUNCTION leads_heardobjection_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE {HEARD} c SET account_id = n.account_id
    FROM new_leads n JOIN old_leads o ON o.id = n.id
    WHERE c.lead_id = n.id AND n.account_id IS DISTINCT FROM o.account_id;
    RETURN NULL;
END $$;
CREATE TRIGGER leads_heardobjection_lead AFTER UPDATE ON {LEADS}
    REFERENCING OLD TABLE AS old_leads NEW TABLE AS new_leads
    FOR EACH STATEMENT EXECUTE FUNCTION leads_heardobjection_lead();
"""

SQLITE_SQL = [
    "DROP TRIGGER IF EXISTS leads_heardobjection_insert",
    "DROP TRIGGER IF EXISTS leads_heardobjection_update",
    "DROP TRIGGER IF EXISTS leads_heardobjection_touch",
    f"""CREATE TRIGGER leads_heardobjection_insert AFTER INSERT ON {OBJECTION_LINKS} BEGIN
        INSERT INTO {HEARD} (link_id, activity_id, objection_id, lead_id, occurred_at, account_id)
        SELECT NEW.id, NEW.leadactivity_id, NEW.objectiontag_id, a.lead_id, a.occurred_at,
               l.account_id
        FROM {ACTIVITIES} a JOIN {LEADS} l ON l.id = a.lead_id
        WHERE a.id = NEW.leadactivity_id;
    END""",
    f"""CREATE TRIGGER leads_heardobjection_update AFTER UPDATE ON {OBJECTION_LINKS} BEGIN
        DELETE FROM {HEARD} WHERE link_id = OLD.id;
        INSERT INTO {HEARD} (link_id, activity_id, objection_id, lead_id, occurred_at, account_id)
        SELECT NEW.id, NEW.leadactivity_id, NEW.objectiontag_id, a.lead_id, a.occurred_at,
               l.account_id
        FROM {ACTIVITIES} a JOIN {LEADS} l ON l.id = a.lead_id
        WHERE a.id = NEW.leadactivity_id;
    END""",
    f"""CREATE TRIGGER leads_heardobjection_touch
    AFTER UPDATE OF lead_id, occurred_at ON {ACTIVITIES} BEGIN
        UPDATE {HEARD} SET lead_id = NEW.lead_id, occurred_at = NEW.occurred_at,
            account_id = (SELECT account_id FROM {LEADS} WHERE id = NEW.lead_id)
        WHERE activity_id = NEW.id;
    END""",
    f"""CREATE TRIGGER leads_heardobjection_lead AFTER UPDATE OF account_id ON {LEADS}
    WHEN OLD.account_id IS NOT NEW.account_id BEGIN
        UPDATE {HEARD} SET account_id = NEW.account_id WHERE lead_id = NEW.id;
    END""",
]


def keep_accounts(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor not in ("postgresql", "sqlite"):
        return
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(PG_SQL)
        else:
            for sql in SQLITE_SQL:
                cursor.execute(sql)
        cursor.execute(
            f"UPDATE {HEARD} SET account_id = "
            f"(SELECT l.account_id FROM {LEADS} l WHERE l.id = {HEARD}.lead_id)"
        )


def back_to_0018(apps, schema_editor):
    """The triggers as 0018 made them (without the account), before the column goes."""
    connection = schema_editor.connection
    frozen = importlib.import_module("leads.migrations.0018_content_reads")
    kept = next(spec for spec in frozen.KEPT if spec[0] == HEARD)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for event in ("insert", "delete", "update", "touch", "truncate", "lead"):
                cursor.execute(f"DROP FUNCTION IF EXISTS leads_heardobjection_{event}() CASCADE")
            cursor.execute(frozen._pg_sql(*kept))
        elif connection.vendor == "sqlite":
            for event in ("insert", "delete", "update", "touch", "lead"):
                cursor.execute(f"DROP TRIGGER IF EXISTS leads_heardobjection_{event}")
            for sql in frozen._sqlite_sql(*kept):
                cursor.execute(sql)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0018_content_reads"),
    ]

    operations = [
        migrations.AddField(
            model_name="heardobjection",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                null=True,
                on_delete=models.deletion.DO_NOTHING,
                related_name="+",
                to="leads.account",
            ),
        ),
        migrations.RunPython(keep_accounts, back_to_0018),
    ]
