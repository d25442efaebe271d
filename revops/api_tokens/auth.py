"""``Authorization: Token <key>`` for the API, checked by django-rest-knox against the stored
digest (the header keyword is knox's ``AUTH_HEADER_PREFIX``, "Token" as before)."""

from __future__ import annotations

import re

from django.utils import timezone
from knox.auth import TokenAuthentication
from knox.signals import token_expired
from rest_framework.exceptions import AuthenticationFailed

from revops.api_tokens.services import api_token_mark_used

# What a key can look like (hex, an optional "revops_" prefix; keys hashed in from the old DRF
# tokens are hex too). Anything else is refused before it reaches the database: knox would
# otherwise fail on bytes that are not UTF-8, and PostgreSQL on a NUL, with a 500.
KEY_FORMAT = re.compile(rb"[A-Za-z0-9_-]{1,128}")


class ApiTokenAuthentication(TokenAuthentication):
    """knox's authentication, plus: malformed keys refused early, ``last_used`` recorded, and
    one query per request (the token with its user) instead of two."""

    def authenticate_credentials(self, token: bytes):
        if not KEY_FORMAT.fullmatch(token):
            raise AuthenticationFailed("Invalid token.")
        user, api_token = super().authenticate_credentials(token)
        api_token_mark_used(token=api_token, at=timezone.now())
        return user, api_token

    def _cleanup_token(self, auth_token) -> bool:
        """Refuse and delete the presented token once expired, as knox does, but without knox's
        extra query per request that also deletes the user's other expired tokens: those cannot
        authenticate either, are not listed (``api_tokens_live``), and go when presented."""
        if auth_token.expiry is not None and auth_token.expiry < timezone.now():
            username = auth_token.user.get_username()
            auth_token.delete()
            token_expired.send(sender=self.__class__, username=username, source="auth_token")
            return True
        return False
