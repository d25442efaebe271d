"""Access checks shared by the pages: log in first, then the permission (403 without it).

Which role holds which permission: ``leads.roles``."""

from collections.abc import Callable

from django.contrib.auth.decorators import login_required, permission_required


def page_permission_required(*perms: str) -> Callable:
    """A page for users holding every one of ``perms``: anonymous visitors are sent to log in
    (and back), a signed-in user without them gets 403 — never a login page they cannot pass."""

    def decorator(view: Callable) -> Callable:
        return login_required(permission_required(perms, raise_exception=True)(view))

    return decorator
