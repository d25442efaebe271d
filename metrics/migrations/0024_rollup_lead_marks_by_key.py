from importlib import import_module

from django.db import migrations

# A lead's new source, campaign or tier marks the hours of its handoffs and deals. The triggers
# joined the changed leads (a transition table, of unknown size to the planner) to every handoff
# and every deal: planned as hash joins, they read the whole tables (~395k handoffs, 60k deals at a
# million leads) on every UPDATE of leads, 144 ms and 17 ms for 2,000 leads whose tier a publish
# changed (EXPLAIN ANALYZE, by hand). Each changed lead's handoffs and deals are now looked up by
# its key (the subqueries' ``OFFSET 0`` keeps them from being flattened back into the join).
MARK_LEAD = """
CREATE OR REPLACE FUNCTION metrics_rollup_mark_lead() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO metrics_rollupdirty (fact, hour)
    SELECT DISTINCT 'cohort', date_trunc('hour', created_at AT TIME ZONE 'UTC') FROM new_rows;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO metrics_rollupdirty (fact, hour)
    SELECT DISTINCT 'cohort', date_trunc('hour', created_at AT TIME ZONE 'UTC') FROM old_rows;
  ELSE
    WITH changed AS {materialized}(
      SELECT n.id, n.created_at AS new_created, o.created_at AS old_created,
             (n.source_id, n.campaign_id, n.tier)
               IS DISTINCT FROM (o.source_id, o.campaign_id, o.tier) AS handoff_dimensions
      FROM new_rows n JOIN old_rows o ON o.id = n.id
      WHERE (n.source_id, n.campaign_id, n.tier, n.owner_id, n.stage, n.created_at)
            IS DISTINCT FROM (o.source_id, o.campaign_id, o.tier, o.owner_id, o.stage, o.created_at)
    )
    INSERT INTO metrics_rollupdirty (fact, hour)
    SELECT DISTINCT 'cohort', date_trunc('hour', new_created AT TIME ZONE 'UTC') FROM changed
    UNION SELECT DISTINCT 'cohort', date_trunc('hour', old_created AT TIME ZONE 'UTC') FROM changed
    UNION
    SELECT DISTINCT 'handoff', date_trunc('hour', v.instant AT TIME ZONE 'UTC')
    {handoffs},
    LATERAL (VALUES (h.assigned_at), (h.response_due_at), (h.accept_due_at),
                    (h.rejected_at)) AS v(instant)
    WHERE v.instant IS NOT NULL;
  END IF;
  RETURN NULL;
END $$;
"""
HANDOFFS_BY_KEY = """FROM (SELECT id FROM changed WHERE handoff_dimensions) c
    CROSS JOIN LATERAL (
      SELECT h.assigned_at, h.response_due_at, h.accept_due_at, h.rejected_at
      FROM leads_handoff h WHERE h.lead_id = c.id OFFSET 0
    ) h"""
# As 0008 left it.
HANDOFFS_JOINED = "FROM changed c JOIN leads_handoff h ON h.lead_id = c.id AND c.handoff_dimensions"

LEAD_OPPORTUNITIES_BY_KEY = """
CREATE OR REPLACE FUNCTION metrics_rollup_mark_lead_opportunities() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO metrics_rollupdirty (fact, hour)
  SELECT DISTINCT 'opportunity', date_trunc('hour', v.instant AT TIME ZONE 'UTC')
  FROM (
    SELECT n.id FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE (n.source_id, n.campaign_id, n.tier, n.created_at)
          IS DISTINCT FROM (o.source_id, o.campaign_id, o.tier, o.created_at)
  ) c
  CROSS JOIN LATERAL (
    SELECT r.created_at, r.closed_at FROM leads_opportunity r WHERE r.lead_id = c.id OFFSET 0
  ) r,
  LATERAL (VALUES (r.created_at), (r.closed_at)) AS v(instant)
  WHERE v.instant IS NOT NULL;
  RETURN NULL;
END $$;
"""


def _by_key(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":  # rollups are PostgreSQL only
        schema_editor.execute(
            MARK_LEAD.format(materialized="MATERIALIZED ", handoffs=HANDOFFS_BY_KEY)
        )
        schema_editor.execute(LEAD_OPPORTUNITIES_BY_KEY)


def _joined(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(MARK_LEAD.format(materialized="", handoffs=HANDOFFS_JOINED))
        # As 0012 left it.
        deal_cycles = import_module("metrics.migrations.0012_rollup_deal_cycles")
        schema_editor.execute(deal_cycles.LEAD_OPPORTUNITIES_SQL)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0023_open_deal_groups"),
    ]

    operations = [migrations.RunPython(_by_key, _joined)]
