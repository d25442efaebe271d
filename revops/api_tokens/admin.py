"""API tokens in the admin, for RevOps admins (``view_apitoken``, ``delete_apitoken``): who holds
which token, when it was made, when it expires and was last used, by its first characters. No
key can be read (only its digest is stored, and not shown), none created here (an admin making
a token for someone could act as them), none edited; revoking = deleting. A superuser's tokens
are revoked only by a superuser, as their accounts are changed only by one (``RoleUserAdmin``)."""

from django.contrib import admin

from revops.api_tokens.models import ApiToken
from revops.api_tokens.services import api_token_revoke

SHOWN = ("user", "name", "prefix", "created", "expiry", "last_used")


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = ("starts_with", "user", "name", "created", "expiry", "last_used")
    list_select_related = ("user",)
    search_fields = ("user__username", "name", "token_key")
    date_hierarchy = "created"
    fields = SHOWN
    readonly_fields = SHOWN

    @admin.display(description="starts with", ordering="token_key")
    def starts_with(self, token: ApiToken) -> str:
        return f"{token.prefix}…"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.user.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def delete_model(self, request, obj: ApiToken) -> None:
        api_token_revoke(token=obj, actor=request.user)

    def delete_queryset(self, request, queryset) -> None:
        for token in queryset:
            api_token_revoke(token=token, actor=request.user)
