"""Which models make up each shared definition, and their registration with django-auditlog.

Every change to one of these models is recorded (who, when, a before/after diff) as an auditlog
``LogEntry`` whose ``additional_data`` says which definition it belongs to and, for versioned
definitions, which version (``{"definition": "icp", "version": 3}``), so a criterion's change is
found in the history of "ICP v3" even though it is a row of its own.
"""

from dataclasses import dataclass
from functools import cache

from auditlog.registry import auditlog
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.db import models


@dataclass(frozen=True)
class DefinitionKind:
    key: str
    label: str
    # The versioned parent ("leads.IcpVersion"); None for plain lists edited in place.
    version_model: str | None
    # The other models whose rows belong to the definition.
    row_models: tuple[str, ...]

    @property
    def model_labels(self) -> tuple[str, ...]:
        return ((self.version_model,) if self.version_model else ()) + self.row_models

    def models(self) -> list[type[models.Model]]:
        return [apps.get_model(label) for label in self.model_labels]

    @property
    def main_model(self) -> str:
        """The model ops admins open in the admin to edit this definition."""
        return self.version_model or self.row_models[0]

    def version_class(self):
        return apps.get_model(self.version_model) if self.version_model else None

    def content_type_ids(self) -> list[int]:
        return [ct.pk for ct in ContentType.objects.get_for_models(*self.models()).values()]


KINDS: tuple[DefinitionKind, ...] = (
    DefinitionKind(
        key="icp",
        label="Ideal Customer Profile",
        version_model="leads.IcpVersion",
        row_models=("leads.IcpCriterion",),
    ),
    DefinitionKind(
        key="lifecycle",
        label="Lifecycle stages",
        version_model="leads.LifecycleVersion",
        row_models=("leads.LifecycleStage",),
    ),
    DefinitionKind(
        key="sla",
        label="Handoff SLAs",
        version_model="leads.SlaVersion",
        row_models=("leads.SlaPolicy",),
    ),
    DefinitionKind(
        key="scoring-model",
        label="Scoring model",
        version_model="scoring.ScoringModel",
        row_models=("scoring.EventWeight",),
    ),
    DefinitionKind(
        key="goals",
        label="Shared goals",
        version_model="metrics.GoalSet",
        row_models=("metrics.Goal",),
    ),
    DefinitionKind(
        key="target-accounts",
        label="Target accounts",
        version_model="leads.TargetAccountListVersion",
        row_models=("leads.TargetAccount",),
    ),
    DefinitionKind(
        key="rejection-reasons",
        label="Rejection reasons",
        version_model=None,
        row_models=("leads.RejectionReason",),
    ),
    DefinitionKind(
        key="objection-tags",
        label="Objection tags",
        version_model=None,
        row_models=("leads.ObjectionTag",),
    ),
    DefinitionKind(
        key="calendars",
        label="Business calendars",
        version_model=None,
        row_models=("leads.BusinessCalendar", "leads.WorkingHours", "leads.Holiday"),
    ),
)

KINDS_BY_KEY = {kind.key: kind for kind in KINDS}


@cache
def kind_for_model_label(label: str) -> DefinitionKind | None:
    """The definition a model belongs to, by its label ("leads.IcpCriterion"), lower-cased."""
    for kind in KINDS:
        if label.lower() in {model_label.lower() for model_label in kind.model_labels}:
            return kind
    return None


def additional_data_for(instance: models.Model) -> dict:
    """What each log entry of ``instance`` carries besides the diff: its definition and, for a
    versioned definition, the version number (a row's is its version's)."""
    kind = kind_for_model_label(instance._meta.label)
    data: dict = {"definition": kind.key if kind else ""}
    if kind is None or kind.version_model is None:
        calendar = getattr(instance, "calendar", None)
        if calendar is not None:
            data["calendar"] = str(calendar)
        return data
    version = instance if instance._meta.label == kind.version_model else instance.version
    data["version"] = version.number
    return data


def _get_additional_data(self) -> dict:
    return additional_data_for(self)


def register_audited_models() -> None:
    """Register every definition model with auditlog (idempotent: ``ready`` may run twice in
    tests). The models stay free of audit code: auditlog reads ``get_additional_data`` off the
    instance, so it is attached here, next to the table that gives it meaning."""
    for kind in KINDS:
        for model in kind.models():
            model.get_additional_data = _get_additional_data
            if not auditlog.contains(model):
                auditlog.register(model)
