from django.contrib.auth.decorators import login_required
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render

from leads.models import IcpVersion, LifecycleVersion, SlaVersion
from leads.selectors import definitions_overview, pipeline_counts
from scoring.models import ScoringModel

DEFINITIONS = [IcpVersion, LifecycleVersion, SlaVersion, ScoringModel]


@login_required
def home(request):
    return render(
        request,
        "home.html",
        {"definitions": definitions_overview(DEFINITIONS), "counts": pipeline_counts()},
    )


def healthz(request):
    """Liveness for the load balancer and compose health checks: the database answers."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})
