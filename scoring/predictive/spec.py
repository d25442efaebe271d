"""What a conversion model is trained on (its features) and how much data it needs: plain
types, apart from ``learning`` so that reading them (the lead features, the model page) does not
import scikit-learn, which took 2.3 s of every process's start (web, workers, beat, manage.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIN_OUTCOMES = 200
MIN_PER_CLASS = 20
FeatureKind = Literal["category", "count", "amount", "number", "flag"]


@dataclass(frozen=True)
class Feature:
    """One input column. ``key`` is the row key; ``label`` the readable name in explanations.

    category: free text values, one-hot encoded (rare values pooled, missing its own value);
    count / amount: non-negative numbers, log1p-transformed (and splined if the spec says so);
    number: any number, standardised; flag: true/false.
    """

    key: str
    label: str
    kind: FeatureKind


@dataclass(frozen=True)
class FeatureSpec:
    features: tuple[Feature, ...]
    # Values meaning "not answered" (besides None and ""), e.g. a form's default "Select".
    missing_values: frozenset[str] = frozenset()
    min_frequency: int = 10  # category values seen fewer times are pooled as "infrequent"
    spline_knots: int = 0  # 0: counts/amounts enter as one standardised log1p column
    interactions: tuple[tuple[str, str], ...] = ()  # always used
    candidate_interactions: tuple[tuple[str, str], ...] = ()  # kept if CV on training says so
    max_interactions: int = 0
    c_grid: tuple[float, ...] = (0.03, 0.1, 0.3, 1.0)
    cv_folds: int = 5

    def __post_init__(self):
        keys = [f.key for f in self.features]
        if len(set(keys)) != len(keys):
            raise ValueError("Feature keys must be unique.")
        categories = {f.key for f in self.features if f.kind == "category"}
        for a, b in (*self.interactions, *self.candidate_interactions):
            if a not in categories or b not in categories:
                raise ValueError(f"Interaction {a} × {b}: both must be category features.")

    def feature(self, key: str) -> Feature:
        return next(f for f in self.features if f.key == key)
