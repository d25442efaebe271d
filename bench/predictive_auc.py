"""Predictive score quality on real data (issue 8). Not a test.

    .venv/bin/python bench/predictive_auc.py [--datasets-dir ../shared/datasets]

Reads ``x-education-leads/Leads.csv`` from ``$REVOPS_DATASETS_DIR`` (default
``../shared/datasets`` beside the repository; the file is never copied into the repo) and trains
the product's model — the same :func:`scoring.predictive.learning.train` (feature pipeline,
cross-validated C and interactions, holdout evaluation) the nightly retrain runs on the
organisation's leads — with a feature spec for this file. Target ``Converted``.

Left out: the identifiers, and the columns sales fills in after contacting the lead (``Tags``,
``Lead Quality``, ``Lead Profile``, the four ``Asymmetrique …`` columns, ``Last Notable
Activity``): the product's cutoff forbids what is known only once sales works a lead.

Holdout: stratified 30 % (random_state 42), never seen while choosing C or interactions.
Prints ROC AUC (target ≥ 0.89), Brier score, AUC / 0.89, and the AUC of a simple hand-written
rule-based score (points per answer, no fitting) on the same holdout.
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from scoring.predictive.learning import Feature, FeatureSpec, candidate_pairs, train  # noqa: E402

TARGET_AUC = 0.89
HOLDOUT = 0.3
RANDOM_STATE = 42
DATASET = Path("x-education-leads") / "Leads.csv"
TARGET = "Converted"
EXCLUDED = {
    "Prospect ID",
    "Lead Number",
    TARGET,
    # Entered by sales after contact: known only once sales works the lead.
    "Tags",
    "Lead Quality",
    "Lead Profile",
    "Last Notable Activity",
    "Asymmetrique Activity Index",
    "Asymmetrique Profile Index",
    "Asymmetrique Activity Score",
    "Asymmetrique Profile Score",
}
COUNTS = {
    "TotalVisits": "count",
    "Total Time Spent on Website": "amount",
    "Page Views Per Visit": "amount",
}
# Candidates for pairwise interactions; which (if any) are used is decided by cross-validation
# on the training part.
INTERACTION_CANDIDATES = (
    "Lead Origin",
    "Lead Source",
    "Last Activity",
    "What is your current occupation",
    "Specialization",
    "City",
    "Do Not Email",
)


def datasets_dir(arg: str) -> Path:
    if arg:
        return Path(arg)
    configured = os.environ.get("REVOPS_DATASETS_DIR")
    return Path(configured) if configured else ROOT.parent / "shared" / "datasets"


def feature_spec(header: list[str]) -> FeatureSpec:
    features = tuple(
        Feature(key=column, label=column, kind=COUNTS.get(column, "category"))
        for column in header
        if column not in EXCLUDED
    )
    return FeatureSpec(
        features=features,
        missing_values=frozenset({"Select"}),  # the form's untouched default
        min_frequency=10,
        spline_knots=5,
        candidate_interactions=candidate_pairs(INTERACTION_CANDIDATES),
        max_interactions=3,
        c_grid=(0.03, 0.1, 0.3, 1.0),
        cv_folds=5,
    )


def rule_score(row: dict) -> float:
    """A marketer's hand-written score, chosen without looking at outcomes: answers and
    behaviour that usually mean intent earn points, signs of disinterest lose them."""
    points = 0.0
    points += {"Lead Add Form": 30, "Landing Page Submission": 10}.get(row["Lead Origin"], 0)
    points += {"Reference": 20, "Welingak Website": 20, "Olark Chat": -5}.get(row["Lead Source"], 0)
    points += {"Working Professional": 30, "Unemployed": 5, "Student": 0}.get(
        row["What is your current occupation"], 0
    )
    points += {
        "SMS Sent": 15,
        "Email Opened": 5,
        "Email Bounced": -15,
        "Olark Chat Conversation": -10,
    }.get(row["Last Activity"], 0)
    seconds = float(row["Total Time Spent on Website"] or 0)
    points += 25 if seconds >= 900 else 10 if seconds >= 300 else 0
    points -= 20 if row["Do Not Email"] == "Yes" else 0
    return points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets-dir", default="", help="Folder holding x-education-leads/.")
    args = parser.parse_args()
    path = datasets_dir(args.datasets_dir) / DATASET
    if not path.exists():
        sys.exit(f"{path} is missing (set REVOPS_DATASETS_DIR to the shared data sets folder).")
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
        header = list(reader.fieldnames or [])
    outcomes = [int(row[TARGET]) for row in rows]
    spec = feature_spec(header)
    print(
        f"{path.name}: {len(rows):,} leads, {sum(outcomes):,} converted; "
        f"{len(spec.features)} features (excluded: {', '.join(sorted(EXCLUDED - {TARGET}))})"
    )

    started = time.perf_counter()
    # The product's trainer: the same stratified split (fraction and seed) as below.
    model = train(
        rows,
        outcomes,
        spec,
        holdout_fraction=HOLDOUT,
        random_state=RANDOM_STATE,
        refit_on_all=False,
    )
    seconds = time.perf_counter() - started
    print(
        f"Chosen by {spec.cv_folds}-fold CV on the training part: C = {model.c:g}, "
        f"interactions = {[' × '.join(pair) for pair in model.interactions] or 'none'} "
        f"(CV AUC {model.cv_auc:.4f}); trained in {seconds:.0f} s"
    )

    # The same holdout, for the rule-based score.
    _, holdout = train_test_split(
        range(len(rows)), test_size=HOLDOUT, stratify=outcomes, random_state=RANDOM_STATE
    )
    rule_auc = roc_auc_score([outcomes[i] for i in holdout], [rule_score(rows[i]) for i in holdout])
    print(
        f"Holdout ({len(holdout):,} leads, stratified {HOLDOUT:.0%}, random_state {RANDOM_STATE}):"
    )
    print(f"  ROC AUC          {model.holdout_auc:.4f}   (target ≥ {TARGET_AUC})")
    print(f"  AUC / {TARGET_AUC}       {model.holdout_auc / TARGET_AUC:.3f}")
    print(f"  Brier score      {model.holdout_brier:.4f}")
    print(f"  rule-based score ROC AUC {rule_auc:.4f}")


if __name__ == "__main__":
    main()
