"""The meeting's content slide reads the open deals from ``OpenDealRow`` (kept per lead by the
rollup refresh) instead of joining every handoff to its lead and to the objections heard on each
first view. Triggers mark the leads to recompute (``OpenDealDirty``) in the writer's transaction:

- a handoff or an opportunity inserted or deleted (statements), or updated in what the slide
  reads (rows: its outcome, stage, lead, instant, status, amount or account);
- an objection heard, unheard or moved (``leads_heardobjection``, itself kept by triggers);
- a lead whose stage or account changes (rows, only when they change: a rescore's updates of
  the score columns fire nothing), or that is deleted;
- an account whose industry changes: its leads and the leads of its opportunities.

A TRUNCATE of any of them leaves the rows unbuilt, as the other rollups (0008). No rows are
built here: until the first refresh builds them, the slide reads the raw facts.
"""

import django.db.models.deletion
from django.db import migrations, models

DIRTY = "metrics_opendealdirty"

TRIGGERS_SQL = f"""
CREATE FUNCTION metrics_open_deals_mark_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id) SELECT DISTINCT lead_id FROM new_rows WHERE lead_id IS NOT NULL;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id) SELECT DISTINCT lead_id FROM old_rows WHERE lead_id IS NOT NULL;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id)
  SELECT lead_id FROM old_rows WHERE lead_id IS NOT NULL
  UNION SELECT lead_id FROM new_rows WHERE lead_id IS NOT NULL;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_row() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF OLD.lead_id IS NOT NULL THEN
    INSERT INTO {DIRTY} (lead_id) VALUES (OLD.lead_id);
  END IF;
  IF NEW.lead_id IS NOT NULL AND NEW.lead_id IS DISTINCT FROM OLD.lead_id THEN
    INSERT INTO {DIRTY} (lead_id) VALUES (NEW.lead_id);
  END IF;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id) VALUES (NEW.id);
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_deleted_leads() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id) SELECT id FROM old_rows;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_mark_accounts() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO {DIRTY} (lead_id)
  WITH changed AS (
    SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.industry IS DISTINCT FROM o.industry
  )
  SELECT l.id FROM leads_lead l WHERE l.account_id IN (SELECT id FROM changed)
  UNION
  SELECT o.lead_id FROM leads_opportunity o
  WHERE o.account_id IN (SELECT id FROM changed) AND o.lead_id IS NOT NULL;
  RETURN NULL;
END $$;
CREATE FUNCTION metrics_open_deals_unbuilt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE metrics_rollupstate SET built = false WHERE fact = 'open_deals';
  RETURN NULL;
END $$;
"""
for table in ("handoff", "opportunity", "heardobjection"):
    TRIGGERS_SQL += f"""
CREATE TRIGGER metrics_open_deals_{table}_insert AFTER INSERT ON leads_{table}
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_mark_new();
CREATE TRIGGER metrics_open_deals_{table}_delete AFTER DELETE ON leads_{table}
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_mark_old();
CREATE TRIGGER metrics_open_deals_{table}_truncate AFTER TRUNCATE ON leads_{table}
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_unbuilt();
"""
# Updates: per row and only for what the slide reads, so that the breach sweep's and the
# feedback's updates of other columns of a hundred thousand handoffs mark nothing. The heard
# objections are moved by their touches' triggers, a few rows at a time: a statement trigger.
TRIGGERS_SQL += """
CREATE TRIGGER metrics_open_deals_handoff_update
  AFTER UPDATE OF outcome, stage, lead_id, assigned_at ON leads_handoff FOR EACH ROW
  WHEN ((OLD.outcome, OLD.stage, OLD.lead_id, OLD.assigned_at)
        IS DISTINCT FROM (NEW.outcome, NEW.stage, NEW.lead_id, NEW.assigned_at))
  EXECUTE FUNCTION metrics_open_deals_mark_row();
CREATE TRIGGER metrics_open_deals_opportunity_update
  AFTER UPDATE OF status, stage, amount, account_id, lead_id, created_at ON leads_opportunity
  FOR EACH ROW
  WHEN ((OLD.status, OLD.stage, OLD.amount, OLD.account_id, OLD.lead_id, OLD.created_at)
        IS DISTINCT FROM
        (NEW.status, NEW.stage, NEW.amount, NEW.account_id, NEW.lead_id, NEW.created_at))
  EXECUTE FUNCTION metrics_open_deals_mark_row();
CREATE TRIGGER metrics_open_deals_heardobjection_update AFTER UPDATE ON leads_heardobjection
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_mark_moved();
CREATE TRIGGER metrics_open_deals_lead_update
  AFTER UPDATE OF stage, account_id ON leads_lead FOR EACH ROW
  WHEN ((OLD.stage, OLD.account_id) IS DISTINCT FROM (NEW.stage, NEW.account_id))
  EXECUTE FUNCTION metrics_open_deals_mark_lead();
CREATE TRIGGER metrics_open_deals_lead_delete AFTER DELETE ON leads_lead
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_mark_deleted_leads();
CREATE TRIGGER metrics_open_deals_account_update AFTER UPDATE ON leads_account
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_mark_accounts();
CREATE TRIGGER metrics_open_deals_lead_truncate AFTER TRUNCATE ON leads_lead
  FOR EACH STATEMENT EXECUTE FUNCTION metrics_open_deals_unbuilt();
"""

DROP_SQL = "".join(
    f"DROP FUNCTION IF EXISTS metrics_open_deals_{name}() CASCADE;"
    for name in (
        "mark_new",
        "mark_old",
        "mark_moved",
        "mark_row",
        "mark_lead",
        "mark_deleted_leads",
        "mark_accounts",
        "unbuilt",
    )
)


# The rows are built by the next refresh: a state left by an earlier apply of this migration
# would say rows built that this one's new table does not hold.
FORGET_STATE_SQL = "DELETE FROM metrics_rollupstate WHERE fact = 'open_deals';"


def _triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORGET_STATE_SQL + TRIGGERS_SQL)


def _no_triggers(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORGET_STATE_SQL + DROP_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0019_heard_objection_account"),
        ("metrics", "0021_rollup_source_day_due_inlined"),
    ]

    operations = [
        migrations.CreateModel(
            name="OpenDealDirty",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("lead_id", models.BigIntegerField()),
            ],
        ),
        migrations.AlterField(
            model_name="rollupdirty",
            name="fact",
            field=models.CharField(
                choices=[
                    ("handoff", "Handoffs"),
                    ("cohort", "Lead cohorts"),
                    ("opportunity", "Opportunities"),
                    ("stage_exit", "Stage exits"),
                    ("open_deals", "Open deals by objection"),
                ],
                max_length=16,
            ),
        ),
        migrations.AlterField(
            model_name="rollupstate",
            name="fact",
            field=models.CharField(
                choices=[
                    ("handoff", "Handoffs"),
                    ("cohort", "Lead cohorts"),
                    ("opportunity", "Opportunities"),
                    ("stage_exit", "Stage exits"),
                    ("open_deals", "Open deals by objection"),
                ],
                max_length=16,
                primary_key=True,
                serialize=False,
            ),
        ),
        migrations.CreateModel(
            name="OpenDealRow",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("kind", models.CharField(max_length=12)),
                ("deal_id", models.BigIntegerField()),
                ("stage", models.CharField(max_length=30)),
                ("outcome", models.CharField(blank=True, max_length=12)),
                ("lead_stage", models.CharField(blank=True, max_length=30)),
                ("heard_any", models.BooleanField()),
                ("amount", models.DecimalField(decimal_places=2, max_digits=14, null=True)),
                ("industry", models.CharField(blank=True, max_length=80)),
                ("since", models.DateTimeField()),
                (
                    "lead",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="leads.lead",
                    ),
                ),
                (
                    "objection",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="leads.objectiontag",
                    ),
                ),
            ],
            options={
                "indexes": [
                    models.Index(fields=["lead"], name="open_deal_row_lead"),
                    models.Index(fields=["since"], name="open_deal_row_since"),
                ],
            },
        ),
        migrations.RunPython(_triggers, _no_triggers),
    ]
