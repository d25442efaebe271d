from django.db import migrations

# The objections heard keep their lead's account (0019). The statement trigger on every UPDATE of
# leads joined the changed rows to every objection heard: planned as a hash join it read the whole
# table (88k rows at a million leads, ~20 ms) for each statement, though almost no update of a
# lead changes its account (a publish's tier, a stage move, an owner). It now looks first whether
# any account changed: a lead whose (id, account) pair is new.
ACCOUNT_CHANGES_ONLY = """
CREATE OR REPLACE FUNCTION leads_heardobjection_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- A set difference (hashed), not a join: the transition tables have no statistics, and
    -- joined they were planned as a nested loop, every new row against every old one.
    IF EXISTS (SELECT id, account_id FROM new_leads EXCEPT SELECT id, account_id FROM old_leads)
    THEN
        UPDATE leads_heardobjection c SET account_id = n.account_id
        FROM new_leads n JOIN old_leads o ON o.id = n.id
        WHERE c.lead_id = n.id AND n.account_id IS DISTINCT FROM o.account_id;
    END IF;
    RETURN NULL;
END $$;
"""
EVERY_UPDATE = """
CREATE OR REPLACE FUNCTION leads_heardobjection_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE leads_heardobjection c SET account_id = n.account_id
    FROM new_leads n JOIN old_leads o ON o.id = n.id
    WHERE c.lead_id = n.id AND n.account_id IS DISTINCT FROM o.account_id;
    RETURN NULL;
END $$;
"""


def _account_changes_only(apps, schema_editor):
    # SQLite's trigger (0019) already fires on an account change alone.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ACCOUNT_CHANGES_ONLY)


def _every_update(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(EVERY_UPDATE)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0019_heard_objection_account"),
    ]

    operations = [migrations.RunPython(_account_changes_only, _every_update)]
