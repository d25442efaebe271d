from django.db import migrations


def leave_room_for_updates(apps, schema_editor):
    # Every rescore rewrites these rows: free space in each page lets PostgreSQL update them in
    # place (HOT updates, no index maintenance). Other databases have no such setting.
    if schema_editor.connection.vendor == "postgresql":
        for table in ("scoring_leadscore", "scoring_leadscorestate"):
            schema_editor.execute(f"ALTER TABLE {table} SET (fillfactor = 70)")


class Migration(migrations.Migration):
    dependencies = [("scoring", "0002_default_model")]

    operations = [migrations.RunPython(leave_room_for_updates, migrations.RunPython.noop)]
