import pytest
from django.db import connection
from django.urls import reverse

from tests.factories import LeadFactory


def test_home_requires_login(client, db):
    response = client.get(reverse("home"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_home_says_where_things_are_and_what_is_in_force(admin_client):
    response = admin_client.get(reverse("home"))
    body = response.content.decode()
    assert response.status_code == 200
    assert "ICP version" in body
    assert "Lifecycle version" in body
    assert "SLA version" in body
    assert "Scoring model" in body
    assert body.count(">v1<") == 4
    assert reverse("admin:leads_icpversion_changelist") in body


def test_home_query_count_is_pinned(admin_client, django_assert_num_queries):
    # PostgreSQL reads the tables' row estimates first (one query).
    with django_assert_num_queries(15 + (connection.vendor == "postgresql")):
        admin_client.get(reverse("home"))


def test_home_counts_small_tables_exactly(admin_client):
    LeadFactory.create_batch(3)
    body = admin_client.get(reverse("home")).content.decode()
    assert '<span class="figure">3</span> leads' in body
    assert "≈" not in body


@pytest.mark.skipif(connection.vendor != "postgresql", reason="estimates are PostgreSQL's")
def test_home_shows_the_estimate_of_a_large_table(admin_client, settings):
    LeadFactory.create_batch(7)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE leads_lead")  # a small table is sampled whole: the estimate is 7
    settings.HOME_EXACT_COUNT_BELOW = 5  # "large" from 5 rows on
    LeadFactory.create_batch(2)  # not seen by the estimate until the next ANALYZE
    body = admin_client.get(reverse("home")).content.decode()
    assert "≈</abbr> 7</span> leads" in body
    settings.HOME_EXACT_COUNT_BELOW = 100
    body = admin_client.get(reverse("home")).content.decode()
    assert '<span class="figure">9</span> leads' in body


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


def test_healthz_answers_with_the_database(client, db):
    response = client.get(reverse("healthz"))
    assert response.json() == {"status": "ok"}
