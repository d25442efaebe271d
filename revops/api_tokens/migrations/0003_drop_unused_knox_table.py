"""Drop ``knox_authtoken`` where knox's own migrations created it (databases migrated before
``MIGRATION_MODULES = {"knox": None}``): the model is swapped for ``api_tokens.ApiToken``, so
nothing ever wrote to it, and its key to ``auth_user`` makes PostgreSQL refuse to flush
``auth_user`` (as the transactional tests do). Left alone if it somehow holds rows."""

from django.db import migrations

KNOX_TABLE = "knox_authtoken"


def drop_unused_knox_table(apps, schema_editor):
    connection = schema_editor.connection
    if KNOX_TABLE not in connection.introspection.table_names():
        return
    table = schema_editor.quote_name(KNOX_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")
        if cursor.fetchone() is not None:
            return
    schema_editor.execute(f"DROP TABLE {table}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["knox"])


class Migration(migrations.Migration):
    dependencies = [("api_tokens", "0002_hash_drf_tokens")]

    operations = [migrations.RunPython(drop_unused_knox_table, migrations.RunPython.noop)]
