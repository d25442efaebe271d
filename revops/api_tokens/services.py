"""Writes of API tokens: the only code that creates, revokes or touches one.

A key exists in clear only in ``api_token_create``'s answer (to be shown once); the database keeps
its SHA-512 digest and first characters (``token_key``), logs name it by those characters."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from knox.models import get_digest_token, get_expiry
from knox.settings import CONSTANTS, knox_settings

from revops.api_tokens.models import ApiToken
from revops.api_tokens.selectors import api_tokens_of

log = logging.getLogger(__name__)

# last_used is written at most this often per token, so a busy integration costs no write per call.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class NewApiToken:
    token: ApiToken
    key: str  # the only copy of the key: answer it once, never store or log it


def api_token_create(*, user, name: str = "") -> NewApiToken:
    """A new token for ``user`` (expiring after ``REST_KNOX["TOKEN_TTL"]``), at most
    ``API_TOKEN_LIMIT_PER_USER`` live ones each (the user's row is locked, so two requests at
    once cannot both take the last place)."""
    with transaction.atomic():
        get_user_model().objects.select_for_update().filter(pk=user.pk).exists()
        limit = settings.API_TOKEN_LIMIT_PER_USER
        if api_tokens_of(user=user).count() >= limit:
            raise ValidationError(
                f"You already have {limit} API tokens, the most one user may hold; revoke one "
                "you no longer use first.",
                code="limit",
            )
        digest, key = get_digest_token()
        token = ApiToken(
            user=user,
            name=name.strip(),
            digest=digest,
            token_key=key[: CONSTANTS.TOKEN_KEY_LENGTH],
            expiry=get_expiry(knox_settings.TOKEN_TTL),
        )
        token.full_clean()
        token.save()
    log.info("API token %s… created for user %s (id %s)", token.prefix, user.pk, token.pk)
    return NewApiToken(token=token, key=key)


def api_token_revoke(*, token: ApiToken, actor) -> None:
    """Delete ``token``: the next request sent with it gets 401."""
    with transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).delete()
    log.info("API token %s… of user %s revoked by user %s", token.prefix, token.user_id, actor.pk)


def api_token_mark_used(*, token: ApiToken, at: datetime) -> None:
    """Record that ``token`` authenticated a request at ``at`` (at most once a minute)."""
    if token.last_used is not None and at - token.last_used < LAST_USED_RESOLUTION:
        return
    ApiToken.objects.filter(pk=token.pk).update(last_used=at)
    token.last_used = at
