"""Users in the admin for RevOps admins who are not superusers (see ``RoleUserAdmin``)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group, Permission

from leads.roles import LONG_SESSION, ROLES


class RoleUserAdmin(UserAdmin):
    """Users for RevOps admins, who are not superusers: they give users roles (groups), never
    superuser status; they cannot change superusers' accounts nor their own roles and
    permissions; they grant single permissions only among their own (plus the meeting-room
    screen's long session). Only a superuser edits anything beyond that."""

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields.append("is_superuser")
            if obj is not None and obj.pk == request.user.pk:
                fields += ["groups", "user_permissions"]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if not request.user.is_superuser:
            if db_field.name == "groups":
                kwargs["queryset"] = Group.objects.filter(name__in=ROLES)
            elif db_field.name == "user_permissions":
                kwargs["queryset"] = grantable_permissions(request.user)
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def save_related(self, request, form, formsets, change):
        """A non-superuser's form offers only what they may grant; whatever else the user held
        (a group or permission a superuser gave) is kept, not silently dropped."""
        kept = {}
        if change and not request.user.is_superuser:
            user = form.instance
            kept = {
                "groups": list(user.groups.exclude(name__in=ROLES)),
                "user_permissions": list(
                    user.user_permissions.exclude(pk__in=grantable_permissions(request.user))
                ),
            }
        super().save_related(request, form, formsets, change)
        for field, rows in kept.items():
            if rows:
                getattr(form.instance, field).add(*rows)


def grantable_permissions(user):
    """The permissions a non-superuser may give another user: their own, and the long session
    of a meeting-room screen (which gives access to nothing)."""
    own = user.get_all_permissions() | {LONG_SESSION}
    pks = [
        pk
        for pk, app_label, codename in Permission.objects.values_list(
            "pk", "content_type__app_label", "codename"
        )
        if f"{app_label}.{codename}" in own
    ]
    return Permission.objects.filter(pk__in=pks).select_related("content_type")


def register_user_admin(site: admin.AdminSite) -> None:
    user_model = get_user_model()
    if site.is_registered(user_model):
        site.unregister(user_model)
    site.register(user_model, RoleUserAdmin)
