"""The shared target-account list (account-based marketing): the accounts marketing and sales
agreed to go after together, as a versioned definition like the ICP.

A version is drafted by RevOps admins (accounts imported by domain or name), then published with
an ``effective_from``; a published list never changes. A lead or an opportunity is "from a
target account" when its account is on the list in force at the instant that matters (see
``leads.target_accounts.selectors``).
"""

from django.core.exceptions import ValidationError
from django.db import models

from leads.models.definitions import DefinitionVersion, VersionedRow
from leads.models.facts import Account


class TargetTier(models.TextChoices):
    TIER_1 = "1", "Tier 1 (one-to-one)"
    TIER_2 = "2", "Tier 2 (one-to-few)"
    TIER_3 = "3", "Tier 3 (one-to-many)"


class TargetAccountListVersion(DefinitionVersion):
    """One agreed version of the target-account list."""

    label = "target-account list"
    children_relation = "accounts"

    class Meta(DefinitionVersion.Meta):
        verbose_name = "target-account list version"

    def validate_for_publish(self) -> None:
        if not self.accounts.exists():
            raise ValidationError("A target-account list needs at least one account.")


class TargetAccount(VersionedRow):
    """An account on one version of the list, with its ABM tier and who owns the play."""

    # The unique (version, account) index below leads with version_id: no second index for it.
    version = models.ForeignKey(
        TargetAccountListVersion, on_delete=models.CASCADE, related_name="accounts", db_index=False
    )
    # An account deleted from the facts leaves every list it was on (nothing to target); a
    # visible relation, so the demo reset empties these rows with the accounts.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="target_rows")
    tier = models.CharField(max_length=1, choices=TargetTier.choices, blank=True)
    note = models.CharField(
        max_length=200, blank=True, help_text="Who owns the account play, or why it is targeted."
    )

    class Meta:
        ordering = ["version", "tier", "account__name"]
        verbose_name = "target account"
        constraints = [
            # Also the index of "is this account on that version": (version, account).
            models.UniqueConstraint(
                fields=["version", "account"],
                name="leads_targetaccount_unique_account",
                violation_error_message="This account is already on the list.",
            ),
        ]

    def __str__(self) -> str:
        return str(self.account)
