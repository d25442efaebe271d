"""Publish the default ICP, lifecycle and SLA policies as v1, with reasons and a calendar."""

from datetime import time
from decimal import Decimal

from django.db import migrations

from leads import defaults


def create_defaults(apps, schema_editor):
    IcpVersion = apps.get_model("leads", "IcpVersion")
    IcpCriterion = apps.get_model("leads", "IcpCriterion")
    LifecycleVersion = apps.get_model("leads", "LifecycleVersion")
    LifecycleStage = apps.get_model("leads", "LifecycleStage")
    SlaVersion = apps.get_model("leads", "SlaVersion")
    SlaPolicy = apps.get_model("leads", "SlaPolicy")
    BusinessCalendar = apps.get_model("leads", "BusinessCalendar")
    WorkingHours = apps.get_model("leads", "WorkingHours")
    Holiday = apps.get_model("leads", "Holiday")
    RejectionReason = apps.get_model("leads", "RejectionReason")

    published = {
        "number": 1,
        "status": "published",
        "effective_from": defaults.DEFAULT_EFFECTIVE_FROM,
        "published_at": defaults.DEFAULT_EFFECTIVE_FROM,
        "note": "Default definitions shipped with the product.",
    }
    icp = IcpVersion.objects.create(**published, **defaults.DEFAULT_ICP_TIERS)
    IcpCriterion.objects.bulk_create(
        IcpCriterion(
            version=icp,
            name=name,
            attribute=attribute,
            values=values,
            min_value=minimum,
            max_value=maximum,
            points=points,
            is_exclusion=exclusion,
        )
        for name, attribute, values, minimum, maximum, points, exclusion in defaults.DEFAULT_ICP_CRITERIA
    )

    lifecycle = LifecycleVersion.objects.create(**published)
    LifecycleStage.objects.bulk_create(
        LifecycleStage(
            version=lifecycle,
            order=position,
            key=key,
            name=name,
            buyer_label=label,
            team=team,
            kind=kind,
            trigger_type=trigger,
            trigger_score=score,
            trigger_event_kind=event_kind,
            opens_handoff=handoff,
            on_reject_key=on_reject,
        )
        for position, (key, name, label, team, kind, trigger, score, event_kind, handoff, on_reject)
        in enumerate(defaults.DEFAULT_STAGES, start=1)
    )

    spec = defaults.DEFAULT_CALENDAR
    calendar = BusinessCalendar.objects.create(name=spec["name"], time_zone=spec["time_zone"])
    WorkingHours.objects.bulk_create(
        WorkingHours(calendar=calendar, weekday=day, opens_at=time.fromisoformat(opens), closes_at=time.fromisoformat(closes))
        for day, opens, closes in spec["working_hours"]
    )
    Holiday.objects.bulk_create(
        Holiday(calendar=calendar, date=day, name=name) for day, name in spec["holidays"]
    )

    sla = SlaVersion.objects.create(**published)
    SlaPolicy.objects.bulk_create(
        SlaPolicy(
            version=sla,
            name=name,
            stage_key=stage_key,
            tier=tier,
            respond_within_hours=Decimal(respond),
            accept_within_hours=Decimal(accept),
            calendar=calendar,
        )
        for name, stage_key, tier, respond, accept in defaults.DEFAULT_SLA_POLICIES
    )

    RejectionReason.objects.bulk_create(
        RejectionReason(key=key, label=label, requires_note=note, order=position)
        for position, (key, label, note) in enumerate(defaults.DEFAULT_REJECTION_REASONS, start=1)
    )


class Migration(migrations.Migration):
    dependencies = [("leads", "0001_initial")]

    operations = [migrations.RunPython(create_defaults, migrations.RunPython.noop)]
