"""``Authorization: Token <key>`` for the API, checked by django-rest-knox against the stored
digest (the header keyword is knox's ``AUTH_HEADER_PREFIX``, "Token" as before)."""

from __future__ import annotations

import re

from django.utils import timezone
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from revops.api_tokens.services import api_token_mark_used

# What a key can look like (hex, an optional "revops_" prefix; keys hashed in from the old DRF
# tokens are hex too). Anything else is refused before it reaches the database: knox would
# otherwise fail on bytes that are not UTF-8, and PostgreSQL on a NUL, with a 500.
KEY_FORMAT = re.compile(rb"[A-Za-z0-9_-]{1,128}")


class ApiTokenAuthentication(TokenAuthentication):
    def authenticate_credentials(self, token: bytes):
        if not KEY_FORMAT.fullmatch(token):
            raise AuthenticationFailed("Invalid token.")
        user, api_token = super().authenticate_credentials(token)
        api_token_mark_used(token=api_token, at=timezone.now())
        return user, api_token
