"""Login rate limits (django-axes) on two keys.

- **A username from one address**: ``AXES_FAILURE_LIMIT`` failures lock that pair (axes' own
  rule, ``AXES_LOCKOUT_PARAMETERS``). Guessing one user's password is slowed without locking
  the user out everywhere.
- **An address alone**: ``AXES_ADDRESS_FAILURE_LIMIT`` failures over any usernames lock every
  log-in from that address. This stops password spraying (one or two guesses at many usernames,
  which never reaches a pair's limit). It is higher than the pair's limit so that an office
  behind one NAT address survives its typos, and a successful log-in does not reset it (axes
  resets only the pair that logged in), so a sprayer holding one valid account cannot clear it.

Both count the failures within ``AXES_COOLOFF_TIME``, as axes does. Axes applies one failure
limit to all its parameters, hence this handler rather than a second entry in
``AXES_LOCKOUT_PARAMETERS``: it reports an address over its own limit as having reached the
pair's, so axes' lockout (429, the lockout page) follows.
"""

from __future__ import annotations

from axes.attempts import get_cool_off_threshold
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_failure_limit
from axes.models import AccessAttempt
from django.conf import settings
from django.db.models import Sum


class AddressLimitedAxesHandler(AxesDatabaseHandler):
    def get_failures(self, request, credentials: dict | None = None) -> int:
        failures = super().get_failures(request, credentials)
        limit = settings.AXES_ADDRESS_FAILURE_LIMIT
        if limit and address_failures(request) >= limit:
            # Read by the lockout page to say why.
            request.address_locked_out = True
            return max(failures, get_failure_limit(request, credentials))
        return failures


def address_failures(request) -> int:
    """Failed log-ins from the request's address, over every username, within the cool-off."""
    attempts = AccessAttempt.objects.filter(ip_address=request.axes_ip_address)
    if settings.AXES_COOLOFF_TIME is not None:
        attempts = attempts.filter(attempt_time__gte=get_cool_off_threshold(request))
    return attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
