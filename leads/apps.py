from django.apps import AppConfig
from django.db.models.signals import post_migrate


class LeadsConfig(AppConfig):
    name = "leads"
    verbose_name = "Leads & definitions"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from leads.audit.kinds import register_audited_models
        from leads.roles import extend_meeting_room_session, grant_roles_after_migrate

        register_audited_models()

        post_migrate.connect(grant_roles_after_migrate, dispatch_uid="leads.roles.grant")
        user_logged_in.connect(extend_meeting_room_session, dispatch_uid="leads.roles.session")
