from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scoring.predictive.selectors import latest_attempt, model_history, model_in_use
from scoring.predictive.spec import MIN_OUTCOMES, MIN_PER_CLASS
from scoring.predictive.tasks import enqueue_retrain

RETRAIN_PERMISSION = "scoring.add_predictivemodel"
PAGE_SIZE = 25


@login_required
def model_index(request):
    """Every training attempt with its quality figures, and the model in use: evidence every
    signed-in user may read."""
    page = Paginator(model_history(), PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "scoring/predictive/models.html",
        {
            "page": page,
            "in_use": model_in_use(),
            "latest": latest_attempt(),
            "can_retrain": request.user.has_perm(RETRAIN_PERMISSION),
            "min_outcomes": MIN_OUTCOMES,
            "min_per_class": MIN_PER_CLASS,
        },
    )


@require_POST
@login_required
@permission_required(RETRAIN_PERMISSION, raise_exception=True)
def retrain_now(request):
    if enqueue_retrain(user_id=request.user.pk):
        messages.success(request, "Retraining: the new version appears here in a minute or two.")
    else:
        messages.error(
            request, "The task queue is unreachable; the nightly retrain will run once it is back."
        )
    return redirect("scoring:predictive-models")
