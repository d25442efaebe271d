from django.db import migrations

from leads.defaults import DEFAULT_OBJECTIONS


def create_objections(apps, schema_editor):
    ObjectionTag = apps.get_model("leads", "ObjectionTag")
    for order, (key, label) in enumerate(DEFAULT_OBJECTIONS, 1):
        ObjectionTag.objects.get_or_create(key=key, defaults={"label": label, "order": order})


class Migration(migrations.Migration):
    dependencies = [("leads", "0005_handoff_workflow")]

    operations = [migrations.RunPython(create_objections, migrations.RunPython.noop)]
