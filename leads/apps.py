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

        from leads.panels import register_lead_panel
        from leads.target_accounts.selectors import lead_target_badge

        # The lead page's "target account" badge (the list in force now).
        register_lead_panel("target_account", lead_target_badge)

        from leads.demo.hooks import on_demo_seeded
        from leads.target_accounts.demo import demo_target_accounts

        # seed_demo publishes a target-account list of the demo accounts.
        on_demo_seeded(demo_target_accounts)

        from leads.partitions import event_keys_after_bare_load
        from leads.services.bulk import tables_loaded_bare

        # The seed loads events with their triggers off: their idempotency keys follow.
        tables_loaded_bare.connect(event_keys_after_bare_load, dispatch_uid="leads-event-keys")

        post_migrate.connect(grant_roles_after_migrate, dispatch_uid="leads.roles.grant")
        user_logged_in.connect(extend_meeting_room_session, dispatch_uid="leads.roles.session")
