"""The scoring model in force, in plain words, for the playbook page (``revops.playbook``).

Read through ``scoring_model_in_force`` (``leads.selectors.version_in_force`` underneath) and
returned as frozen values; what changed since the previous model uses the same diff as the
leads sections (``leads.playbook.diff_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from leads.choices import EventKind
from leads.playbook import (
    Change,
    VersionMeta,
    diff_rows,
    points_text,
    previous_version,
    version_meta,
)
from scoring.models import ScoringModel
from scoring.selectors import scoring_model_in_force


@dataclass(frozen=True)
class WeightLine:
    event: str  # "Demo request"
    points: float
    per_event: str  # "+30 points each"
    daily_cap: str  # "counted at most once a day"


@dataclass(frozen=True)
class ScoringSection:
    version: VersionMeta | None
    weights: tuple[WeightLine, ...]
    rules: tuple[str, ...]  # decay, caps, penalties, bands, in sentences
    changes: tuple[Change, ...]


def _times(count: int) -> str:
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def weight_lines(model: ScoringModel) -> list[WeightLine]:
    labels = dict(EventKind.choices)
    weights = sorted(model.weights.all(), key=lambda w: (-w.points, labels.get(w.kind, w.kind)))
    return [
        WeightLine(
            event=labels.get(w.kind, w.kind),
            points=w.points,
            per_event=f"{points_text(w.points)} each",
            daily_cap=f"counted at most {_times(w.daily_cap)} a day",
        )
        for w in weights
    ]


def model_rules(model: ScoringModel) -> dict[str, str]:
    """The model's other settings as sentences a rep can repeat, by topic."""
    rules = {
        "fading": f"Engagement fades: an event counts half after {model.half_life_days:g} days, "
        f"a quarter after {model.half_life_days * 2:g} days.",
        "engagement range": f"Engagement counts between {model.engagement_floor:g} and "
        f"{model.engagement_cap:g} points; the total score is ICP fit points plus engagement.",
        "personal mailbox": "A personal mailbox (gmail.com, outlook.com…) counts "
        f"{points_text(model.personal_email_penalty)}.",
        "competitors": (
            f"An address at a competitor ({', '.join(model.competitor_domains)}) counts "
            f"{points_text(model.competitor_penalty)}."
            if model.competitor_domains
            else ""
        ),
        "grades": "Grades pair the fit tier with an engagement band: band 1 from "
        f"{model.band_1_min:g} engagement points, band 2 from {model.band_2_min:g}, band 3 "
        f"from {model.band_3_min:g}, band 4 below (A1 is the best fit and the hottest).",
    }
    return {topic: text for topic, text in rules.items() if text}


def _rows(weights: list[WeightLine], rules: dict[str, str]) -> dict[str, dict[str, str]]:
    rows = {line.event: {"points": line.per_event, "limit": line.daily_cap} for line in weights}
    rows["Other rules"] = rules
    return rows


def scoring_playbook(*, at: datetime | None = None) -> ScoringSection:
    model = scoring_model_in_force(at=at or timezone.now())
    if model is None:
        return ScoringSection(None, (), (), ())
    weights, rules = weight_lines(model), model_rules(model)
    previous = previous_version(model)
    before = _rows(weight_lines(previous), model_rules(previous)) if previous else None
    return ScoringSection(
        version=version_meta(model, previous),
        weights=tuple(weights),
        rules=tuple(rules.values()),
        changes=diff_rows(before, _rows(weights, rules), noun="event", summary_field="points"),
    )
