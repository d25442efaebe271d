"""A lead's tier is rewritten in place (issue 15, the ICP publish).

A published ICP mirrors each changed tier onto the lead row (~39,000 rows of a million-lead
publish). The tier was the first column of ``lead_tier_created``, so every such write was a
non-HOT update: a new row version on another page and an entry in each of the lead's ten
indexes (EXPLAIN ANALYZE on a 1M-lead copy, 625 scattered leads of one 10,000-lead bucket:
60–64 ms in the UPDATE node). With no index on the tier and room left on each page, the write
stays on its page with no index entry (HOT): 14 ms for the same rows.

1. ``lead_tier_created`` goes. Its reads filter a tier that holds 15–40 % of the leads: the
   lead list's newest-first page reads ``lead_created`` and skips the other tiers; the
   dashboards read tiers from the rollups.
2. The lead table keeps 10 % of each page free (fillfactor 90) for those in-place writes. It
   applies to pages written from now on (a fresh database, the seed, imports); an existing
   table gets it page by page as it is rewritten, or at once by ``VACUUM FULL leads_lead``
   in a maintenance window (README, PostgreSQL settings). SQLite has no such setting.
"""

from django.db import migrations


def leave_room_on_lead_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE leads_lead SET (fillfactor = 90)")


def fill_lead_pages(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE leads_lead RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("leads", "0020_heard_objection_account_changes_only"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="lead",
            name="lead_tier_created",
        ),
        migrations.RunPython(leave_room_on_lead_pages, fill_lead_pages, elidable=False),
    ]
