"""Per-user API tokens for integrations (DRF's ``authtoken``): ``POST /api/v1/token/`` creates
or rotates the caller's token and shows it once, ``DELETE`` revokes it (the next call with it
gets 401), ``GET`` says whether one exists. Ops admins see and revoke anybody's in the admin
("Auth Token › Tokens")."""

from __future__ import annotations

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.authtoken.models import Token
from rest_framework.response import Response
from rest_framework.views import APIView

from leads.api.common import UtcMixin


class TokenStatusSerializer(serializers.Serializer):
    has_token = serializers.BooleanField()
    created = serializers.DateTimeField(allow_null=True)


class NewTokenSerializer(serializers.Serializer):
    token = serializers.CharField(help_text="Send as `Authorization: Token <token>`.")
    created = serializers.DateTimeField()


class TokenView(UtcMixin, APIView):
    @extend_schema(summary="Whether you have an API token", responses=TokenStatusSerializer)
    def get(self, request):
        token = Token.objects.filter(user=request.user).first()
        return Response(
            {"has_token": token is not None, "created": token.created if token else None}
        )

    @extend_schema(
        summary="Create or rotate your API token (the old one stops working)",
        request=None,
        responses={201: NewTokenSerializer},
    )
    def post(self, request):
        with transaction.atomic():
            Token.objects.filter(user=request.user).delete()
            token = Token.objects.create(user=request.user)
        return Response(
            {"token": token.key, "created": token.created}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        summary="Revoke your API token",
        request=None,
        responses={204: OpenApiResponse(description="Revoked (or there was none).")},
    )
    def delete(self, request):
        Token.objects.filter(user=request.user).delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
