from django.urls import reverse


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
    with django_assert_num_queries(15):
        admin_client.get(reverse("home"))


def test_login_page_renders(client, db):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert 'name="password"' in response.content.decode()


def test_healthz_answers_with_the_database(client, db):
    response = client.get(reverse("healthz"))
    assert response.json() == {"status": "ok"}
