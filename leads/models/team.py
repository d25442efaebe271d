"""Who works the leads: sales reps, their territory, segments and capacity."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import Q

from leads.choices import FitTier, Region


class SalesRep(models.Model):
    """A user who receives handoffs. Assignment is round robin among eligible reps."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sales_rep"
    )
    region = models.CharField(
        max_length=5, choices=Region.choices, blank=True, help_text="Territory; empty = any."
    )
    tiers = models.JSONField(
        default=list,
        blank=True,
        help_text='Fit tiers this rep works, e.g. ["A", "B"]; empty = any.',
    )
    capacity = models.PositiveIntegerField(
        default=40,
        validators=[MinValueValidator(1)],
        help_text="Most pending handoffs at once; a rep at capacity is skipped.",
    )
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="team_members",
        help_text="The sales manager whose team this rep is on (sees and reassigns its queue).",
    )
    is_active = models.BooleanField(default=True)
    out_of_office_from = models.DateField(null=True, blank=True)
    out_of_office_until = models.DateField(null=True, blank=True)
    last_assigned_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["user__username"]
        constraints = [
            models.CheckConstraint(
                condition=Q(out_of_office_from__isnull=True)
                | Q(out_of_office_until__isnull=True)
                | Q(out_of_office_from__lte=models.F("out_of_office_until")),
                name="leads_salesrep_ooo_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.user.get_full_name() or self.user.get_username()

    def clean(self) -> None:
        super().clean()
        errors = {}
        if not isinstance(self.tiers, list) or any(t not in FitTier.values for t in self.tiers):
            errors["tiers"] = (
                f'A list of fit tiers, e.g. ["A", "B"] (known: {", ".join(FitTier.values)}).'
            )
        if (
            self.out_of_office_from
            and self.out_of_office_until
            and self.out_of_office_from > self.out_of_office_until
        ):
            errors["out_of_office_until"] = "The return date is before the first day out."
        if errors:
            raise ValidationError(errors)
