"""``/api/v1/tokens/``: your own API tokens. ``POST`` creates one and answers its key, the only
time it is ever shown; ``GET`` lists yours as metadata (name, first characters, created,
expiry, last used); ``DELETE /tokens/{id}/`` revokes one. Nobody sees anyone else's here
(RevOps admins list and revoke them in the admin, without the keys)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response

from leads.api.common import UtcMixin
from leads.api.views import ERRORS, ID_PATTERN
from revops.api_tokens.models import ApiToken
from revops.api_tokens.selectors import api_tokens_of
from revops.api_tokens.services import api_token_create, api_token_revoke


class ApiTokenSerializer(serializers.ModelSerializer):
    prefix = serializers.CharField(
        read_only=True, help_text="The key's first characters, to recognise it by."
    )

    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created", "expiry", "last_used"]
        read_only_fields = ["id", "created", "expiry", "last_used"]


class NewApiTokenSerializer(ApiTokenSerializer):
    token = serializers.CharField(
        read_only=True,
        help_text="The key, shown in this answer only (it is stored as a hash): send it as "
        "`Authorization: Token <key>`.",
    )

    class Meta(ApiTokenSerializer.Meta):
        fields = [*ApiTokenSerializer.Meta.fields, "token"]


@extend_schema_view(
    list=extend_schema(summary="Your API tokens (metadata; keys are never shown again)"),
    create=extend_schema(
        summary="Create an API token and see its key, once",
        description="Only from a signed-in session: a request authenticated with a token is "
        "refused (403), so a leaked token cannot mint more.",
        responses={201: NewApiTokenSerializer, 400: ERRORS, 403: ERRORS},
    ),
    destroy=extend_schema(
        summary="Revoke one of your API tokens",
        responses={
            204: OpenApiResponse(description="Revoked: requests with it now get 401."),
            404: ERRORS,
        },
    ),
)
class ApiTokenViewSet(
    UtcMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ApiTokenSerializer
    pagination_class = None  # a user holds at most API_TOKEN_LIMIT_PER_USER
    filter_backends = []
    lookup_value_regex = ID_PATTERN

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation: no user
            return ApiToken.objects.none()
        return api_tokens_of(user=self.request.user)

    def create(self, request):
        if isinstance(request.auth, ApiToken):
            raise PermissionDenied(
                "Create API tokens signed in to the site, not with another token."
            )
        form = ApiTokenSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        new = api_token_create(user=request.user, name=form.validated_data.get("name", ""))
        body = {**ApiTokenSerializer(new.token).data, "token": new.key}
        # The one answer holding the key: no cache along the way may keep it.
        return Response(body, status=status.HTTP_201_CREATED, headers={"Cache-Control": "no-store"})

    def destroy(self, request, pk=None):
        api_token_revoke(token=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)
