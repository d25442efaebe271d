"""Panels other apps add to the lead and handoff pages, without leads importing them.

An app registers ``register_lead_panel(name, context_fn)`` in its ``AppConfig.ready``;
``context_fn(lead)`` returns what the template shows under ``name`` (scoring adds the score's
explanation as ``explanation`` and the predicted conversion as ``predicted``). A page asks for
the panels it shows; a panel nobody registered is simply absent from the context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

_PANELS: dict[str, Callable[[Any], Any]] = {}


def register_lead_panel(name: str, context_fn: Callable[[Any], Any]) -> None:
    _PANELS[name] = context_fn


def lead_panels(lead, names: Iterable[str] | None = None) -> dict[str, Any]:
    """The registered panels' context for ``lead`` (only ``names`` when given)."""
    wanted = _PANELS if names is None else [name for name in names if name in _PANELS]
    return {name: _PANELS[name](lead) for name in wanted}
