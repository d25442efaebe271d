"""``ContentShare`` and ``HeardObjection`` (migrations 0018, 0019) are a touch's asset and
objection links with the touch's lead (and the lead's account), actor and instant, whoever
writes them: the ORM's ``set``/``add``/``remove``, a bulk COPY, deletes cascading from a touch,
a lead, an asset or a tag, raw updates of a touch, a lead's new account, and TRUNCATE."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from leads.choices import ActivityAction, ActorType
from leads.models import ContentShare, HeardObjection, Lead, LeadActivity, ObjectionTag
from leads.services.bulk import writer_for
from tests.factories import AccountFactory, LeadFactory, UserFactory
from tests.metrics.factories import ContentAssetFactory
from tests.metrics.vendor import ON_POSTGRESQL


def shares_expected() -> set[tuple]:
    rows = LeadActivity.content_assets.through.objects.values_list(
        "pk",
        "leadactivity_id",
        "contentasset_id",
        "leadactivity__lead_id",
        "leadactivity__occurred_at",
        "leadactivity__actor_id",
    )
    return set(rows)


def shares_kept() -> set[tuple]:
    return set(
        ContentShare.objects.values_list(
            "link_id", "activity_id", "content_asset_id", "lead_id", "occurred_at", "actor_id"
        )
    )


def heard_expected() -> set[tuple]:
    rows = LeadActivity.objections.through.objects.values_list(
        "pk",
        "leadactivity_id",
        "objectiontag_id",
        "leadactivity__lead_id",
        "leadactivity__occurred_at",
        "leadactivity__lead__account_id",
    )
    return set(rows)


def heard_kept() -> set[tuple]:
    return set(
        HeardObjection.objects.values_list(
            "link_id", "activity_id", "objection_id", "lead_id", "occurred_at", "account_id"
        )
    )


def assert_kept() -> None:
    assert shares_kept() == shares_expected()
    assert heard_kept() == heard_expected()


def touch(lead, at, actor=None) -> LeadActivity:
    return LeadActivity.objects.create(
        lead=lead,
        action=ActivityAction.TOUCHED,
        occurred_at=at,
        actor_type=ActorType.USER,
        actor=actor,
    )


@pytest.fixture
def world():
    tags = list(ObjectionTag.objects.order_by("order")[:3])
    if len(tags) < 3:
        tags = [ObjectionTag.objects.create(key=f"tag-{n}", label=f"Tag {n}") for n in range(3)]
    return {
        "leads": [LeadFactory(account=AccountFactory()) for _ in range(3)],
        "assets": [ContentAssetFactory(title=f"Asset {n}") for n in range(3)],
        "tags": tags,
        "rep": UserFactory(),
        "now": timezone.now(),
    }


@pytest.mark.django_db
def test_links_written_changed_and_deleted_through_the_orm_keep_the_tables_equal(world):
    (a, b, c), (guide, demo, deck), (price, timing, rival) = (
        world["leads"],
        world["assets"],
        world["tags"],
    )
    now, rep = world["now"], world["rep"]
    first = touch(a, now, rep)
    first.content_assets.set([guide, demo])
    first.objections.set([price, timing])
    second = touch(b, now - timedelta(days=3))
    second.content_assets.add(deck)
    second.objections.add(rival)
    assert len(shares_kept()) == 3 and len(heard_kept()) == 3
    assert_kept()

    first.content_assets.remove(demo)
    first.objections.set([rival])
    assert len(shares_kept()) == 2
    assert_kept()
    # A touch's lead, actor or instant changed (raw SQL can: the ORM refuses) moves its rows.
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE leads_leadactivity SET lead_id = %s, actor_id = NULL, occurred_at = %s "
            "WHERE id = %s",
            [c.pk, now - timedelta(days=9), first.pk],
        )
    assert_kept()
    # A lead's account changed, cleared, or deleted (the lead's is set NULL): its rows follow.
    c.account = AccountFactory()
    c.save()
    assert_kept()
    b.account.delete()
    assert_kept()
    Lead.objects.filter(pk=c.pk).update(account=None)
    assert_kept()
    # A link row changed in place.
    LeadActivity.content_assets.through.objects.filter(leadactivity=second).update(
        contentasset=guide
    )
    assert_kept()

    deck.delete()  # nothing links it any more
    guide.delete()  # its links go
    assert_kept()
    rival.delete()
    assert heard_kept() == heard_expected() == set()
    third = touch(a, now, rep)
    third.content_assets.set([demo])
    third.objections.set([price])
    a.delete()  # the lead's touches and their links go
    assert_kept()
    assert shares_kept() == heard_kept() == set()


@pytest.mark.django_db
def test_a_bulk_copy_of_links_writes_their_rows(world):
    (a, b, _c), (guide, demo, _deck), (price, _timing, _rival) = (
        world["leads"],
        world["assets"],
        world["tags"],
    )
    touches = [touch(a, world["now"], world["rep"]), touch(b, world["now"] - timedelta(days=1))]
    with transaction.atomic():
        writer = writer_for(connection)  # COPY on PostgreSQL
        writer.insert(
            LeadActivity.content_assets.through,
            ("leadactivity_id", "contentasset_id"),
            [(touches[0].pk, guide.pk), (touches[1].pk, demo.pk), (touches[1].pk, guide.pk)],
        )
        writer.insert(
            LeadActivity.objections.through,
            ("leadactivity_id", "objectiontag_id"),
            [(touches[1].pk, price.pk)],
        )
        writer.close()
    assert len(shares_kept()) == 3 and len(heard_kept()) == 1
    assert_kept()


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRESQL, reason="TRUNCATE triggers are PostgreSQL's")
def test_emptying_the_links_or_the_touches_empties_the_tables(world):
    (a, _b, _c), (guide, _demo, _deck), (price, _timing, _rival) = (
        world["leads"],
        world["assets"],
        world["tags"],
    )
    first = touch(a, world["now"])
    first.content_assets.set([guide])
    first.objections.set([price])
    from leads.services.bulk import constraints_per_statement

    constraints_per_statement(connection)
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_leadactivity_content_assets")
    assert shares_kept() == set() and len(heard_kept()) == 1
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE leads_leadactivity CASCADE")
    assert shares_kept() == heard_kept() == set()
