"""The playbook: the definitions in force, in plain words, for every role to read and print.

``leads_playbook(at=…)`` reads the ICP, the lifecycle, the SLAs and the rejection reasons in
force through ``leads.selectors`` (the one place that says which version applies; the lifecycle
as the ``leads.lifecycle.Lifecycle`` value every app reads) and returns one frozen value: no ORM
object reaches the template. Each versioned definition also says what changed since the version
it replaced, as a diff of what the page shows (``diff_rows``), so a change reads the way the rule
reads. Scoring adds its own section (``scoring.playbook``); the page composes both
(``revops.playbook``), so leads never imports scoring.

The wording helpers (criteria, triggers, calendars, hours) are plain functions over plain values.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from leads.calendars import CALENDAR_PREFETCH, calendar_spec
from leads.choices import (
    AccountSignal,
    CriterionAttribute,
    EventKind,
    FitTier,
    Region,
    Seniority,
    StageKind,
    Team,
)
from leads.lifecycle import EVENT, LOST, NURTURE, OPEN, SALES, WON, Lifecycle, Stage
from leads.models import (
    DefinitionVersion,
    IcpVersion,
    RejectionReason,
    SlaVersion,
)
from leads.selectors import (
    icp_in_force,
    lifecycle_in_force,
    lifecycle_of,
    sla_in_force,
    version_in_force,
)
from leads.sla_clock import WEEKDAY_NAMES, BusinessCalendarSpec

# --- Values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VersionMeta:
    """Which version a section shows, since when, and the publisher's note."""

    number: int
    effective_from: datetime | None
    note: str
    published_by: str
    previous_number: int | None = None


@dataclass(frozen=True)
class Change:
    """One difference from the previous version, in the page's own words."""

    subject: str
    action: str  # "added", "removed" or "changed"
    field: str = ""
    before: str = ""
    after: str = ""

    @property
    def text(self) -> str:
        if self.action == "added":
            return f"Added {self.subject}" + (f": {self.after}" if self.after else "")
        if self.action == "removed":
            return f"Removed {self.subject}" + (f" (was: {self.before})" if self.before else "")
        return f"{self.subject}: {self.field} changed from “{self.before}” to “{self.after}”"


@dataclass(frozen=True)
class CriterionLine:
    name: str
    rule: str  # "Account industry is Software, Healthcare or E-commerce"
    points: int


@dataclass(frozen=True)
class TierLine:
    tier: str  # "Tier A"
    rule: str  # "35 fit points or more"


@dataclass(frozen=True)
class IcpSection:
    version: VersionMeta | None
    criteria: tuple[CriterionLine, ...]
    exclusions: tuple[CriterionLine, ...]
    tiers: tuple[TierLine, ...]
    max_fit_points: int
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class StageLine:
    key: str
    name: str
    buyer_label: str
    kind: str  # "Open", "Won"…
    is_funnel: bool
    owner: str  # "Marketing" / "Sales"
    definition: str
    trigger: str
    handoff: str
    on_reject: str
    cooldown: str


@dataclass(frozen=True)
class LifecycleSection:
    version: VersionMeta | None
    funnel: tuple[StageLine, ...]
    off_funnel: tuple[StageLine, ...]
    threshold_note: str
    changes: tuple[Change, ...]

    @property
    def stages(self) -> tuple[StageLine, ...]:
        return self.funnel + self.off_funnel


@dataclass(frozen=True)
class SlaLine:
    stage: str
    segment: str
    respond: str
    accept: str
    calendar: str
    hours: str
    on_breach: str


@dataclass(frozen=True)
class SlaSection:
    version: VersionMeta | None
    policies: tuple[SlaLine, ...]
    changes: tuple[Change, ...]


@dataclass(frozen=True)
class ReasonLine:
    label: str
    requires_note: bool


@dataclass(frozen=True)
class LeadsPlaybook:
    at: datetime
    icp: IcpSection
    lifecycle: LifecycleSection
    sla: SlaSection
    reasons: tuple[ReasonLine, ...]
    rejected_go_to: str


# --- Wording -----------------------------------------------------------------------------------

_VALUE_LABELS: dict[str, Mapping[str, str]] = {
    CriterionAttribute.REGION: {key.lower(): label for key, label in Region.choices},
    CriterionAttribute.SIGNALS: dict(AccountSignal.choices),
    CriterionAttribute.SENIORITY: dict(Seniority.choices),
}
_CASED = {"hubspot": "HubSpot", "e-commerce": "E-commerce", "saas": "SaaS"}


def join_or(items: Sequence[str], word: str = "or") -> str:
    """["a"] → "a"; ["a", "b", "c"] → "a, b or c"."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} {word} {items[-1]}"


def value_label(attribute: str, value: str) -> str:
    """A stored criterion value (lower-cased) as people say it."""
    labels = _VALUE_LABELS.get(attribute)
    if labels is not None and value.lower() in labels:
        return labels[value.lower()]
    if attribute == CriterionAttribute.COUNTRY:
        return value.upper()
    if attribute == CriterionAttribute.TITLE:
        return f"“{value}”"
    return _CASED.get(value.lower(), value[:1].upper() + value[1:])


def money_compact(value: Decimal | float) -> str:
    """20_000_000 → "$20M", 1_000_000_000 → "$1B", 250_000 → "$250K"."""
    amount = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if abs(amount) >= size:
            return f"${amount / size:,.3g}{suffix}".replace(".0", "")
    return f"${amount:,.0f}"


def _number(value: Decimal | float) -> str:
    return f"{float(value):,.0f}"


def criterion_rule(
    attribute: str,
    values: Iterable[str] = (),
    minimum: Decimal | float | None = None,
    maximum: Decimal | float | None = None,
) -> str:
    """An ICP criterion as a sentence: "Account has 200 to 5,000 employees"."""
    if attribute in (CriterionAttribute.EMPLOYEES, CriterionAttribute.ANNUAL_REVENUE):
        show = _number if attribute == CriterionAttribute.EMPLOYEES else money_compact
        if minimum is not None and maximum is not None:
            span = f"{show(minimum)} to {show(maximum)}"
        elif minimum is not None:
            span = f"at least {show(minimum)}"
        else:
            span = f"at most {show(maximum)}"
        if attribute == CriterionAttribute.EMPLOYEES:
            return f"Account has {span} employees"
        return f"Account annual revenue is {span}"
    shown = join_or([value_label(attribute, v) for v in values])
    return {
        CriterionAttribute.INDUSTRY: f"Account industry is {shown}",
        CriterionAttribute.COUNTRY: f"Account is based in {shown}",
        CriterionAttribute.REGION: f"Account is in {shown}",
        CriterionAttribute.TECHNOLOGIES: f"Account uses {shown}",
        CriterionAttribute.SIGNALS: f"Account shows: {shown}",
        CriterionAttribute.SENIORITY: f"Contact’s seniority is {shown}",
        CriterionAttribute.TITLE: f"Contact’s job title contains {shown}",
    }.get(attribute, f"{attribute} is {shown}")


def points_text(points: float) -> str:
    shown = f"{points:g}"
    unit = "point" if abs(points) == 1 else "points"
    return f"+{shown} {unit}" if points > 0 else f"{shown.replace('-', '−')} {unit}"


def hours_text(hours: Decimal | float) -> str:
    """Decimal("2.00") → "2 business hours"; 0.5 → "30 business minutes"."""
    value = float(hours)
    if value < 1:
        minutes = round(value * 60)
        return f"{minutes} business minute{'s' if minutes != 1 else ''}"
    shown = f"{value:g}"
    return f"{shown} business hour{'s' if value != 1 else ''}"


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def _hhmm(moment) -> str:
    return moment.strftime("%H:%M")


def calendar_hours_text(spec: BusinessCalendarSpec, *, today: date | None = None) -> str:
    """The calendar's working hours in words: "Monday to Friday, 09:00–17:00 (America/New_York
    time); the clock stops on 4 holidays from today on"."""
    by_hours: dict[tuple, list[int]] = {}
    for day in range(7):
        blocks = tuple(spec.working_hours.get(day, ()))
        if blocks:
            by_hours.setdefault(blocks, []).append(day)
    parts = []
    for blocks, days in by_hours.items():
        runs: list[list[int]] = []
        for day in days:
            if runs and runs[-1][-1] == day - 1:
                runs[-1].append(day)
            else:
                runs.append([day])
        names = [
            WEEKDAY_NAMES[run[0]]
            if len(run) == 1
            else f"{WEEKDAY_NAMES[run[0]]} to {WEEKDAY_NAMES[run[-1]]}"
            for run in runs
        ]
        spans = " and ".join(f"{_hhmm(opens)}–{_hhmm(closes)}" for opens, closes in blocks)
        parts.append(f"{join_or(names, 'and')}, {spans}")
    text = "; ".join(parts) + f" ({spec.time_zone.replace('_', ' ')} time)"
    upcoming = sorted(d for d in spec.holidays if today is None or d >= today)
    if upcoming:
        count = len(upcoming)
        text += (
            f"; the clock also stops on {count} holiday{'s' if count != 1 else ''}"
            f"{' from today on' if today is not None else ''} (next: {upcoming[0]:%b %-d, %Y})"
        )
    return text


def tier_label(tier: str) -> str:
    return dict(FitTier.choices).get(tier, tier)


def stage_definition(lifecycle: Lifecycle, stage: Stage) -> str:
    """What being at a stage means, derived from its rules."""
    if stage.kind == WON:
        return "A deal was won: the lead is a customer."
    if stage.kind == LOST:
        return "The deal was lost; the lead’s journey ends here."
    if stage.kind == NURTURE:
        return (
            "Not ready to buy now: back with marketing, in automated nurture, until it shows "
            "new buying intent."
        )
    if stage.kind == StageKind.DISQUALIFIED:
        return "Not a fit: nobody works it further."
    if stage.key == lifecycle.first:
        return "Every new lead starts here, before it has shown enough interest and fit."
    if stage.is_score_triggered:
        return (
            "Engaged with content and fits the ICP: its score (fit + engagement) reached "
            f"{stage.trigger_score}."
        )
    if stage.trigger_type == EVENT:
        event = dict(EventKind.choices).get(stage.trigger_event_kind, stage.trigger_event_kind)
        return f"Sales validated real buying intent: {event.lower()}."
    if stage.key == lifecycle.opportunity_key:
        return "A deal is being decided: an open opportunity exists."
    if stage.team == SALES:
        return "Sales accepted it as worth working."
    return "Set by a person."


def stage_trigger(lifecycle: Lifecycle, stage: Stage) -> str:
    """How a lead gets into a stage."""
    names = lifecycle.names
    if stage.key == lifecycle.first:
        return "Created (imported, from a form or by hand)"
    if stage.is_score_triggered:
        return f"Score threshold: total score reaches {stage.trigger_score}"
    if stage.trigger_type == EVENT and stage.trigger_event_kind:
        event = dict(EventKind.choices).get(stage.trigger_event_kind, stage.trigger_event_kind)
        before = [
            b
            for b, s in lifecycle.event_triggers.get(stage.trigger_event_kind, ())
            if s.key == stage.key
        ]
        where = f" while at {join_or([names.get(b, b) for b in before])}" if before else ""
        return f"Event: {event}{where}"
    accepted_from = [k for k in lifecycle.open_keys if lifecycle.accept_target(k) == stage.key]
    handed = [k for k in accepted_from if lifecycle.by_key[k].opens_handoff]
    if handed:
        return f"Sales accepts the {join_or([names[k] for k in handed])} handoff"
    if stage.kind == OPEN and stage.key == lifecycle.opportunity_key:
        return "An open deal is recorded for the lead"
    if stage.kind == WON:
        return "The deal is won"
    if stage.kind == LOST:
        return "The deal is lost"
    rejected_from = [
        s.name
        for s in lifecycle.stages
        if lifecycle.reject_target(s.key) == stage.key and s.opens_handoff
    ]
    if rejected_from:
        return f"Sales rejects the {join_or(rejected_from)} handoff (with a reason)"
    return "Set by a person"


def stage_line(lifecycle: Lifecycle, stage: Stage) -> StageLine:
    names = lifecycle.names
    target = lifecycle.reject_target(stage.key) if stage.opens_handoff else None
    on_reject = ""
    cooldown = ""
    if stage.opens_handoff:
        on_reject = names.get(target, "—") if target else "—"
        days = stage.requalify_cooldown_days
        cooldown = (
            "Re-qualifies on new engagement after the rejection"
            if days == 0
            else f"Re-qualifies on new engagement from {days} day{'s' if days != 1 else ''} "
            "after the rejection"
        )
    return StageLine(
        key=stage.key,
        name=stage.name,
        buyer_label=stage.label,
        kind=dict(StageKind.choices).get(stage.kind, stage.kind),
        is_funnel=stage.key in lifecycle.funnel,
        owner=dict(Team.choices).get(stage.team, stage.team),
        definition=stage_definition(lifecycle, stage),
        trigger=stage_trigger(lifecycle, stage),
        handoff="Hands the lead to sales; the SLA clock starts" if stage.opens_handoff else "",
        on_reject=on_reject,
        cooldown=cooldown,
    )


def fit_alone_reaches_handoff(lifecycle: Lifecycle, max_fit_points: float) -> bool:
    """Whether a lead with the best fit and no engagement reaches the handoff threshold: the
    one answer the playbook and the publish confirmation both give (the README's promise:
    never). ``max_fit_points`` is the best total reachable without engagement."""
    threshold = lifecycle.handoff_threshold
    return threshold is not None and max_fit_points >= threshold


def threshold_note(lifecycle: Lifecycle, max_fit_points: float) -> str:
    """Whether fit alone can hand a lead to sales, in words."""
    threshold = lifecycle.handoff_threshold
    if threshold is None:
        return ""
    if not fit_alone_reaches_handoff(lifecycle, max_fit_points):
        return (
            f"Fit tops out at {max_fit_points:g} points, below the threshold of {threshold}: a "
            "lead is never handed to sales on fit alone, it must also engage."
        )
    return (
        f"Fit alone can reach {max_fit_points:g} points, at or above the threshold of "
        f"{threshold}: a lead can be handed to sales without any engagement."
    )


def diff_rows(
    before: Mapping[str, Mapping[str, str]] | None,
    after: Mapping[str, Mapping[str, str]],
    *,
    noun: str,
    summary_field: str = "",
) -> tuple[Change, ...]:
    """What changed between two versions' rows, each row a subject → {field label: shown text}:
    rows added or removed, then each changed field of a row present in both. ``summary_field``
    is the field quoted for an added or removed row. No previous version: no changes."""
    if before is None:
        return ()
    changes: list[Change] = []
    for subject, fields in after.items():
        if subject not in before:
            changes.append(
                Change(f"{noun} “{subject}”", "added", after=fields.get(summary_field, ""))
            )
    for subject, fields in before.items():
        if subject not in after:
            changes.append(
                Change(f"{noun} “{subject}”", "removed", before=fields.get(summary_field, ""))
            )
    for subject, fields in after.items():
        old = before.get(subject)
        if old is None:
            continue
        for label, text in fields.items():
            if old.get(label, "") != text:
                changes.append(
                    Change(subject, "changed", label, old.get(label, "") or "—", text or "—")
                )
    return tuple(changes)


# --- Reading the definitions in force ---------------------------------------------------------

_TICK = timedelta(microseconds=1)


def previous_version(version: DefinitionVersion | None) -> DefinitionVersion | None:
    """The version that was in force just before ``version`` took force."""
    if version is None or version.effective_from is None:
        return None
    return version_in_force(type(version), at=version.effective_from - _TICK)


def version_meta(version: DefinitionVersion, previous: DefinitionVersion | None) -> VersionMeta:
    publisher = version.published_by
    return VersionMeta(
        number=version.number,
        effective_from=version.effective_from,
        note=version.note,
        published_by=(publisher.get_full_name() or publisher.get_username()) if publisher else "",
        previous_number=previous.number if previous is not None else None,
    )


# ICP


def _icp_lines(version: IcpVersion) -> tuple[list[CriterionLine], list[CriterionLine]]:
    criteria, exclusions = [], []
    for c in version.criteria.all():
        line = CriterionLine(
            name=c.name,
            rule=criterion_rule(c.attribute, c.values or (), c.min_value, c.max_value),
            points=c.points,
        )
        (exclusions if c.is_exclusion else criteria).append(line)
    return criteria, exclusions


def _tier_lines(version: IcpVersion) -> list[TierLine]:
    return [
        TierLine(tier_label(FitTier.A), f"{version.tier_a_min_points} fit points or more"),
        TierLine(
            tier_label(FitTier.B),
            f"{version.tier_b_min_points} to {version.tier_a_min_points - 1} fit points",
        ),
        TierLine(
            tier_label(FitTier.C),
            f"{version.tier_c_min_points} to {version.tier_b_min_points - 1} fit points",
        ),
        TierLine(
            tier_label(FitTier.D),
            f"fewer than {version.tier_c_min_points} fit points, or any poor fit",
        ),
    ]


def _icp_rows(criteria, exclusions, tiers) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {
        line.name: {"rule": line.rule, "points": points_text(line.points)} for line in criteria
    }
    rows.update({line.name: {"rule": line.rule, "points": "poor fit"} for line in exclusions})
    rows["Fit tiers"] = {line.tier: line.rule for line in tiers}
    return rows


def icp_section(*, at: datetime) -> IcpSection:
    version = icp_in_force(at=at)
    if version is None:
        return IcpSection(None, (), (), (), 0, ())
    criteria, exclusions = _icp_lines(version)
    tiers = _tier_lines(version)
    previous = previous_version(version)
    before = None
    if previous is not None:
        before = _icp_rows(*_icp_lines(previous), _tier_lines(previous))
    return IcpSection(
        version=version_meta(version, previous),
        criteria=tuple(criteria),
        exclusions=tuple(exclusions),
        tiers=tuple(tiers),
        max_fit_points=sum(line.points for line in criteria if line.points > 0),
        changes=diff_rows(
            before, _icp_rows(criteria, exclusions, tiers), noun="criterion", summary_field="rule"
        ),
    )


# Lifecycle

_STAGE_FIELDS = (
    ("name", "name"),
    ("buyer_label", "buyer label"),
    ("owner", "owner"),
    ("trigger", "trigger"),
    ("handoff", "handoff"),
    ("on_reject", "if rejected"),
    ("cooldown", "re-qualification"),
)


def _stage_rows(lines: Iterable[StageLine], names: Mapping[str, str]) -> dict[str, dict]:
    """Rows keyed by the *current* name of each stage key, so a renamed stage is one change."""
    return {
        names.get(line.key, line.name): {
            label: getattr(line, attr) for attr, label in _STAGE_FIELDS
        }
        for line in lines
    }


def lifecycle_section(*, at: datetime, max_fit_points: int) -> LifecycleSection:
    version = lifecycle_in_force(at=at)
    if version is None:
        return LifecycleSection(None, (), (), "", ())
    lifecycle = lifecycle_of(version)
    lines = [stage_line(lifecycle, stage) for stage in lifecycle.stages]
    by_key = {line.key: line for line in lines}
    previous = previous_version(version)
    before = None
    if previous is not None:
        old = lifecycle_of(previous)
        before = _stage_rows((stage_line(old, s) for s in old.stages), lifecycle.names)
    return LifecycleSection(
        version=version_meta(version, previous),
        funnel=tuple(by_key[key] for key in lifecycle.funnel),
        off_funnel=tuple(line for line in lines if line.key not in lifecycle.funnel),
        threshold_note=threshold_note(lifecycle, max_fit_points),
        changes=diff_rows(
            before, _stage_rows(lines, lifecycle.names), noun="stage", summary_field="trigger"
        ),
    )


# SLAs


def _sla_lines(version: SlaVersion, names: Mapping[str, str], order: Mapping[str, int], today):
    policies = sorted(
        version.policies.select_related("calendar", "escalate_to").prefetch_related(
            *(f"calendar__{name}" for name in CALENDAR_PREFETCH)
        ),
        key=lambda p: (order.get(p.stage_key, 999), p.tier == "", p.tier),
    )
    tiered = {p.stage_key for p in policies if p.tier}
    lines = []
    for policy in policies:
        if policy.tier:
            segment = f"{tier_label(policy.tier)} leads"
        else:
            segment = "All other leads" if policy.stage_key in tiered else "Every lead"
        breach = ["the assigned rep is told"]
        if policy.escalate_to is not None:
            person = policy.escalate_to
            breach.append(f"{person.get_full_name() or person.get_username()} is told")
        if policy.escalate_to_manager:
            breach.append("the rep's sales manager is told")
        if policy.reassign_on_breach:
            breach.append("the lead is reassigned")
        spec = calendar_spec(policy.calendar)
        lines.append(
            SlaLine(
                stage=names.get(policy.stage_key, policy.stage_key),
                segment=segment,
                respond=hours_text(policy.respond_within_hours),
                accept=hours_text(policy.accept_within_hours),
                calendar=policy.calendar.name,
                hours=calendar_hours_text(spec, today=today(spec)),
                on_breach=_sentence(join_or(breach, "and")),
            )
        )
    return lines


def _sla_rows(lines: Iterable[SlaLine]) -> dict[str, dict[str, str]]:
    return {
        f"{line.stage} · {line.segment}": {
            "respond within": line.respond,
            "accept or reject within": line.accept,
            "calendar": line.calendar,
            "on breach": line.on_breach,
        }
        for line in lines
    }


def sla_section(*, at: datetime, names: Mapping[str, str], order: Mapping[str, int]) -> SlaSection:
    version = sla_in_force(at=at)
    if version is None:
        return SlaSection(None, (), ())

    def today(spec: BusinessCalendarSpec) -> date:
        return at.astimezone(spec.zone).date()

    lines = _sla_lines(version, names, order, today)
    previous = previous_version(version)
    before = _sla_rows(_sla_lines(previous, names, order, today)) if previous else None
    return SlaSection(
        version=version_meta(version, previous),
        policies=tuple(lines),
        changes=diff_rows(before, _sla_rows(lines), noun="policy", summary_field="respond within"),
    )


def leads_playbook(*, at: datetime | None = None) -> LeadsPlaybook:
    """The ICP, lifecycle, SLAs and rejection reasons in force at ``at`` (now), in words."""
    at = at or timezone.now()
    icp = icp_section(at=at)
    lifecycle = lifecycle_section(at=at, max_fit_points=icp.max_fit_points)
    names = {line.key: line.name for line in lifecycle.stages}
    order = {line.key: position for position, line in enumerate(lifecycle.stages)}
    sla = sla_section(at=at, names=names, order=order)
    reasons = tuple(
        ReasonLine(reason.label, reason.requires_note)
        for reason in RejectionReason.objects.filter(is_active=True).order_by("order", "label")
    )
    targets = [
        f"a rejected {line.name} goes to {line.on_reject}"
        for line in lifecycle.stages
        if line.handoff and line.on_reject
    ]
    return LeadsPlaybook(
        at=at,
        icp=icp,
        lifecycle=lifecycle,
        sla=sla,
        reasons=reasons,
        rejected_go_to=join_or(targets, "and"),
    )
