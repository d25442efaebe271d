"""DRF's tokens (``rest_framework.authtoken``, keys stored in clear) become hashed API tokens.

Each old key's digest and first characters are stored as django-rest-knox computes them, so an
integration keeps working with the key it has; it expires like a new token (``API_TOKEN_TTL_DAYS``
from this migration). Then the clear-text table is dropped and Django forgets that app's
migrations. Not reversible: the keys are gone (reversing leaves the hashed tokens, which 0001's
reversal deletes). Stale "authtoken" permissions leave the roles at the next ``roles_grant``;
``manage.py remove_stale_contenttypes`` removes their content types.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import migrations
from django.utils import timezone
from django.utils.dateparse import parse_datetime

OLD_TABLE = "authtoken_token"
OLD_NAME = "API token (from before tokens were hashed)"


def _aware(value) -> datetime:
    if isinstance(value, str):  # SQLite hands back text through a raw cursor
        value = parse_datetime(value)
    if value is None:
        return timezone.now()
    return value if timezone.is_aware(value) else value.replace(tzinfo=UTC)


def hash_drf_tokens(apps, schema_editor):
    from knox.crypto import hash_token
    from knox.settings import CONSTANTS

    connection = schema_editor.connection
    if OLD_TABLE not in connection.introspection.table_names():
        return  # a database that never had DRF's tokens
    table = schema_editor.quote_name(OLD_TABLE)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {schema_editor.quote_name('key')}, user_id, created FROM {table}")
        rows = cursor.fetchall()
    ApiToken = apps.get_model("api_tokens", "ApiToken")
    db = connection.alias
    ttl_days = getattr(settings, "API_TOKEN_TTL_DAYS", 0)
    expiry = timezone.now() + timedelta(days=ttl_days) if ttl_days else None
    for key, user_id, created in rows:
        token = ApiToken.objects.using(db).create(
            user_id=user_id,
            digest=hash_token(key),
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            name=OLD_NAME,
            expiry=expiry,
        )
        # auto_now_add stamped "now": keep when the key was really made.
        ApiToken.objects.using(db).filter(pk=token.pk).update(created=_aware(created))
    schema_editor.execute(f"DROP TABLE {table}")
    schema_editor.execute("DELETE FROM django_migrations WHERE app = %s", ["authtoken"])


class Migration(migrations.Migration):
    dependencies = [("api_tokens", "0001_initial")]

    operations = [migrations.RunPython(hash_drf_tokens, migrations.RunPython.noop)]
