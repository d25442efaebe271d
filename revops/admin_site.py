"""The admin site: who gets in, and users managed without handing out superuser rights.

Who gets in: an active user holding an add, change or delete permission on a model the admin
shows (with the roles: Marketing and RevOps admin), or a superuser. ``is_staff`` is not asked
for: access follows the role a user is given, so nobody has to remember a second switch. A user
who may only read (a rep holds ``view`` permissions for the API) has the app's own pages, not
the admin. A signed-in user who does not get in is refused (403), not sent to a login page.
"""

from functools import wraps

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.urls import reverse

WRITE_ACTIONS = ("add", "change", "delete")


class RevOpsAdminSite(admin.AdminSite):
    def has_permission(self, request) -> bool:
        user = request.user
        if not (user.is_active and user.is_authenticated):
            return False
        if user.is_superuser:
            return True
        held = user.get_all_permissions()
        return any(
            f"{model._meta.app_label}.{action}_{model._meta.model_name}" in held
            for model in self._registry
            for action in WRITE_ACTIONS
        )

    def admin_view(self, view, cacheable=False):
        wrapped = super().admin_view(view, cacheable)

        def refuse_signed_in_outsiders(request, *args, **kwargs):
            if (
                request.user.is_authenticated
                and not self.has_permission(request)
                and request.path != reverse("admin:logout", current_app=self.name)
            ):
                raise PermissionDenied("Your role does not use the admin.")
            return wrapped(request, *args, **kwargs)

        return wraps(wrapped)(refuse_signed_in_outsiders)


def admin_link(request) -> dict:
    """Context processor: ``uses_admin`` (whether to link the admin), decided when a template
    asks, by the site's own rule."""
    from django.contrib import admin

    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"uses_admin": False}
    return {"uses_admin": lambda: admin.site.has_permission(request)}
