"""Refusals and missing pages are pages of the app (top bar and a way back), not bare text."""

import pytest
from django.urls import reverse

from leads.roles import VIEWER
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_refused_page_says_why_within_the_app(client):
    client.force_login(UserFactory(role=VIEWER))

    response = client.get(reverse("leads:list"))

    assert response.status_code == 403
    body = response.content.decode()
    assert "You can't open or do this" in body
    assert "Roles and permissions" in body
    assert f'href="{reverse("metrics:overview")}"' in body  # the top bar is there


def test_a_missing_record_is_a_404_page_within_the_app(admin_client):
    response = admin_client.get(reverse("leads:detail", args=[987654]))

    assert response.status_code == 404
    assert "Nothing here" in response.content.decode()
