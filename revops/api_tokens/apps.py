from django.apps import AppConfig


class ApiTokensConfig(AppConfig):
    name = "revops.api_tokens"
    label = "api_tokens"
    verbose_name = "API tokens"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        # drf-spectacular finds its extensions by import: the token scheme of the OpenAPI schema.
        from revops.api_tokens import schema  # noqa: F401
