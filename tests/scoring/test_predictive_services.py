"""The predictive score against the database: training from closed outcomes, versions, bulk
predictions, the refusal, the schedule's idempotence, the cutoff, and the pages."""

import io
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.urls import reverse

from leads.models import EngagementEvent, Handoff, Lead, Opportunity
from scoring.predictive import services
from scoring.predictive.models import LeadPrediction, PredictiveModel
from scoring.predictive.selectors import closed_outcome_records, lead_record
from scoring.predictive.tasks import retrain_predictive_model, retrain_predictive_model_if_due
from tests.factories import LeadFactory, SourceFactory, UserFactory

pytestmark = pytest.mark.django_db

START = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def build_world(*, closed: int, open_leads: int = 5, seed: int = 1) -> dict:
    """``closed`` leads with a won or lost opportunity (referrals win far more often), each
    with pricing-page views before the opportunity; plus ``open_leads`` with no outcome."""
    rng = random.Random(seed)
    referral = SourceFactory(name="Referral", channel_group="referral")
    paid = SourceFactory(name="Paid ads", channel_group="paid_search")
    leads = Lead.objects.bulk_create(
        Lead(
            email=f"lead{index}@example.com",
            source=referral if index % 3 == 0 else paid,
            created_at=START + timedelta(hours=index),
        )
        for index in range(closed + open_leads)
    )
    opportunities, events = [], []
    for lead in leads[:closed]:
        won = rng.random() < (0.75 if lead.source_id == referral.pk else 0.2)
        opened = lead.created_at + timedelta(days=3)
        opportunities.append(
            Opportunity(
                name=f"Deal {lead.pk}",
                lead=lead,
                status="won" if won else "lost",
                stage="closed_won" if won else "closed_lost",
                created_at=opened,
                closed_at=opened + timedelta(days=20),
            )
        )
        events += [
            EngagementEvent(lead=lead, kind="pricing_page", occurred_at=lead.created_at + step)
            for step in (timedelta(hours=1), timedelta(days=1))
        ]
    Opportunity.objects.bulk_create(opportunities)
    EngagementEvent.objects.bulk_create(events)
    return {"leads": leads, "referral": referral, "paid": paid}


@pytest.fixture
def world():
    return build_world(closed=240)


def test_training_stores_a_versioned_model_and_predicts_every_lead(world):
    stored = services.predictive_model_train(now=NOW)

    assert stored.status == PredictiveModel.Status.TRAINED and stored.version == 1
    assert stored.n_outcomes == 240
    assert stored.n_positive == Opportunity.objects.filter(status="won").count()
    assert 0.5 < stored.holdout_auc <= 1 and 0 < stored.holdout_brier < 0.25
    assert "Source" in stored.features
    model = services.load_model(PredictiveModel.objects.get(pk=stored.pk))
    assert model.n_outcomes == 240
    predictions = LeadPrediction.objects.filter(model=stored)
    assert predictions.count() == stored.n_predictions == len(world["leads"])
    referral = [p.probability for p in predictions if p.lead.source_id == world["referral"].pk]
    paid = [p.probability for p in predictions if p.lead.source_id == world["paid"].pk]
    assert sum(referral) / len(referral) > sum(paid) / len(paid) + 0.2


def test_each_prediction_carries_its_explanation(world):
    services.predictive_model_train(now=NOW)
    referral_lead = world["leads"][0]
    explanation = LeadPrediction.objects.get(lead=referral_lead).explanation
    labels = [label for label, _ in explanation["up"]]
    assert any(label in ("Source: Referral", "Channel: referral") for label in labels)
    assert all(log_odds > 0 for _, log_odds in explanation["up"])
    assert all(log_odds < 0 for _, log_odds in explanation["down"])
    assert 0 < explanation["baseline"] < 1


def test_retraining_makes_v2_and_moves_every_prediction_to_it(world):
    first = services.predictive_model_train(now=NOW)
    second = services.predictive_model_train(now=NOW + timedelta(days=1))

    assert (first.version, second.version) == (1, 2)
    assert LeadPrediction.objects.count() == len(world["leads"])
    assert set(LeadPrediction.objects.values_list("model", flat=True)) == {second.pk}


def test_too_little_data_is_stored_plainly_instead_of_a_model():
    build_world(closed=150)
    stored = services.predictive_model_train(now=NOW)

    assert stored.status == PredictiveModel.Status.TOO_LITTLE_DATA
    assert stored.message == "Too little data: 150 closed outcomes, need 200."
    assert stored.version is None and stored.pipeline is None
    assert stored.n_outcomes == 150
    assert not LeadPrediction.objects.exists()


def test_the_scheduled_task_trains_once_per_night(world, settings, monkeypatch):
    settings.PREDICTIVE_RETRAIN_HOUR_UTC = 2
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)

    retrain_predictive_model_if_due.delay()
    retrain_predictive_model_if_due.delay()
    assert PredictiveModel.objects.count() == 1  # the fresh install's first check trains

    # The next night's slot has passed: one more version, still once.
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW + timedelta(hours=15))
    retrain_predictive_model_if_due.delay()
    retrain_predictive_model_if_due.delay()
    assert list(PredictiveModel.objects.values_list("version", flat=True)) == [2, 1]


def test_leads_arriving_between_trainings_are_predicted_by_the_next_check(world, monkeypatch):
    monkeypatch.setattr("django.utils.timezone.now", lambda: NOW)
    retrain_predictive_model_if_due.delay()  # trains v1 and predicts every lead
    model = PredictiveModel.objects.get()
    newcomers = [
        LeadFactory(email=f"newcomer{index}@example.com", source=source)
        for index, source in enumerate([world["referral"], world["paid"], world["paid"]])
    ]

    monkeypatch.setattr(services, "NEW_LEADS_PER_RUN", 2)
    retrain_predictive_model_if_due.delay()  # not due again: predicts two newcomers
    predicted = set(LeadPrediction.objects.values_list("lead_id", flat=True))
    assert {lead.pk for lead in newcomers} & predicted == {newcomers[0].pk, newcomers[1].pk}
    retrain_predictive_model_if_due.delay()  # the third; nothing is predicted twice
    retrain_predictive_model_if_due.delay()

    assert PredictiveModel.objects.count() == 1
    assert LeadPrediction.objects.count() == len(world["leads"]) + 3
    assert set(LeadPrediction.objects.values_list("model", flat=True)) == {model.pk}
    model.refresh_from_db()
    assert model.n_predictions == len(world["leads"]) + 3
    newcomer = LeadPrediction.objects.get(lead=newcomers[0])
    assert (
        0 < newcomer.probability < 1 and newcomer.explanation["up"] + newcomer.explanation["down"]
    )


def test_a_retrain_request_is_served_once(world):
    requested_at = datetime.now(UTC).isoformat()
    retrain_predictive_model.delay(requested_at, None)
    retrain_predictive_model.delay(requested_at, None)  # a redelivered message
    assert PredictiveModel.objects.get().trigger == PredictiveModel.Trigger.MANUAL


def test_engagement_after_the_cutoff_is_not_a_feature():
    lead = LeadFactory(created_at=START)
    handed_off = START + timedelta(days=5)
    Handoff.objects.create(lead=lead, stage="mql", assigned_at=handed_off)
    for day in (1, 2, 6, 7, 8):  # two before the handoff, three while sales works the lead
        EngagementEvent.objects.create(
            lead=lead, kind="pricing_page", occurred_at=START + timedelta(days=day)
        )
    Opportunity.objects.create(
        name="Later", lead=lead, created_at=START + timedelta(days=9), amount=1000
    )

    record = lead_record(lead.pk, now=NOW)

    assert record.cutoff == handed_off
    assert record.event_counts == {"pricing_page": 2}
    assert record.last_event_at == START + timedelta(days=2)


def test_a_lead_rejected_at_handoff_is_a_negative_outcome_and_a_pending_one_is_not():
    rejected, pending = LeadFactory(created_at=START), LeadFactory(created_at=START)
    from leads.models import RejectionReason

    reason = RejectionReason.objects.first()
    Handoff.objects.create(
        lead=rejected,
        stage="mql",
        assigned_at=START,
        outcome="rejected",
        rejected_at=START + timedelta(hours=2),
        reject_reason=reason,
    )
    Handoff.objects.create(lead=pending, stage="mql", assigned_at=START)
    assert [(r.lead_id, outcome) for r, outcome in closed_outcome_records(now=NOW)] == [
        (rejected.pk, 0)
    ]


def test_the_demo_data_has_enough_closed_outcomes_to_train():
    call_command("seed_demo", "--as-of=2026-03-01", "--no-score", stdout=io.StringIO())
    outcomes = [outcome for _, outcome in closed_outcome_records()]
    assert len(outcomes) >= 200
    assert 20 <= sum(outcomes) <= len(outcomes) - 20


# --- Pages -----------------------------------------------------------------------------------


def test_the_lead_page_shows_the_prediction_beside_the_rule_score(admin_client, world):
    stored = services.predictive_model_train(now=NOW)
    lead = world["leads"][0]
    prediction = LeadPrediction.objects.get(lead=lead)

    page = admin_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert f"Predicted conversion: {prediction.percent} %" in page
    assert f"Model v{stored.version}, trained" in page
    assert "Why this score" in page  # the rule score stays
    top_label, _ = prediction.explanation["up"][0]
    assert top_label in page and "raises the chance" in page  # in words, not log-odds
    assert "log-odds</td>" not in page


def test_the_lead_page_says_plainly_when_there_was_too_little_data(admin_client):
    build_world(closed=143)
    services.predictive_model_train(now=NOW)
    lead = Lead.objects.first()

    page = admin_client.get(reverse("leads:detail", args=[lead.pk])).content.decode()

    assert "Too little data: 143 closed outcomes, need 200." in page


def test_the_model_page_lists_versions_and_offers_retraining_only_with_the_permission(
    client, world
):
    services.predictive_model_train(now=NOW)
    viewer = UserFactory(username="viewer")
    client.force_login(viewer)

    page = client.get(reverse("scoring:predictive-models")).content.decode()
    assert "v1" in page and "Retrain now" not in page
    assert client.post(reverse("scoring:predictive-retrain")).status_code == 403
    assert PredictiveModel.objects.count() == 1

    viewer.user_permissions.add(Permission.objects.get(codename="add_predictivemodel"))
    response = client.post(reverse("scoring:predictive-retrain"))
    assert response.status_code == 302
    assert list(PredictiveModel.objects.values_list("version", "trained_by")) == [
        (2, viewer.pk),
        (1, None),
    ]


def test_pages_need_a_login(client):
    response = client.get(reverse("scoring:predictive-models"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_model_page_reads_a_fixed_number_of_queries(
    admin_client, world, django_assert_num_queries
):
    for day in range(3):
        services.predictive_model_train(now=NOW + timedelta(days=day))
    admin_client.get(reverse("scoring:predictive-models"))  # warm the session and permissions

    # session, user, the page's count and rows, the model in use, the latest attempt, and
    # what the top bar reads (notifications).
    with django_assert_num_queries(7):
        page = admin_client.get(reverse("scoring:predictive-models")).content.decode()
    assert "v3" in page and "v1" in page
