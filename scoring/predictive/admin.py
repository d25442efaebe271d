"""Admin views of the predictive models: read-only history (training happens in tasks)."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from scoring.predictive.models import PredictiveModel


@admin.register(PredictiveModel)
class PredictiveModelAdmin(admin.ModelAdmin):
    list_display = (
        "__str__", "status", "trained_at", "trained_by", "n_outcomes", "n_positive",
        "holdout_auc", "holdout_brier", "n_predictions",
    )  # fmt: skip
    list_filter = ("status", "trigger")
    exclude = ("pipeline",)
    readonly_fields = (
        "version", "status", "message", "trigger", "trained_at", "trained_by", "n_outcomes",
        "n_positive", "holdout_auc", "holdout_brier", "cv_auc", "regularization_c", "features",
        "interactions", "n_predictions", "retrain_page",
    )  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).defer("pipeline").select_related("trained_by")

    def has_add_permission(self, request):
        return False  # a version is made by training: "Retrain now" on the model page

    def has_change_permission(self, request, obj=None):
        return False

    @admin.display(description="Retrain")
    def retrain_page(self, obj) -> str:
        return format_html(
            '<a href="{}">Model page (retrain now)</a>', reverse("scoring:predictive-models")
        )
