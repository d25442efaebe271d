"""Backtest pages: start a simulation, follow it, read both columns, drill in, publish.

Everyone signed in reads results; starting, resuming and publishing need change_<model> of the
definitions involved (checked by the services)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from leads.choices import DefinitionStatus
from leads.models import IcpVersion
from scoring.backtest import selectors, services
from scoring.backtest.charts import mql_volume_chart
from scoring.backtest.models import Backtest
from scoring.impact import publish_impact
from scoring.models import ScoringModel

PAGE_SIZE = 50


class StartForm(forms.Form):
    icp = forms.ModelChoiceField(
        queryset=IcpVersion.objects.filter(status=DefinitionStatus.DRAFT),
        required=False,
        label="Draft ICP",
        empty_label="— the ICP in force —",
    )
    model = forms.ModelChoiceField(
        queryset=ScoringModel.objects.filter(status=DefinitionStatus.DRAFT),
        required=False,
        label="Draft scoring model",
        empty_label="— the scoring model in force —",
    )

    def clean(self):
        data = super().clean()
        if not data.get("icp") and not data.get("model"):
            raise ValidationError("Pick a draft ICP, a draft scoring model or both.")
        return data


def _may_simulate(user) -> bool:
    return user.has_perm("leads.change_icpversion") or user.has_perm("scoring.change_scoringmodel")


@login_required
def backtest_index(request):
    if request.method == "POST":
        form = StartForm(request.POST)
        if form.is_valid():
            try:
                backtest = services.backtest_start(
                    actor=request.user,
                    draft_icp=form.cleaned_data["icp"],
                    draft_model=form.cleaned_data["model"],
                )
            except ValidationError as error:
                form.add_error(None, error)
            else:
                return redirect("scoring:backtest", pk=backtest.pk)
    else:
        form = StartForm(initial={"icp": request.GET.get("icp"), "model": request.GET.get("model")})
    page = Paginator(selectors.recent_backtests(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "scoring/backtest/index.html",
        {"form": form, "page": page, "may_simulate": _may_simulate(request.user)},
    )


def _percent(value) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _number(value) -> str:
    return "—" if value is None else f"{value:,}"


def _comparison_rows(summary: dict, threshold) -> list[dict]:
    current, draft = summary["columns"]["current"], summary["columns"]["draft"]
    at = f"{threshold:g}" if threshold is not None else "—"

    def row(label, key, show, hint=""):
        return {
            "label": label,
            "current": show(current[key]),
            "draft": show(draft[key]),
            "hint": hint,
            "key": key,
        }

    return [
        row("Leads MQL-eligible today", "eligible", _number, f"total ≥ {at}, no exclusion"),
        row("MQLs in the last 12 months", "mqls_12_months", _number, "first reached the threshold"),
        row("Leads with a known outcome", "outcome_leads", _number, "won, lost, DQ or rejected"),
        row("… of which won", "won", _number),
        row("Flagged (reached the threshold)", "flagged", _number, "before the handoff"),
        row("Precision at the threshold", "precision", _percent, "flagged leads that were won"),
        row("Recall at the threshold", "recall", _percent, "won leads that were flagged"),
        row("ROC AUC", "auc", lambda v: "—" if v is None else f"{v:.3f}", "0.5 = chance"),
        row("Won deals missed", "missed_wins", _number, "won leads below the threshold"),
    ]


def _band_rows(summary: dict) -> list[dict]:
    current, draft = summary["columns"]["current"], summary["columns"]["draft"]
    return [
        {
            "label": c["label"],
            "current": c,
            "draft": d,
            "current_rate": _percent(c["rate"]),
            "draft_rate": _percent(d["rate"]),
        }
        for c, d in zip(current["bands"], draft["bands"], strict=True)
    ]


@login_required
def backtest_detail(request, pk: int):
    backtest = get_object_or_404(
        Backtest.objects.select_related("draft_icp", "draft_model", "current_icp", "current_model"),
        pk=pk,
    )
    context = {
        "backtest": backtest,
        "progress": services.backtest_progress(backtest),
        "may_simulate": request.user.has_perms(_perms_of(backtest)),
    }
    if backtest.status == Backtest.Status.DONE:
        summary = backtest.summary
        current, draft = summary["columns"]["current"], summary["columns"]["draft"]
        context.update(
            summary=summary,
            rows=_comparison_rows(summary, backtest.mql_threshold),
            bands=_band_rows(summary),
            tiers=[
                {"tier": t, "current": current["tiers"][t], "draft": draft["tiers"][t]}
                for t in "ABCD"
            ],
            weekly=list(zip(summary["weeks"], current["weekly"], draft["weekly"], strict=True)),
            chart=mql_volume_chart(summary["weeks"], current["weekly"], draft["weekly"]),
            publishable=_publishable(backtest, request.user),
            draft_edited=_draft_edited(backtest),
        )
    return render(request, "scoring/backtest/detail.html", context)


def _perms_of(backtest: Backtest) -> list[str]:
    return services.required_permissions(
        draft_icp=backtest.draft_icp_id is not None, draft_model=backtest.draft_model_id is not None
    )


def _draft_edited(backtest: Backtest) -> bool:
    return (
        services.draft_fingerprint(draft_icp=backtest.draft_icp, draft_model=backtest.draft_model)
        != backtest.draft_fingerprint
        and (backtest.draft_icp or backtest.draft_model) is not None
    )


def _publishable(backtest: Backtest, user) -> list[dict]:
    """The backtest's drafts still unpublished that this user may publish."""
    choices = []
    for which, version, perm in (
        ("icp", backtest.draft_icp, "leads.change_icpversion"),
        ("model", backtest.draft_model, "scoring.change_scoringmodel"),
    ):
        if version is not None and not version.is_published and user.has_perm(perm):
            choices.append({"which": which, "version": version})
    return choices


@login_required
def backtest_progress_json(request, pk: int):
    return JsonResponse(services.backtest_progress(get_object_or_404(Backtest, pk=pk)))


@login_required
def backtest_changed_leads(request, pk: int):
    backtest = get_object_or_404(Backtest, pk=pk)
    page = Paginator(selectors.changed_leads(backtest), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request, "scoring/backtest/changed_leads.html", {"backtest": backtest, "page": page}
    )


@login_required
@require_POST
def backtest_resume(request, pk: int):
    backtest = get_object_or_404(Backtest, pk=pk)
    services.backtest_resume(backtest=backtest, actor=request.user)
    messages.info(request, "The backtest continues where it stopped.")
    return redirect("scoring:backtest", pk=pk)


@login_required
def backtest_publish(request, pk: int, which: str):
    """A confirm step, then the normal publish of the draft."""
    backtest = get_object_or_404(Backtest.objects.select_related("draft_icp", "draft_model"), pk=pk)
    version = {"icp": backtest.draft_icp, "model": backtest.draft_model}.get(which)
    if version is None:
        raise PermissionDenied("This backtest has no such draft.")
    perm = "leads.change_icpversion" if which == "icp" else "scoring.change_scoringmodel"
    if not request.user.has_perm(perm):
        raise PermissionDenied("You may not publish this definition.")
    if request.method == "POST":
        try:
            published = services.backtest_publish_draft(
                backtest=backtest, which=which, actor=request.user
            )
        except ValidationError as error:
            messages.error(request, f"Not published: {' '.join(error.messages)}")
            return redirect("scoring:backtest", pk=pk)
        messages.success(
            request, f"{published.label} v{published.number} is published and in force."
        )
        return redirect(reverse("scoring:latest-job"))
    return render(
        request,
        "scoring/backtest/publish.html",
        {
            "backtest": backtest,
            "version": version,
            "which": which,
            "draft_edited": _draft_edited(backtest),
            "impact": publish_impact(version),
        },
    )
