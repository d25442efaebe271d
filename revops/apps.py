from django.contrib.admin.apps import AdminConfig


class RevOpsAdminConfig(AdminConfig):
    """The Django admin with the project's site (``revops.admin_site``): open to the roles that
    edit something, without ``is_staff`` set by hand."""

    default_site = "revops.admin_site.RevOpsAdminSite"

    def ready(self):
        super().ready()  # registers every app's ModelAdmins
        from revops.user_admin import register_user_admin

        register_user_admin(self.module.site)
