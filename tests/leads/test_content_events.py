"""``ContentEvent`` (migration 0016) is the content-linked engagement events, whoever writes them:
the ORM, a bulk COPY, updates of lead, asset, instant or kind, deletes and TRUNCATE; and it
keeps the rows of events retention retires (PostgreSQL's month partitions)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.utils import timezone

from leads.models import ContentEvent, EngagementEvent
from leads.partitions import month_add, month_of
from leads.services import facts
from leads.services.bulk import writer_for
from tests.factories import LeadFactory
from tests.metrics.factories import ContentAssetFactory
from tests.metrics.vendor import ON_POSTGRESQL

FIELDS = ("event_id", "lead_id", "content_asset_id", "occurred_at", "kind")


def linked() -> set[tuple]:
    """The content-linked events, as the side table should hold them."""
    rows = EngagementEvent.objects.filter(content_asset__isnull=False).values_list(
        "pk", "lead_id", "content_asset_id", "occurred_at", "kind"
    )
    return set(rows)


def side() -> set[tuple]:
    return set(ContentEvent.objects.values_list(*FIELDS))


def event(lead, at, asset=None, kind="content_download", **extra) -> EngagementEvent:
    return EngagementEvent.objects.create(
        lead=lead, kind=kind, occurred_at=at, content_asset=asset, **extra
    )


@pytest.fixture
def world():
    now = timezone.now()
    return {
        "leads": [LeadFactory() for _ in range(3)],
        "assets": [ContentAssetFactory(title=f"Asset {n}") for n in range(3)],
        "now": now,
        # Two months apart: another partition on PostgreSQL.
        "earlier": month_add(month_of(now), -2) + timedelta(days=3),
    }


@pytest.mark.django_db
def test_orm_inserts_updates_and_deletes_keep_the_side_table_equal(world):
    (a, b, c), (guide, demo, deck) = world["leads"], world["assets"]
    now, earlier = world["now"], world["earlier"]
    first = event(a, now, guide)
    plain = event(a, now, kind="page_view")  # not linked: no row
    EngagementEvent.objects.bulk_create(
        [EngagementEvent(lead=b, kind="email_click", occurred_at=earlier, content_asset=demo),
         EngagementEvent(lead=c, kind="page_view", occurred_at=earlier)]
    )  # fmt: skip
    assert len(side()) == 2 and side() == linked()

    EngagementEvent.objects.filter(pk=first.pk).update(lead=b)  # another lead
    assert side() == linked()
    EngagementEvent.objects.filter(pk=first.pk).update(content_asset=deck)  # another asset
    assert side() == linked()
    # Another month: the row moves to another partition on PostgreSQL.
    EngagementEvent.objects.filter(pk=first.pk).update(occurred_at=earlier)
    assert side() == linked()
    first.refresh_from_db()
    first.kind = "webinar_attended"
    first.save()
    assert side() == linked()
    EngagementEvent.objects.filter(pk=plain.pk).update(content_asset=guide)  # linked now
    assert len(side()) == 3 and side() == linked()
    EngagementEvent.objects.filter(pk=first.pk).update(content_asset=None)  # unlinked
    assert len(side()) == 2 and side() == linked()
    # A statement touching linked and unlinked rows at once.
    EngagementEvent.objects.update(occurred_at=now - timedelta(days=1))
    assert side() == linked()

    EngagementEvent.objects.filter(pk=plain.pk).delete()
    assert len(side()) == 1 and side() == linked()
    demo.delete()  # the events' asset is set to NULL: unlinked
    assert side() == linked() == set()
    event(c, now, guide)
    c.delete()  # the lead's events go with it
    assert side() == linked() == set()


@pytest.mark.django_db
def test_a_bulk_copy_writes_the_rows_of_linked_events(world):
    (a, b, _c), (guide, demo, _deck) = world["leads"], world["assets"]
    now, earlier = world["now"], world["earlier"]
    rows = [
        (lead.pk, "content_download", at, {}, asset.pk if asset else None, "demo", f"D-{n}", at)
        for n, (lead, at, asset) in enumerate(
            [(a, now, guide), (a, earlier, None), (b, earlier, demo),
             (b, datetime(2015, 3, 3, tzinfo=UTC), guide)]  # the default partition
        )
    ]  # fmt: skip
    with transaction.atomic():
        writer = writer_for(connection)  # COPY on PostgreSQL
        writer.insert(EngagementEvent, facts.EVENT_FIELDS, rows)
        writer.close()
    assert len(side()) == 3 and side() == linked()
    # And the facts service (the API's and the import's write path).
    facts.events_record(
        events=[facts.EventRow(lead_id=b.pk, kind="email_click", occurred_at=now,
                               source_system="hubspot", external_id="x-1",
                               content_asset_id=demo.pk)]
    )  # fmt: skip
    assert len(side()) == 4 and side() == linked()


@pytest.mark.django_db
def test_emptying_the_event_table_empties_the_side_table(world):
    (a, b, _c), (guide, _demo, _deck) = world["leads"], world["assets"]
    event(a, world["now"], guide)
    event(b, world["earlier"], guide)
    assert len(side()) == 2
    if ON_POSTGRESQL:
        from leads.services.bulk import constraints_per_statement

        constraints_per_statement(connection)  # the inserts' deferred checks, run now
        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE leads_engagementevent")
    else:
        EngagementEvent.objects.all().delete()
    assert side() == linked() == set()


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRESQL, reason="retention drops PostgreSQL month partitions")
def test_retention_keeps_the_rows_of_the_linked_events_it_drops(settings, world):
    from leads.partitions import events_retire

    (a, b, _c), (guide, demo, _deck) = world["leads"], world["assets"]
    now = world["now"]
    old = month_add(month_of(now), -8) + timedelta(days=2)
    event(a, old, guide)  # in a month partition retention drops
    event(b, datetime(2015, 3, 3, tzinfo=UTC), demo)  # in the default partition: deleted
    event(a, old, kind="page_view")
    event(b, now, guide)  # kept
    before = side()
    assert before == linked() and len(before) == 3

    settings.EVENT_RETENTION_MONTHS = 6
    result = events_retire(now=now)
    assert result.dropped and result.folded_rows == 3
    assert len(linked()) == 1
    assert side() == before  # the retired ones' rows stay, whole
    horizon = month_add(month_of(now), -6)
    retired = {row for row in before if row[3] < horizon}
    assert len(retired) == 2
    # Later writes still follow: the kept event unlinked, a new one linked.
    EngagementEvent.objects.filter(lead=b).update(content_asset=None)
    event(a, now, demo)
    assert side() == retired | linked()
    assert len(linked()) == 1
