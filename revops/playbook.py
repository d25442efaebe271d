"""The playbook page: every shared definition in force, in plain words, for every role.

It lives in the project package because it shows two apps' definitions side by side: leads
(ICP, lifecycle, SLAs, rejection reasons: ``leads.playbook``) and scoring (the event weights:
``scoring.playbook``), and leads must not import scoring.
"""

from dataclasses import dataclass

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.utils import timezone

from leads.playbook import LeadsPlaybook, leads_playbook
from scoring.playbook import ScoringSection, scoring_playbook


@dataclass(frozen=True)
class Playbook:
    leads: LeadsPlaybook
    scoring: ScoringSection


def playbook_in_force() -> Playbook:
    now = timezone.now()
    return Playbook(leads=leads_playbook(at=now), scoring=scoring_playbook(at=now))


@login_required
def playbook(request):
    return render(request, "playbook.html", {"playbook": playbook_in_force()})
