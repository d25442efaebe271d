"""Train, evaluate, predict and explain a conversion model: pure functions, no ORM.

The model is a scikit-learn Pipeline: each feature of a :class:`FeatureSpec` has its own
transformer (one-hot with a minimum frequency for categories, log1p + optional B-splines +
standardisation for counts and amounts, a missing indicator for numbers), followed by an
L2-regularised logistic regression whose strength C is chosen by stratified cross-validation on
the training part only. Optional pairwise interactions of categories are chosen the same way
(greedy forward selection on cross-validated ROC AUC of the training part). The product's lead
features and the ``bench/predictive_auc.py`` data set both go through :func:`train`; only their
feature specs differ.

Explanations: with a linear model the log-odds of a row are
``intercept + Σ coef·x = (intercept + Σ coef·mean) + Σ coef·(x − mean)``, where ``x`` is the
row's transformed (encoded, scaled) vector and ``mean`` the training average. The first term is
the log-odds of an average lead; each feature's share of the second is its contribution
("Source: Referral +0.8 log-odds"), exact and additive.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    SplineTransformer,
    StandardScaler,
)
from threadpoolctl import threadpool_limits

from scoring.predictive.spec import (  # noqa: F401  (part of this module's interface)
    MIN_OUTCOMES,
    MIN_PER_CLASS,
    Feature,
    FeatureKind,
    FeatureSpec,
)

MISSING = "(missing)"
LOG_KINDS = frozenset({"count", "amount"})


class TooLittleData(ValueError):
    """Raised instead of training on too few closed outcomes; the message says what is missing."""


@dataclass(frozen=True)
class Contribution:
    label: str  # e.g. "Source: Referral"
    log_odds: float


@dataclass(frozen=True)
class Explanation:
    probability: float
    baseline_probability: float  # an average lead's
    up: tuple[Contribution, ...]  # largest first
    down: tuple[Contribution, ...]  # most negative first


@dataclass
class TrainedModel:
    spec: FeatureSpec
    interactions: tuple[tuple[str, str], ...]
    pipeline: Pipeline
    c: float
    n_outcomes: int
    n_positive: int
    holdout_auc: float
    holdout_brier: float
    cv_auc: float
    # Per transformed column: the index of the explained term (feature or interaction), and
    # the training mean the contributions are measured from.
    column_terms: np.ndarray = field(repr=False)
    column_means: np.ndarray = field(repr=False)

    @property
    def term_labels(self) -> list[str]:
        return _term_labels(self.spec, self.interactions)

    def feature_names(self) -> list[str]:
        return [f.key for f in self.spec.features] + [f"{a}×{b}" for a, b in self.interactions]


def data_sufficiency(n_positive: int, n_negative: int) -> str | None:
    """The refusal message when outcomes are too few to learn from, else None.

    Rule: at least ``MIN_OUTCOMES`` closed outcomes, and at least ``MIN_PER_CLASS`` of each
    (converted and not): with fewer, the holdout figures are noise and so is the model."""
    total = n_positive + n_negative
    if total < MIN_OUTCOMES:
        return f"Too little data: {total} closed outcomes, need {MIN_OUTCOMES}."
    if n_positive < MIN_PER_CLASS or n_negative < MIN_PER_CLASS:
        return (
            f"Too little data: {n_positive} converted and {n_negative} not converted, "
            f"need at least {MIN_PER_CLASS} of each."
        )
    return None


# --- Encoding --------------------------------------------------------------------------------


def _category(value, missing_values: frozenset[str]) -> str:
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = str(value).strip()
    return MISSING if not text or text in missing_values else text


def _number(value) -> float:
    if value is None or value == "":
        return math.nan
    if isinstance(value, bool):
        return float(value)
    try:
        number = float(value)
    except (TypeError, ValueError) as bad:
        raise ValueError(f"Not a number: {value!r}") from bad
    return number


def design_matrix(
    rows: Sequence[Mapping], spec: FeatureSpec, interactions: Sequence[tuple[str, str]] = ()
) -> np.ndarray:
    """Rows (mappings of feature key → raw value) as an object matrix: one column per spec
    feature, then one per interaction. Keys not in the spec are ignored, so nothing outside the
    declared features (e.g. what sales did later) can reach the model."""
    columns = []
    for feature in spec.features:
        if feature.kind == "category":
            columns.append([_category(row.get(feature.key), spec.missing_values) for row in rows])
        else:
            values = [_number(row.get(feature.key)) for row in rows]
            if feature.kind in LOG_KINDS and any(v < 0 for v in values if not math.isnan(v)):
                raise ValueError(f"{feature.label}: counts and amounts cannot be negative.")
            columns.append(values)
    for a, b in interactions:
        columns.append(
            [
                f"{_category(row.get(a), spec.missing_values)} × "
                f"{_category(row.get(b), spec.missing_values)}"
                for row in rows
            ]
        )
    matrix = np.empty((len(rows), len(columns)), dtype=object)
    for index, column in enumerate(columns):
        matrix[:, index] = column
    return matrix


class ClipToTrainingRange(TransformerMixin, BaseEstimator):
    """Clips each column to the central ``coverage`` of its training values, so a value far
    outside what the model learnt from (a lead idle for a year, when trained leads were handed
    off within days) weighs no more than the most extreme ones it has seen, instead of being
    extrapolated along a straight line."""

    def __init__(self, coverage: float = 0.99):
        self.coverage = coverage

    def fit(self, X, y=None):
        values = np.asarray(X, dtype=float)
        tail = (1 - self.coverage) / 2
        self.low_ = np.quantile(values, tail, axis=0)
        self.high_ = np.quantile(values, 1 - tail, axis=0)
        return self

    def transform(self, X):
        return np.clip(np.asarray(X, dtype=float), self.low_, self.high_)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features, dtype=object)


def _numeric_branch(kind: FeatureKind, spline_knots: int) -> Pipeline:
    # keep_empty_features: a column never filled in (no accounts yet) stays, as zeros.
    steps = [SimpleImputer(strategy="median", keep_empty_features=True), ClipToTrainingRange()]
    if kind in LOG_KINDS:
        steps.append(FunctionTransformer(np.log1p, feature_names_out="one-to-one"))
        if spline_knots:
            steps.append(SplineTransformer(n_knots=spline_knots, degree=3, knots="quantile"))
    steps.append(StandardScaler())
    return make_pipeline(*steps)


def _to_float(x):
    return np.asarray(x, dtype=float)


def _term_groups(spec: FeatureSpec, n_interactions: int) -> dict[str, list[int]]:
    """Design-matrix columns (= terms) by how they are encoded; interactions are categories."""
    groups: dict[str, list[int]] = {"category": [], "log": [], "number": [], "flag": []}
    for index, feature in enumerate(spec.features):
        group = "log" if feature.kind in LOG_KINDS else feature.kind
        groups[group].append(index)
    groups["category"] += [len(spec.features) + k for k in range(n_interactions)]
    # Whether a number was missing is information of its own (a form left blank).
    groups["missing"] = groups["log"] + groups["number"]
    return {name: columns for name, columns in groups.items() if columns}


def build_pipeline(
    spec: FeatureSpec, interactions: Sequence[tuple[str, str]], c: float, n_rows: int
) -> Pipeline:
    """One transformer per kind of encoding (few transformers fit fast); :func:`_column_terms`
    maps each output column back to its term for the explanations."""
    min_frequency = max(1, min(spec.min_frequency, n_rows // 20))
    encoders = {
        "category": OneHotEncoder(
            handle_unknown="infrequent_if_exist", min_frequency=min_frequency
        ),
        "log": make_pipeline(
            FunctionTransformer(_to_float), _numeric_branch("count", spec.spline_knots)
        ),
        "number": make_pipeline(FunctionTransformer(_to_float), _numeric_branch("number", 0)),
        "flag": make_pipeline(
            FunctionTransformer(_to_float),
            SimpleImputer(strategy="constant", fill_value=0, keep_empty_features=True),
            StandardScaler(),
        ),
        "missing": make_pipeline(
            FunctionTransformer(_to_float),
            MissingIndicator(features="all"),
            FunctionTransformer(_to_float),
        ),
    }
    transformers = [
        (name, encoders[name], columns)
        for name, columns in _term_groups(spec, len(interactions)).items()
    ]
    columns = ColumnTransformer(transformers, sparse_threshold=0)
    model = LogisticRegression(C=c, max_iter=5000)
    return Pipeline([("features", columns), ("model", model)])


# --- Training --------------------------------------------------------------------------------


def _cv_auc(matrix, y, spec, interactions, c, folds) -> float:
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
    scores = []
    for fit_index, test_index in splitter.split(matrix, y):
        pipeline = build_pipeline(spec, interactions, c, len(fit_index))
        pipeline.fit(matrix[fit_index], y[fit_index])
        scores.append(
            roc_auc_score(y[test_index], pipeline.predict_proba(matrix[test_index])[:, 1])
        )
    return float(np.mean(scores))


def _select(rows, y, spec: FeatureSpec, folds: int) -> tuple[tuple, float, float]:
    """Interactions (greedy forward) and C, each by cross-validated AUC on these rows only."""
    chosen = list(spec.interactions)
    middle_c = spec.c_grid[len(spec.c_grid) // 2]
    candidates = [pair for pair in spec.candidate_interactions if pair not in chosen]
    best = _cv_auc(design_matrix(rows, spec, chosen), y, spec, chosen, middle_c, folds)
    while candidates and len(chosen) - len(spec.interactions) < spec.max_interactions:
        trials = []
        for pair in candidates:
            trial = [*chosen, pair]
            trials.append(
                (_cv_auc(design_matrix(rows, spec, trial), y, spec, trial, middle_c, folds), pair)
            )
        score, pair = max(trials)
        if score < best + 0.0005:  # keep only interactions that clearly help
            break
        chosen.append(pair)
        candidates.remove(pair)
        best = score
    matrix = design_matrix(rows, spec, chosen)
    scored = [(_cv_auc(matrix, y, spec, chosen, c, folds), -c) for c in spec.c_grid]
    cv_auc, negative_c = max(scored)  # ties: the stronger regularisation
    return tuple(chosen), -negative_c, cv_auc


def train(
    rows: Sequence[Mapping],
    outcomes: Sequence[int | bool],
    spec: FeatureSpec,
    *,
    holdout_fraction: float = 0.3,
    random_state: int = 42,
    refit_on_all: bool = True,
) -> TrainedModel:
    """Hold out a stratified ``holdout_fraction`` for the quality figures, choose interactions
    and C by cross-validation on the rest, fit, evaluate on the holdout; then (by default) refit
    the chosen pipeline on every outcome, which is the model used for predictions.

    Raises :class:`TooLittleData` under the minimum (see :func:`data_sufficiency`)."""
    # Many small fits: BLAS threads only fight each other (and other workers) over the cores,
    # which made a fit 30 times slower on a busy 2-core machine.
    with threadpool_limits(limits=1):
        return _train(rows, outcomes, spec, holdout_fraction, random_state, refit_on_all)


def _train(rows, outcomes, spec, holdout_fraction, random_state, refit_on_all) -> TrainedModel:
    y = np.asarray([1 if outcome else 0 for outcome in outcomes], dtype=int)
    if len(y) != len(rows):
        raise ValueError("One outcome per row, please.")
    n_positive = int(y.sum())
    refusal = data_sufficiency(n_positive, len(y) - n_positive)
    if refusal:
        raise TooLittleData(refusal)
    indices = np.arange(len(rows))
    fit_index, holdout_index = train_test_split(
        indices, test_size=holdout_fraction, stratify=y, random_state=random_state
    )
    fit_rows = [rows[i] for i in fit_index]
    minority = min(int(y[fit_index].sum()), int(len(fit_index) - y[fit_index].sum()))
    folds = max(2, min(spec.cv_folds, minority))
    interactions, c, cv_auc = _select(fit_rows, y[fit_index], spec, folds)

    pipeline = build_pipeline(spec, interactions, c, len(fit_index))
    pipeline.fit(design_matrix(fit_rows, spec, interactions), y[fit_index])
    holdout = design_matrix([rows[i] for i in holdout_index], spec, interactions)
    probabilities = pipeline.predict_proba(holdout)[:, 1]
    holdout_auc = float(roc_auc_score(y[holdout_index], probabilities))
    holdout_brier = float(brier_score_loss(y[holdout_index], probabilities))

    all_matrix = design_matrix(rows, spec, interactions)
    if refit_on_all:
        pipeline = build_pipeline(spec, interactions, c, len(rows))
        pipeline.fit(all_matrix, y)
    column_terms, column_means = _column_terms(pipeline, spec, interactions, all_matrix)
    return TrainedModel(
        spec=spec,
        interactions=interactions,
        pipeline=pipeline,
        c=c,
        n_outcomes=len(y),
        n_positive=n_positive,
        holdout_auc=holdout_auc,
        holdout_brier=holdout_brier,
        cv_auc=cv_auc,
        column_terms=column_terms,
        column_means=column_means,
    )


def _column_terms(pipeline, spec, interactions, matrix) -> tuple[np.ndarray, np.ndarray]:
    """For each transformed column, the term it encodes, and its training mean."""
    columns: ColumnTransformer = pipeline.named_steps["features"]
    groups = _term_groups(spec, len(interactions))
    terms = np.full(sum(s.stop - s.start for s in columns.output_indices_.values()), -1)
    for name, span in columns.output_indices_.items():
        if name not in groups or span.stop == span.start:
            continue
        group_terms = groups[name]
        if name == "category":
            # Per input column, as many outputs as its kept values (+1 for "infrequent").
            encoder = columns.named_transformers_[name]
            names = encoder.get_feature_names_out([f"t{term}" for term in group_terms])
            terms[span] = [int(out.split("_", 1)[0][1:]) for out in names]
        else:
            # Numbers, flags, indicators: an equal number of outputs per input (splines: one
            # block of basis functions per input, in input order).
            width = (span.stop - span.start) // len(group_terms)
            terms[span] = np.repeat(group_terms, width)
    means = columns.transform(matrix).mean(axis=0)
    return terms, means


# --- Using a model ---------------------------------------------------------------------------


def predict(model: TrainedModel, rows: Sequence[Mapping]) -> np.ndarray:
    if not rows:
        return np.empty(0)
    return model.pipeline.predict_proba(design_matrix(rows, model.spec, model.interactions))[:, 1]


def _term_labels(spec: FeatureSpec, interactions) -> list[str]:
    labels = [f.label for f in spec.features]
    for a, b in interactions:
        labels.append(f"{spec.feature(a).label} × {spec.feature(b).label}")
    return labels


def _describe(spec: FeatureSpec, term: int, label: str, row: Mapping, interactions) -> str:
    if term >= len(spec.features):
        a, b = interactions[term - len(spec.features)]
        first = _category(row.get(a), spec.missing_values)
        second = _category(row.get(b), spec.missing_values)
        return f"{label}: {first} × {second}"
    feature = spec.features[term]
    value = row.get(feature.key)
    if feature.kind == "category":
        return f"{label}: {_category(value, spec.missing_values)}"
    if feature.kind == "flag":
        return f"{label}: {'yes' if value else 'no'}"
    number = _number(value)
    return f"{label}: {'not recorded' if math.isnan(number) else f'{number:,.4g}'}"


def explain(model: TrainedModel, rows: Sequence[Mapping], *, top: int = 3) -> list[Explanation]:
    """For each row, the ``top`` terms pushing its log-odds up and down the most, measured from
    the average training lead (see the module docstring)."""
    if not rows:
        return []
    matrix = design_matrix(rows, model.spec, model.interactions)
    columns = model.pipeline.named_steps["features"]
    regression: LogisticRegression = model.pipeline.named_steps["model"]
    coefficients = regression.coef_[0]
    encoded = columns.transform(matrix)
    column_contributions = (encoded - model.column_means) * coefficients
    n_terms = len(model.spec.features) + len(model.interactions)
    per_term = np.zeros((len(rows), n_terms))
    for term in range(n_terms):
        per_term[:, term] = column_contributions[:, model.column_terms == term].sum(axis=1)
    baseline_logit = float(regression.intercept_[0] + coefficients @ model.column_means)
    labels = model.term_labels
    explanations = []
    for index, row in enumerate(rows):
        contributions = per_term[index]
        logit = baseline_logit + contributions.sum()
        order = np.argsort(contributions)
        up = [t for t in order[::-1][:top] if contributions[t] > 1e-6]
        down = [t for t in order[:top] if contributions[t] < -1e-6]

        def as_contribution(term, row=row, contributions=contributions):
            text = _describe(model.spec, int(term), labels[term], row, model.interactions)
            return Contribution(text, round(float(contributions[term]), 3))

        explanations.append(
            Explanation(
                probability=_sigmoid(logit),
                baseline_probability=_sigmoid(baseline_logit),
                up=tuple(as_contribution(t) for t in up),
                down=tuple(as_contribution(t) for t in down),
            )
        )
    return explanations


def _sigmoid(logit: float) -> float:
    return 1.0 / (1.0 + math.exp(-logit))


def candidate_pairs(keys: Sequence[str]) -> tuple[tuple[str, str], ...]:
    return tuple(itertools.combinations(keys, 2))
