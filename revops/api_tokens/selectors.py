"""Reads of API tokens: metadata only (the key is not stored)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.utils import timezone

from revops.api_tokens.models import ApiToken


def api_tokens_live() -> QuerySet[ApiToken]:
    """Tokens that still authenticate: not expired (knox deletes an expired one when it is next
    presented; until then it is not shown)."""
    return ApiToken.objects.filter(Q(expiry__isnull=True) | Q(expiry__gt=timezone.now()))


def api_tokens_of(*, user) -> QuerySet[ApiToken]:
    """The user's live tokens, newest first."""
    return api_tokens_live().filter(user=user).order_by("-created", "-id")
