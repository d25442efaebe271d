"""The OpenAPI security scheme of ``ApiTokenAuthentication``: drf-spectacular's knox scheme
(an ``Authorization`` header with the "Token" keyword), under DRF's old name ``tokenAuth`` so
clients generated from earlier schemas keep their configuration."""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme


class ApiTokenScheme(KnoxTokenScheme):
    target_class = "revops.api_tokens.auth.ApiTokenAuthentication"
    name = "tokenAuth"
