from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from leads.admin import DefinitionVersionAdmin, FrozenWhenPublishedInline, register_publish_preview
from leads.models import IcpVersion
from scoring.impact import publish_impact
from scoring.models import EventWeight, RescoreJob, ScoringModel
from scoring.services import job_progress


def _impact_preview(version) -> dict:
    return {"impact": publish_impact(version)}


# The publish confirmation of an ICP or a scoring model shows what the rescore would do.
register_publish_preview(IcpVersion, _impact_preview)
register_publish_preview(ScoringModel, _impact_preview)


class EventWeightInline(FrozenWhenPublishedInline):
    model = EventWeight
    fields = ("kind", "points", "daily_cap")


@admin.register(ScoringModel)
class ScoringModelAdmin(DefinitionVersionAdmin):
    inlines = [EventWeightInline]
    fields = (
        "number",
        "status",
        "effective_from",
        "note",
        "half_life_days",
        ("engagement_floor", "engagement_cap"),
        ("personal_email_penalty", "competitor_penalty"),
        "competitor_domains",
        ("band_1_min", "band_2_min", "band_3_min"),
        "published_at",
        "published_by",
    )


@admin.register(RescoreJob)
class RescoreJobAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "progress", "total_leads", "created_at", "finished_at")
    list_filter = ("reason", "status")
    readonly_fields = ("reason", "status", "note", "total_leads", "created_at", "finished_at")

    def has_add_permission(self, request):
        return False

    @admin.display(description="Progress")
    def progress(self, obj) -> str:
        return format_html(
            '<a href="{}">{} %</a>',
            reverse("scoring:job", args=[obj.pk]),
            job_progress(obj)["percent"],
        )


# The predictive models' admin is in its own module.
import scoring.predictive.admin  # noqa: E402, F401
