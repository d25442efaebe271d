"""factory_boy factories for the facts; definitions come from the default v1 migration."""

from datetime import UTC, datetime

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from leads.models import Account, Campaign, EngagementEvent, Lead, SalesRep, Source
from leads.roles import SALES_REP


class UserFactory(factory.django.DjangoModelFactory):
    """A user; ``role=`` (a ``leads.roles`` group name) puts them in that role's group."""

    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")

    @factory.post_generation
    def role(user, create, extracted, **kwargs):
        if extracted:
            user.groups.add(Group.objects.get(name=extracted))


class SourceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Source
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Source {n}")
    channel_group = "events"


class CampaignFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Campaign

    name = factory.Sequence(lambda n: f"Campaign {n}")
    source = factory.SubFactory(SourceFactory)


class AccountFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Account

    name = factory.Sequence(lambda n: f"Account {n}")
    domain = factory.Sequence(lambda n: f"account{n}.example")
    industry = "software"
    employees = 500
    country = "US"
    region = "NA"


class LeadFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lead

    first_name = "Ada"
    last_name = factory.Sequence(lambda n: f"Lovelace{n}")
    email = factory.Sequence(lambda n: f"lead{n}@example.com")
    account = factory.SubFactory(AccountFactory)
    source = factory.SubFactory(SourceFactory)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EngagementEvent

    lead = factory.SubFactory(LeadFactory)
    kind = "page_view"
    occurred_at = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


class SalesRepFactory(factory.django.DjangoModelFactory):
    """A rep taking any territory and tier, with room for plenty of handoffs."""

    class Meta:
        model = SalesRep

    user = factory.SubFactory(UserFactory, role=SALES_REP)
    capacity = 100
