from django.contrib.auth.decorators import login_required
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render

from scoring.models import RescoreJob
from scoring.services import job_progress


@login_required
def job_detail(request, pk: int):
    job = get_object_or_404(RescoreJob, pk=pk)
    return render(request, "scoring/job.html", {"job": job, "progress": job_progress(job)})


@login_required
def job_progress_json(request, pk: int):
    return JsonResponse(job_progress(get_object_or_404(RescoreJob, pk=pk)))


@login_required
def latest_job(request):
    job = RescoreJob.objects.order_by("-created_at").first()
    if job is None:
        return redirect("home")
    return redirect("scoring:job", pk=job.pk)
