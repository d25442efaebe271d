"""The ops admins' workbench: definitions with publish/draft actions, facts to browse."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, ExpressionWrapper
from django.forms.models import BaseInlineFormSet
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html

from leads import services
from leads.admin_forms import IcpCriterionForm
from leads.models import (
    Account,
    BusinessCalendar,
    Campaign,
    ContentAsset,
    EngagementEvent,
    Handoff,
    Holiday,
    IcpCriterion,
    IcpVersion,
    ImportJob,
    Lead,
    LeadActivity,
    LifecycleStage,
    LifecycleVersion,
    Notification,
    ObjectionTag,
    Opportunity,
    RejectionReason,
    SalesRep,
    SavedMapping,
    SlaPolicy,
    SlaVersion,
    Source,
    StageTransition,
    TargetAccount,
    TargetAccountListVersion,
    WorkingHours,
)
from leads.models.definitions import validate_stage_set
from leads.selectors import stages_in_force, version_in_force
from leads.target_accounts.selectors import on_list_q

admin.site.site_header = "RevOps dashboard — administration"
admin.site.site_title = "RevOps admin"
admin.site.index_title = "Definitions and pipeline data"


def validation_messages(error: ValidationError) -> str:
    if hasattr(error, "message_dict"):
        return " ".join(f"{field}: {' '.join(msgs)}" for field, msgs in error.message_dict.items())
    return " ".join(error.messages)


# --- Definitions ---------------------------------------------------------------------------

# What publishing a version of a model would do, shown on a confirmation before it is published:
# other apps register it (scoring: the rescore's moves and handoffs) so leads imports none.
PublishPreview = Callable[[object], dict]
_publish_previews: dict[type, PublishPreview] = {}


def register_publish_preview(model: type, preview: PublishPreview) -> None:
    """``preview(version)`` returns the context the confirmation's impact section reads."""
    _publish_previews[model] = preview


class FrozenWhenPublishedInline(admin.TabularInline):
    extra = 0

    def _editable(self, obj) -> bool:
        return obj is None or not obj.is_published

    def has_add_permission(self, request, obj=None):
        return self._editable(obj) and super().has_add_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        return self._editable(obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._editable(obj) and super().has_delete_permission(request, obj)


class DefinitionVersionAdmin(admin.ModelAdmin):
    list_display = ("__str__", "status", "effective_from", "in_force", "published_by", "note")
    list_filter = ("status",)
    readonly_fields = ("number", "status", "effective_from", "published_at", "published_by")
    actions = ("publish_now", "new_draft_from")
    list_per_page = 50

    @admin.display(boolean=True, description="In force now")
    def in_force(self, obj) -> bool:
        current = version_in_force(type(obj))
        return current is not None and current.pk == obj.pk

    def has_change_permission(self, request, obj=None):
        # Published versions are shown read-only: a change is a new draft.
        if obj is not None and obj.is_published:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.is_published:
            return False
        return super().has_delete_permission(request, obj)

    def save_model(self, request, obj, form, change):
        if not change:
            obj.number = services.next_number(type(obj))
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.action(description="Publish the selected draft (takes force now)")
    def publish_now(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Publish one draft at a time.", messages.ERROR)
            return
        version = queryset.get()
        preview = _publish_previews.get(type(version))
        if preview is not None and "confirm" not in request.POST:
            return self._publish_confirmation(request, version, preview)
        try:
            services.definition_publish(version=version, actor=request.user)
        except ValidationError as error:
            self.message_user(
                request,
                f"{version} was not published: {validation_messages(error)}",
                messages.ERROR,
            )
            return
        self.message_user(request, f"{version.label} v{version.number} is published and in force.")
        for message, url_name in services.definition_publish_follow_ups(type(version)):
            self.message_user(
                request,
                format_html('{}: <a href="{}">watch progress</a>.', message, reverse(url_name)),
            )

    def _publish_confirmation(self, request, version, preview: PublishPreview):
        """The confirm step: what publishing would do, computed read-only. A draft that cannot
        be published says why at once, as the publish would."""
        if version.is_published:
            self.message_user(request, f"{version} is already published.", messages.ERROR)
            return None
        try:
            version.validate_for_publish()
        except ValidationError as error:
            self.message_user(
                request,
                f"{version} was not published: {validation_messages(error)}",
                messages.ERROR,
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Publish {version.label} v{version.number}?",
            "opts": self.model._meta,
            "version": version,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            **preview(version),
        }
        return TemplateResponse(request, "admin/publish_confirm.html", context)

    @admin.action(description="Create a new draft from the selected version")
    def new_draft_from(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Pick one version to copy.", messages.ERROR)
            return
        source = queryset.get()
        draft = services.definition_create_draft(
            model=type(source),
            actor=request.user,
            copy_from=source,
            note=f"Copy of v{source.number}",
        )
        self.message_user(
            request, f"Draft {draft.label} v{draft.number} created from v{source.number}."
        )


class IcpCriterionInline(FrozenWhenPublishedInline):
    model = IcpCriterion
    form = IcpCriterionForm  # values as text, closed vocabularies checked, numeric ranges
    fields = ("name", "attribute", "values", "min_value", "max_value", "points", "is_exclusion")
    readonly_fields = ("values_shown",)

    def get_fields(self, request, obj=None):
        # A published version is read-only: its values as words, not the stored JSON list.
        fields = super().get_fields(request, obj)
        if obj is not None and obj.is_published:
            return ["values_shown" if name == "values" else name for name in fields]
        return fields

    @admin.display(description="Values")
    def values_shown(self, criterion) -> str:
        return ", ".join(criterion.values) or "—"


@admin.register(IcpVersion)
class IcpVersionAdmin(DefinitionVersionAdmin):
    inlines = [IcpCriterionInline]
    fields = (
        "number",
        "status",
        "effective_from",
        "note",
        ("tier_a_min_points", "tier_b_min_points", "tier_c_min_points"),
        "published_at",
        "published_by",
    )


class StageSetFormSet(BaseInlineFormSet):
    """Checks the stages together: unique keys and orders, rising thresholds, reject targets."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        stages = [
            form.instance
            for form in self.forms
            if form.cleaned_data and not form.cleaned_data.get("DELETE", False)
        ]
        try:
            validate_stage_set(stages)
        except ValidationError as error:
            raise ValidationError(error.messages) from error


class LifecycleStageInline(FrozenWhenPublishedInline):
    model = LifecycleStage
    formset = StageSetFormSet
    fields = (
        "order",
        "key",
        "name",
        "buyer_label",
        "team",
        "kind",
        "trigger_type",
        "trigger_score",
        "trigger_event_kind",
        "opens_handoff",
        "on_reject_key",
    )


@admin.register(LifecycleVersion)
class LifecycleVersionAdmin(DefinitionVersionAdmin):
    inlines = [LifecycleStageInline]
    fields = ("number", "status", "effective_from", "note", "published_at", "published_by")


class SlaPolicyInline(FrozenWhenPublishedInline):
    model = SlaPolicy
    fields = (
        "name",
        "stage_key",
        "tier",
        "respond_within_hours",
        "accept_within_hours",
        "calendar",
        "escalate_to",
        "escalate_to_manager",
        "reassign_on_breach",
    )
    autocomplete_fields = ("escalate_to",)


@admin.register(SlaVersion)
class SlaVersionAdmin(DefinitionVersionAdmin):
    inlines = [SlaPolicyInline]
    fields = ("number", "status", "effective_from", "note", "published_at", "published_by")


class TargetAccountInline(FrozenWhenPublishedInline):
    model = TargetAccount
    fields = ("account", "tier", "note")
    autocomplete_fields = ("account",)


@admin.register(TargetAccountListVersion)
class TargetAccountListVersionAdmin(DefinitionVersionAdmin):
    """Also edited on /definitions/target-accounts/edit/ (paste a list by domain or name)."""

    inlines = [TargetAccountInline]
    fields = ("number", "status", "effective_from", "note", "published_at", "published_by")


class WorkingHoursInline(admin.TabularInline):
    model = WorkingHours
    extra = 0
    min_num = 1

    def get_formset(self, request, obj=None, **kwargs):
        # A calendar with no working hours would stop every SLA clock that uses it.
        return super().get_formset(request, obj, validate_min=True, **kwargs)


class HolidayInline(admin.TabularInline):
    model = Holiday
    extra = 0


@admin.register(BusinessCalendar)
class BusinessCalendarAdmin(admin.ModelAdmin):
    list_display = ("name", "time_zone", "working_hour_blocks")
    inlines = [WorkingHoursInline, HolidayInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(blocks=Count("working_hours"))

    @admin.display(description="Working-hour blocks", ordering="blocks")
    def working_hour_blocks(self, obj) -> int:
        return obj.blocks


@admin.register(RejectionReason)
class RejectionReasonAdmin(admin.ModelAdmin):
    list_display = ("label", "key", "requires_note", "is_active", "order")
    list_editable = ("is_active", "order")
    prepopulated_fields = {"key": ("label",)}


@admin.register(ObjectionTag)
class ObjectionTagAdmin(admin.ModelAdmin):
    list_display = ("label", "key", "is_active", "order")
    list_editable = ("is_active", "order")
    prepopulated_fields = {"key": ("label",)}


# --- Facts ---------------------------------------------------------------------------------


class StageListFilter(admin.SimpleListFilter):
    title = "stage"
    parameter_name = "stage"

    def lookups(self, request, model_admin):
        return [(stage.key, stage.name) for stage in stages_in_force()]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(stage=self.value())
        return queryset


class FactAdmin(admin.ModelAdmin):
    list_per_page = 50
    # Counting a million rows on every page view is the slowest part of a big changelist.
    show_full_result_count = False


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    list_display = ("name", "channel_group", "origin", "lead_count")
    list_filter = ("channel_group", "origin")
    search_fields = ("name",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(leads_count=Count("leads"))

    @admin.display(description="Leads", ordering="leads_count")
    def lead_count(self, obj) -> int:
        return obj.leads_count


@admin.register(Campaign)
class CampaignAdmin(FactAdmin):
    list_display = ("name", "source", "cost", "currency", "starts_on", "ends_on")
    list_filter = ("source",)
    list_select_related = ("source",)
    search_fields = ("name", "external_id")
    date_hierarchy = "starts_on"


@admin.register(ContentAsset)
class ContentAssetAdmin(FactAdmin):
    list_display = ("title", "asset_type", "funnel_stage", "url")
    list_filter = ("asset_type", "funnel_stage")
    search_fields = ("title",)
    # A link typed without a scheme is a web page, and today's web pages are HTTPS.
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}


@admin.register(Account)
class AccountAdmin(FactAdmin):
    list_display = (
        "name",
        "domain",
        "industry",
        "employees",
        "annual_revenue",
        "country",
        "region",
        "on_target_list",
    )
    list_filter = ("region", "industry")
    search_fields = ("name", "domain", "external_id")

    def get_queryset(self, request):
        # "On the target-account list in force": a subquery of the page's one query.
        on_list = on_list_q("pk", at=timezone.now())
        return (
            super()
            .get_queryset(request)
            .annotate(on_list=ExpressionWrapper(on_list, output_field=models.BooleanField()))
        )

    @admin.display(boolean=True, description="Target account", ordering="on_list")
    def on_target_list(self, obj) -> bool:
        return obj.on_list

    def save_model(self, request, obj, form, change):
        # A changed account changes its leads' fit: the service has them rescored.
        if change:
            services.account_update(account=obj, fields=form.changed_data)
        else:
            services.account_create(account=obj)


class StageTransitionInline(admin.TabularInline):
    model = StageTransition
    extra = 0
    can_delete = False
    fields = ("transitioned_at", "from_stage", "to_stage", "actor_type", "actor", "reason")
    readonly_fields = fields
    ordering = ("-transitioned_at",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Lead)
class LeadAdmin(FactAdmin):
    list_display = (
        "__str__",
        "email",
        "account",
        "source",
        "stage",
        "tier",
        "score",
        "owner",
        "in_marketing_nurture",
        "created_at",
    )
    list_filter = (StageListFilter, "tier", "in_marketing_nurture", "source", "seniority")
    list_select_related = ("account", "source", "owner", "score_state")
    search_fields = ("email", "first_name", "last_name", "external_id", "account__name")
    raw_id_fields = ("account", "campaign", "owner")
    readonly_fields = ("stage", "stage_entered_at", "tier", "score", "updated_at")
    date_hierarchy = "created_at"
    inlines = [StageTransitionInline]

    def save_model(self, request, obj, form, change):
        # Through the write layer: a new lead gets its first stage's history row, and scoring
        # hears of new and changed leads.
        if change:
            services.lead_update(lead=obj, fields=form.changed_data, actor=request.user)
        else:
            services.lead_create(
                lead=obj,
                actor=request.user,
                reason="Created in the admin",
                in_marketing_nurture=obj.in_marketing_nurture,
            )

    @admin.display(description="Score (grade)", ordering="score_state__total")
    def score(self, obj) -> str:
        state = getattr(obj, "score_state", None)
        return f"{state.total:g} ({state.grade})" if state is not None else "not scored"


@admin.register(EngagementEvent)
class EngagementEventAdmin(FactAdmin):
    list_display = ("occurred_at", "kind", "lead", "content_asset", "source_system")
    list_filter = ("kind", "source_system")
    list_select_related = ("lead", "content_asset")
    raw_id_fields = ("lead", "content_asset")
    search_fields = ("lead__email", "external_id")
    date_hierarchy = "occurred_at"

    def save_model(self, request, obj, form, change):
        # Recorded like any event (stage triggers, rescoring); a correction rescores the lead.
        if change:
            services.engagement_event_update(event=obj, fields=form.changed_data)
        else:
            services.engagement_events_record(events=[obj])


@admin.register(StageTransition)
class StageTransitionAdmin(FactAdmin):
    list_display = (
        "transitioned_at",
        "lead",
        "from_stage",
        "to_stage",
        "actor_type",
        "actor",
        "reason",
    )
    list_filter = ("to_stage", "actor_type")
    list_select_related = ("lead", "actor")
    search_fields = ("lead__email",)
    date_hierarchy = "transitioned_at"

    # History is append-only: written by services, never edited here.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Handoff)
class HandoffAdmin(FactAdmin):
    list_display = (
        "lead",
        "stage",
        "assignee",
        "assigned_at",
        "response_due_at",
        "first_response_at",
        "outcome",
        "reject_reason",
    )
    list_filter = ("outcome", "stage", "reject_reason")
    list_select_related = ("lead", "assignee", "reject_reason")
    raw_id_fields = ("lead", "assignee", "sla_policy")
    search_fields = ("lead__email", "lead__last_name")
    date_hierarchy = "assigned_at"


@admin.register(Opportunity)
class OpportunityAdmin(FactAdmin):
    list_display = (
        "name",
        "account",
        "owner",
        "amount",
        "currency",
        "stage",
        "status",
        "created_at",
        "closed_at",
    )
    list_filter = ("status", "stage")
    list_select_related = ("account", "owner")
    raw_id_fields = ("lead", "account", "owner")
    search_fields = ("name", "account__name", "external_id")

    def save_model(self, request, obj, form, change):
        # Opening, winning or losing a deal moves its lead to the matching stage, with history.
        services.opportunity_save(
            opportunity=obj, actor=request.user, update_fields=form.changed_data if change else None
        )

    date_hierarchy = "created_at"


class ReadOnlyHistoryAdmin(FactAdmin):
    """Written by the services only; shown here for audit."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(LeadActivity)
class LeadActivityAdmin(ReadOnlyHistoryAdmin):
    list_display = ("occurred_at", "lead", "action", "channel", "actor_type", "actor", "note")
    list_filter = ("action", "channel", "actor_type")
    list_select_related = ("lead", "actor")
    search_fields = ("lead__email", "note")
    date_hierarchy = "occurred_at"


@admin.register(Notification)
class NotificationAdmin(ReadOnlyHistoryAdmin):
    list_display = ("created_at", "recipient", "kind", "handoff", "read_at", "emailed_at")
    list_filter = ("kind",)
    list_select_related = ("recipient", "handoff__lead")
    search_fields = ("recipient__username",)


@admin.register(SalesRep)
class SalesRepAdmin(admin.ModelAdmin):
    """Who takes handoffs: territory, tiers, capacity, out of office, and their manager."""

    list_display = (
        "__str__",
        "region",
        "tiers",
        "capacity",
        "manager",
        "is_active",
        "out_of_office_from",
        "out_of_office_until",
        "last_assigned_at",
    )
    list_filter = ("is_active", "region", "manager")
    list_select_related = ("user", "manager")
    raw_id_fields = ("user", "manager")
    search_fields = ("user__username", "user__first_name", "user__last_name")


@admin.register(ImportJob)
class ImportJobAdmin(ReadOnlyHistoryAdmin):
    list_display = ("pk", "kind", "status", "created_by", "created_at")
    list_filter = ("kind", "status")
    list_select_related = ("created_by",)


@admin.register(SavedMapping)
class SavedMappingAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "created_by", "updated_at")
    list_filter = ("kind",)
