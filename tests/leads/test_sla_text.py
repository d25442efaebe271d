"""SLA time in words: business time said as business time, the calendar time beside it, one
wording on every page (queue, handoff page; the meeting slide in tests/metrics)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone

from leads.models import Handoff
from leads.sla_text import business_time_text, calendar_amount, calendar_time_text, sla_time
from tests.factories import LeadFactory
from tests.leads.test_handoff_views import hand_off, make_rep

HOUR = 3600


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (3 * HOUR, "3 business hours left"),
        (3 * HOUR + 59 * 60, "3 business hours left"),  # never more than there is
        (HOUR, "1 business hour left"),
        (25 * 60, "25 business minutes left"),
        (60, "1 business minute left"),
        (0, "0 business minutes left"),
        (-27 * HOUR, "27 business hours overdue"),  # not "1d 3h": 27 hours of office time
        (-(13 * 24 + 14) * HOUR, "326 business hours overdue"),
        (-90, "1 business minute overdue"),
    ],
)
def test_business_time_reads_as_business_time(seconds, text):
    assert business_time_text(seconds) == text


def test_calendar_time_is_said_as_calendar_time():
    now = datetime(2026, 3, 16, 14, tzinfo=UTC)

    assert calendar_amount(4 * 86_400 + 2 * HOUR) == "4 days 2 hours"
    assert calendar_amount(86_400) == "1 day"
    assert calendar_amount(5 * HOUR + 10 * 60) == "5 hours 10 minutes"
    assert calendar_time_text(now - timedelta(days=4, hours=2), now) == (
        "due 4 days 2 hours ago (calendar time)"
    )
    assert calendar_time_text(now + timedelta(minutes=12), now) == (
        "due in 12 minutes (calendar time)"
    )


def test_one_clock_has_its_text_and_its_calendar_title():
    now = datetime(2026, 3, 16, 14, tzinfo=UTC)

    shown = sla_time(-27 * HOUR, due=now - timedelta(days=3, hours=3), now=now)

    assert shown.text == "27 business hours overdue"
    assert shown.title == (
        "Business hours of the SLA calendar; due 3 days 3 hours ago (calendar time)"
    )
    assert shown.overdue


def test_the_meeting_tag_says_overdue_in_business_hours_with_calendar_time_on_hover():
    template = Template("{% load handoffs %}{% sla_late seconds hours %}")

    late = template.render(Context({"seconds": 14 * HOUR, "hours": 94.0}))
    old_snapshot = template.render(Context({"seconds": None, "hours": 94.0}))

    assert late == (
        '<span class="sla-late" title="Business hours of the SLA calendar; due 3 days 22 hours '
        'ago (calendar time)">14 business hours overdue</span>'
    )
    assert old_snapshot == '<span class="sla-late">3 days 22 hours (calendar time) overdue</span>'


# --- Pages -------------------------------------------------------------------------------------

# Tuesday 2026-03-10 14:00 in New York (inside the default calendar's working hours).
NOW = datetime(2026, 3, 10, 18, 0, tzinfo=UTC)


@pytest.fixture
def late_handoff(db, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: NOW)
    rep = make_rep("rep.ana")
    # Handed off Thursday 5 Mar 10:00 New York: the 4-hour response fell due at 14:00 that day.
    # Since then: Thu 3 h, Fri 8 h, Mon 8 h, Tue 5 h = 24 business hours;
    # 4 days 23 hours in calendar time (New York moved its clocks on Sunday).
    handoff = hand_off(LeadFactory(first_name="Late"), datetime(2026, 3, 5, 15, tzinfo=UTC))
    Handoff.objects.filter(pk=handoff.pk).update(assignee=rep.user)
    return rep, handoff


def test_the_queue_says_business_hours_overdue_with_calendar_time_on_hover(client, late_handoff):
    rep, _ = late_handoff
    client.force_login(rep.user)

    body = client.get(reverse("leads:queue")).content.decode()

    assert ">24 business hours overdue</span>" in body
    assert (
        'title="Business hours of the SLA calendar; due 4 days 23 hours ago (calendar time)"'
        in body
    )
    assert "overdue 3d" not in body and "d 0h" not in body


def test_the_handoff_page_uses_the_same_wording(client, late_handoff):
    rep, handoff = late_handoff
    client.force_login(rep.user)

    body = client.get(reverse("leads:handoff", args=[handoff.pk])).content.decode()

    assert ">24 business hours overdue</span>" in body
    assert "due 4 days 23 hours ago (calendar time)" in body
