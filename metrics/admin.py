"""Admin for the weekly meeting records (meetings, their actions, and the frozen figures,
read-only: a snapshot is the record of what was discussed) and the shared goals (versioned like
the other definitions: drafts edited, published by the action)."""

from django.contrib import admin
from django.db.models import Count, Q
from django.urls import reverse
from django.utils.html import format_html

from leads.admin import DefinitionVersionAdmin, FrozenWhenPublishedInline
from metrics.goal_services import GOAL_FIELDS
from metrics.models import ActionItem, Goal, GoalNotice, GoalSet, Meeting, MeetingSnapshot


class ActionItemInline(admin.TabularInline):
    model = ActionItem
    fk_name = "meeting"
    extra = 0
    fields = ("text", "owner", "due_on", "done_at", "done_by")
    raw_id_fields = ("owner", "done_by")


class MeetingSnapshotInline(admin.TabularInline):
    model = MeetingSnapshot
    extra = 0
    fields = ("frozen_at", "frozen_by", "figures_version")
    readonly_fields = fields
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Meeting)
class MeetingAdmin(admin.ModelAdmin):
    list_display = ("held_on", "title", "actions_agreed", "actions_open", "page_link")
    search_fields = ("title", "notes")
    date_hierarchy = "held_on"
    readonly_fields = ("created_by", "created_at")
    inlines = [ActionItemInline, MeetingSnapshotInline]

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                agreed=Count("action_items"),
                still_open=Count("action_items", filter=Q(action_items__done_at__isnull=True)),
            )
        )

    @admin.display(description="Actions agreed", ordering="agreed")
    def actions_agreed(self, obj) -> int:
        return obj.agreed

    @admin.display(description="Still open", ordering="still_open")
    def actions_open(self, obj) -> int:
        return obj.still_open

    @admin.display(description="Page")
    def page_link(self, obj) -> str:
        return format_html(
            '<a href="{}">Open</a>', reverse("meeting:detail", kwargs={"held_on": obj.held_on})
        )


@admin.register(ActionItem)
class ActionItemAdmin(admin.ModelAdmin):
    list_display = ("text", "owner", "due_on", "meeting", "done_at", "done_by")
    list_filter = (("done_at", admin.EmptyFieldListFilter), "due_on")
    search_fields = ("text",)
    list_select_related = ("owner", "meeting", "done_by")
    raw_id_fields = ("meeting", "owner", "created_by", "done_by")
    readonly_fields = ("created_at",)


@admin.register(MeetingSnapshot)
class MeetingSnapshotAdmin(admin.ModelAdmin):
    list_display = ("meeting", "frozen_at", "frozen_by", "figures_version")
    list_select_related = ("meeting", "frozen_by")
    readonly_fields = ("meeting", "frozen_at", "frozen_by", "figures_version", "figures")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class GoalInline(FrozenWhenPublishedInline):
    model = Goal
    fields = GOAL_FIELDS
    raw_id_fields = ("team_manager", "rep")


@admin.register(GoalSet)
class GoalSetAdmin(DefinitionVersionAdmin):
    """A period's goals; the friendlier editor is the scorecard's "Edit goals" page."""

    inlines = [GoalInline]
    list_display = ("__str__", "period_kind", "first_day", *DefinitionVersionAdmin.list_display[1:])
    list_filter = ("status", "period_kind")
    fields = (
        "number",
        "status",
        "effective_from",
        ("period_kind", "first_day", "last_day"),
        "note",
        "published_at",
        "published_by",
    )


@admin.register(GoalNotice)
class GoalNoticeAdmin(admin.ModelAdmin):
    """What was e-mailed about the goals (alerts, Monday digests): a record, read-only."""

    list_display = ("subject", "kind", "sent_at", "recipients")
    list_filter = ("kind",)
    readonly_fields = ("key", "kind", "goal", "sent_at", "recipients", "subject", "body")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
