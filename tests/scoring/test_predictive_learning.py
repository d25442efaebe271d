"""The predictive score's pure core: train / predict / explain, the too-little-data refusal,
the leakage guard, the outcome rule and the lead features. No database."""

import math
import random
from datetime import UTC, datetime, timedelta

import pytest

from scoring.outcomes import OutcomeFacts, closed_outcome
from scoring.predictive.features import LEAD_SPEC, LeadRecord, lead_feature_row
from scoring.predictive.learning import (
    MIN_OUTCOMES,
    Feature,
    FeatureSpec,
    TooLittleData,
    data_sufficiency,
    design_matrix,
    explain,
    predict,
    train,
)

SPEC = FeatureSpec(
    features=(
        Feature("channel", "Channel", "category"),
        Feature("colour", "Favourite colour", "category"),
        Feature("visits", "Visits", "count"),
        Feature("newsletter", "Newsletter", "flag"),
    ),
    missing_values=frozenset({"Select"}),
    min_frequency=5,
    c_grid=(0.3, 1.0),
    cv_folds=3,
)


def synthetic(n: int, *, seed: int = 7, positives: int | None = None):
    """Referrals convert far more often; colour and the newsletter are noise; visits help a
    little. With ``positives`` the outcomes are forced to that many conversions."""
    rng = random.Random(seed)
    rows, outcomes = [], []
    for _ in range(n):
        channel = rng.choice(["referral", "paid", "paid", "organic", "Select"])
        visits = rng.randint(0, 20)
        logit = -1.6 + (3.6 if channel == "referral" else 0) + 0.05 * visits
        rows.append(
            {
                "channel": channel,
                "colour": rng.choice(["red", "green", "blue"]),
                "visits": visits,
                "newsletter": rng.random() < 0.5,
            }
        )
        outcomes.append(int(rng.random() < 1 / (1 + math.exp(-logit))))
    if positives is not None:
        outcomes = [1 if index < positives else 0 for index in range(n)]
    return rows, outcomes


@pytest.fixture(scope="module")
def model():
    rows, outcomes = synthetic(600)
    return train(rows, outcomes, SPEC)


def test_the_informative_feature_ranks_top_with_the_right_sign(model):
    referral = {"channel": "referral", "colour": "red", "visits": 5, "newsletter": False}
    paid = {**referral, "channel": "paid"}

    up = explain(model, [referral])[0]
    down = explain(model, [paid])[0]

    assert up.up[0].label == "Channel: referral"
    assert up.up[0].log_odds > 1.0
    assert down.down[0].label == "Channel: paid"
    assert down.down[0].log_odds < 0
    assert all(abs(c.log_odds) < abs(up.up[0].log_odds) for c in (*up.up[1:], *up.down))


def test_predictions_follow_the_signal_and_the_holdout_measures_it(model):
    referral, paid = predict(
        model,
        [
            {"channel": "referral", "colour": "red", "visits": 5, "newsletter": False},
            {"channel": "paid", "colour": "red", "visits": 5, "newsletter": False},
        ],
    )
    assert referral > 0.5 > paid
    assert model.holdout_auc > 0.7
    assert 0 < model.holdout_brier < 0.25
    assert model.n_outcomes == 600


def test_the_explanation_adds_up_to_the_prediction(model):
    row = {"channel": "organic", "colour": "blue", "visits": 17, "newsletter": True}
    [explanation] = explain(model, [row], top=10)
    [probability] = predict(model, [row])
    logit = math.log(explanation.baseline_probability / (1 - explanation.baseline_probability))
    logit += sum(c.log_odds for c in (*explanation.up, *explanation.down))
    assert explanation.probability == pytest.approx(probability)
    assert 1 / (1 + math.exp(-logit)) == pytest.approx(probability, abs=1e-3)


def test_form_defaults_and_blanks_are_explained_as_missing(model):
    [explanation] = explain(
        model, [{"channel": "Select", "colour": "", "visits": None, "newsletter": None}], top=10
    )
    labels = {c.label for c in (*explanation.up, *explanation.down)}
    assert "Channel: (missing)" in labels
    assert "Visits: not recorded" in labels


def test_199_outcomes_are_refused_with_a_plain_message():
    rows, outcomes = synthetic(MIN_OUTCOMES - 1)
    with pytest.raises(TooLittleData, match=r"Too little data: 199 closed outcomes, need 200\."):
        train(rows, outcomes, SPEC)


def test_200_outcomes_with_both_classes_train():
    rows, outcomes = synthetic(MIN_OUTCOMES, positives=20)
    trained = train(rows, outcomes, SPEC)
    assert trained.n_outcomes == 200 and trained.n_positive == 20
    assert 0 <= predict(trained, rows[:1])[0] <= 1


def test_too_few_of_one_class_is_refused():
    rows, outcomes = synthetic(300, positives=19)
    with pytest.raises(TooLittleData, match="19 converted and 281 not converted, need at least 20"):
        train(rows, outcomes, SPEC)


def test_data_sufficiency_rule():
    assert data_sufficiency(20, 180) is None
    assert data_sufficiency(100, 42) == "Too little data: 142 closed outcomes, need 200."
    assert "need at least 20 of each" in data_sufficiency(250, 0)


def test_columns_outside_the_spec_never_reach_the_model(model):
    """The leakage guard: a column known only after the cutoff (here the stage sales put the
    lead in, which gives the outcome away) is ignored however it is set."""
    row = {"channel": "paid", "colour": "red", "visits": 3, "newsletter": False}
    won = {**row, "stage": "customer", "opportunity_won": True}
    lost = {**row, "stage": "closed_lost", "opportunity_won": False}

    assert predict(model, [won])[0] == predict(model, [lost])[0]
    assert design_matrix([won], SPEC).shape == (1, len(SPEC.features))


def test_lead_spec_holds_nothing_sales_does():
    keys = {feature.key for feature in LEAD_SPEC.features}
    for after_the_cutoff in ("stage", "owner", "tier", "handoff", "opportunity", "amount"):
        assert not any(after_the_cutoff in key for key in keys)


def test_an_interaction_is_kept_when_cross_validation_says_it_helps():
    rng = random.Random(3)
    rows, outcomes = [], []
    for _ in range(800):
        a, b = rng.choice("xy"), rng.choice("uv")
        rows.append({"channel": a, "colour": b, "visits": 1, "newsletter": False})
        # Converts on the combinations (x, u) and (y, v): neither feature alone says anything.
        outcomes.append(int(rng.random() < (0.8 if (a, b) in (("x", "u"), ("y", "v")) else 0.2)))
    spec = FeatureSpec(
        features=SPEC.features,
        candidate_interactions=(("channel", "colour"),),
        max_interactions=1,
        c_grid=(1.0,),
        cv_folds=3,
    )
    trained = train(rows, outcomes, spec)
    assert trained.interactions == (("channel", "colour"),)
    assert trained.holdout_auc > 0.75
    [explanation] = explain(trained, [{"channel": "x", "colour": "u"}])
    assert explanation.up[0].label == "Channel × Favourite colour: x × u"


def test_negative_counts_are_refused_clearly():
    with pytest.raises(ValueError, match="Visits: counts and amounts cannot be negative"):
        design_matrix([{"visits": -1}], SPEC)


# --- The product's outcome rule and lead features --------------------------------------------


@pytest.mark.parametrize(
    ("facts", "outcome"),
    [
        (OutcomeFacts(won_opportunity=True, rejected_at_handoff=True), 1),
        (OutcomeFacts(reached_won_stage=True), 1),
        (OutcomeFacts(lost_opportunity=True), 0),
        (OutcomeFacts(in_lost_or_disqualified_stage=True), 0),
        (OutcomeFacts(rejected_at_handoff=True), 0),
        # Rejected once, handed off again and still pending: not known yet.
        (OutcomeFacts(rejected_at_handoff=True, pending_handoff=True), None),
        (OutcomeFacts(lost_opportunity=True, open_opportunity=True), None),
        (OutcomeFacts(), None),
    ],
)
def test_closed_outcome_rule(facts, outcome):
    assert closed_outcome(facts) == outcome


def test_lead_feature_row_reads_the_record_as_of_its_cutoff():
    created = datetime(2026, 1, 1, tzinfo=UTC)
    record = LeadRecord(
        lead_id=1,
        created_at=created,
        cutoff=created + timedelta(days=10),
        email="ada@gmail.com",
        seniority="unknown",
        source="Webinar",
        industry=" Software ",
        technologies=("hubspot", "segment"),
        event_counts={"pricing_page": 2},
        last_event_at=created + timedelta(days=9, hours=12),
    )
    row = lead_feature_row(record)
    assert row["personal_email"] is True
    assert row["industry"] == "software"
    assert row["technology_count"] == 2
    assert row["events_pricing_page"] == 2 and row["events_demo_request"] == 0
    assert row["days_before_cutoff"] == 10
    assert row["days_since_last_event"] == 0.5
    assert set(row) == {feature.key for feature in LEAD_SPEC.features}


def test_an_interaction_of_noise_is_not_kept():
    rows, outcomes = synthetic(400)
    spec = FeatureSpec(
        features=SPEC.features,
        candidate_interactions=(("channel", "colour"),),
        max_interactions=1,
        c_grid=(1.0,),
        cv_folds=3,
    )
    assert train(rows, outcomes, spec).interactions == ()


def test_numbers_beyond_the_training_range_are_not_extrapolated(model):
    row = {"channel": "paid", "colour": "red", "newsletter": False}
    highest_seen, far_beyond = predict(model, [{**row, "visits": 20}, {**row, "visits": 10_000}])
    assert far_beyond == pytest.approx(highest_seen)
