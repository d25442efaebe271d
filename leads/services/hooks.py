"""What leads announces to other apps, without importing them.

* ``on_lead_facts_changed(hook)``: the write layer calls ``hook(lead_ids=[…])`` — sorted,
  distinct — once per batch whose writes change what a lead's score depends on (new leads,
  changed lead or account fields, new engagement events), inside the writing transaction.
  Scoring marks those leads for a rescore there, so a lost broker message loses nothing.
* ``on_score_all_requested(hook)``: ``hook(note=…)`` scores every lead now, in this process,
  and returns how many leads it scored (the demo seeder asks for it after loading).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

_FACTS_CHANGED_HOOKS: list[Callable[..., None]] = []
_SCORE_ALL_HOOKS: list[Callable[..., int]] = []


def on_lead_facts_changed(hook: Callable[..., None]) -> None:
    """Register ``hook(lead_ids=…)``; it runs inside the writing transaction."""
    if hook not in _FACTS_CHANGED_HOOKS:
        _FACTS_CHANGED_HOOKS.append(hook)


def lead_facts_changed(*, lead_ids: Iterable[int]) -> list[int]:
    """Announce that these leads' facts changed; returns the ids announced (sorted, distinct).
    Called by the write layer, once per batch, after the batch's rows are written."""
    ids = sorted(set(lead_ids))
    if ids:
        for hook in _FACTS_CHANGED_HOOKS:
            hook(lead_ids=ids)
    return ids


def on_score_all_requested(hook: Callable[..., int]) -> None:
    """Register ``hook(note=…) -> leads scored``."""
    if hook not in _SCORE_ALL_HOOKS:
        _SCORE_ALL_HOOKS.append(hook)


def leads_score_all_now(*, note: str = "") -> int | None:
    """Score every lead now through the registered hook; None when no app scores leads."""
    scored = None
    for hook in _SCORE_ALL_HOOKS:
        scored = (scored or 0) + hook(note=note)
    return scored
