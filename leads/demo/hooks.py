"""What the demo seeder announces to other apps, without importing them.

* ``on_demo_seeded(hook)``: after ``seed_demo`` has loaded (and scored) the facts, it calls
  ``hook(as_of=…)``, which adds that app's own demo rows (metrics: goals and past meetings)
  and returns a line for the command's summary (or "").
* ``on_demo_reset(hook)``: before ``seed_demo --reset`` deletes the facts and the demo users,
  ``hook(usernames=…)`` removes that app's demo rows that point at them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

_SEEDED_HOOKS: list[Callable[..., str]] = []
_RESET_HOOKS: list[Callable[..., None]] = []


def on_demo_seeded(hook: Callable[..., str]) -> None:
    if hook not in _SEEDED_HOOKS:
        _SEEDED_HOOKS.append(hook)


def on_demo_reset(hook: Callable[..., None]) -> None:
    if hook not in _RESET_HOOKS:
        _RESET_HOOKS.append(hook)


def demo_seeded(*, as_of: datetime) -> list[str]:
    """Run every app's demo additions; their summary lines, empty ones left out."""
    return [line for hook in _SEEDED_HOOKS if (line := hook(as_of=as_of))]


def demo_reset(*, usernames: Iterable[str]) -> None:
    names = tuple(usernames)
    for hook in _RESET_HOOKS:
        hook(usernames=names)
