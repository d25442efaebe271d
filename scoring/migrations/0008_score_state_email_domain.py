from django.db import migrations, models


def copy_email_domains(apps, schema_editor):
    """Existing state rows take their lead's domain now, so the next weight change scores them
    exactly as before without reading the lead table."""
    if schema_editor.connection.vendor == "postgresql":
        domain = "SPLIT_PART(l.email, '@', 2)"
        schema_editor.execute(
            f"UPDATE scoring_leadscorestate s SET email_domain = {domain} "
            "FROM leads_lead l WHERE l.id = s.lead_id"
        )
        return
    schema_editor.execute(
        """
        UPDATE scoring_leadscorestate SET email_domain = (
            SELECT CASE WHEN INSTR(l.email, '@') > 0
                        THEN SUBSTR(l.email, INSTR(l.email, '@') + 1) ELSE '' END
            FROM leads_lead l WHERE l.id = scoring_leadscorestate.lead_id
        )
        """
    )


def leave_room_for_in_place_updates(apps, schema_editor):
    # Every publish rewrites every state row. With room left on each page, PostgreSQL writes the
    # new version beside the old one (a HOT update: no index entry), and prunes the old one when
    # the page is next read, with or without autovacuum.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE scoring_leadscorestate SET (fillfactor = 60)")


class Migration(migrations.Migration):
    dependencies = [
        ("scoring", "0007_score_state_enqueued_at"),
        ("leads", "0012_slimmer_event_indexes"),
    ]

    operations = [
        migrations.AddField(
            model_name="leadscorestate",
            name="email_domain",
            field=models.CharField(blank=True, db_default="", default="", max_length=254),
        ),
        migrations.RunPython(copy_email_domains, migrations.RunPython.noop, elidable=True),
        migrations.RunPython(leave_room_for_in_place_updates, migrations.RunPython.noop),
    ]
