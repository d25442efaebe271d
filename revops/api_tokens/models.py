"""An API token as django-rest-knox stores it (``KNOX_TOKEN_MODEL``): the SHA-512 digest of the
key and its first characters (``token_key``, to find the row), never the key itself; plus a
name, when it was last used, and an integer id to list and revoke it by."""

from django.db import models
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS


class ApiToken(AbstractAuthToken):
    id = models.BigAutoField(primary_key=True)
    # knox's digest is its primary key; here an ordinary unique column, so URLs and the admin
    # name a token by its id and no digest leaves the database.
    digest = models.CharField(max_length=CONSTANTS.DIGEST_LENGTH, unique=True)
    name = models.CharField(
        max_length=100, blank=True, help_text="What the token is for, e.g. “HubSpot sync”."
    )
    last_used = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Last request authenticated with it (updated at most once a minute).",
    )

    class Meta:
        verbose_name = "API token"
        ordering = ["-created"]
        # Tokens are made by their owner through the API, never added or edited in the admin.
        default_permissions = ("view", "delete")

    def __str__(self) -> str:
        return f"{self.prefix}… of {self.user}"

    @property
    def prefix(self) -> str:
        """The key's first characters (knox's lookup column): enough to recognise it."""
        return self.token_key
