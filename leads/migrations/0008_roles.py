"""The five roles as groups. Their permissions are granted after ``migrate`` by
``leads.roles.grant_roles_after_migrate`` (post_migrate): scoring's and metrics' permissions do
not exist yet when this runs, and a leads migration must not depend on theirs."""

from django.db import migrations

# The names as they were when this migration was written (leads.roles.ROLES).
ROLES = ("Marketing", "Sales rep", "Sales manager", "RevOps admin", "Viewer")


def create_groups(apps, schema_editor):
    using = schema_editor.connection.alias if schema_editor is not None else "default"
    groups = apps.get_model("auth", "Group").objects.using(using)
    for name in ROLES:
        groups.get_or_create(name=name)


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("leads", "0007_imports"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="handoff",
            options={
                "ordering": ["-assigned_at"],
                "permissions": [
                    (
                        "manage_handoffs",
                        "Can act on and reassign the handoffs of their sales team",
                    ),
                    ("work_handoffs", "Can act on handoffs assigned to them"),
                ],
            },
        ),
        migrations.RunPython(create_groups, migrations.RunPython.noop),
    ]
