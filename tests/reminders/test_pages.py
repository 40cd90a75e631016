"""The reminder list, its actions, the dashboard panel, the ops page and the profile choice."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import ReminderEmails
from reminders.models import EmailState, Reminder, ReminderStatus
from reminders.selectors import reminder_panel_for
from tests.conftest import Cast, client_for
from tests.reminders.helpers import reminder_for

pytestmark = pytest.mark.django_db

LIST = reverse("reminders:list")


def titles(response) -> list[str]:
    page = response.content.decode()
    return [
        title
        for title in ("Alice to-do", "Bob to-do", "Charlie to-do", "Maria to-do")
        if title in page
    ]


def _one_each(cast: Cast) -> dict[str, Reminder]:
    return {
        "rep": reminder_for(cast.rep, title="Alice to-do call", object_id=1),
        "teammate": reminder_for(cast.teammate, title="Bob to-do call", object_id=2),
        "other_rep": reminder_for(cast.other_rep, title="Charlie to-do call", object_id=3),
        "manager": reminder_for(cast.manager, title="Maria to-do call", object_id=4),
    }


@pytest.mark.parametrize(
    ("role", "status", "seen"),
    [
        ("owner_rep", 200, ["Alice to-do"]),
        ("manager", 200, ["Alice to-do", "Bob to-do", "Maria to-do"]),
        ("other_rep", 200, ["Charlie to-do"]),
        ("marketing", 403, []),
        ("admin", 200, ["Alice to-do", "Bob to-do", "Charlie to-do", "Maria to-do"]),
    ],
)
def test_the_list_for_every_role(cast: Cast, role: str, status: int, seen: list[str]):
    _one_each(cast)

    response = client_for(cast.roles()[role]).get(LIST)

    assert response.status_code == status
    assert titles(response) == seen


def test_a_manager_sees_the_team_rolled_up_by_person_and_can_filter(cast: Cast):
    _one_each(cast)
    reminder_for(
        cast.teammate,
        title="Bob to-do second",
        object_id=5,
        due_on=timezone.localdate() - dt.timedelta(days=3),
    )
    client = client_for(cast.manager)

    page = client.get(LIST).content.decode()
    assert page.count('data-testid="rollup-row"') == 3
    filtered = client.get(LIST, {"rep": cast.teammate.pk})
    assert titles(filtered) == ["Bob to-do"]
    assert "Bob to-do second" in filtered.content.decode()
    # Another team's rep is not a choice: the filter is ignored, nothing leaks.
    assert "Charlie to-do" not in client.get(LIST, {"rep": cast.other_rep.pk}).content.decode()


def test_a_manager_sees_the_teams_reminders_read_only(cast: Cast):
    reminders = _one_each(cast)
    page = client_for(cast.manager).get(LIST).content.decode()

    assert reverse("reminders:done", args=[reminders["manager"].pk]) in page
    assert reverse("reminders:done", args=[reminders["rep"].pk]) not in page


@pytest.mark.parametrize("action", ["done", "dismiss", "snooze"])
@pytest.mark.parametrize("role", ["manager", "other_rep", "admin"])
def test_only_the_recipient_changes_a_reminder(cast: Cast, action: str, role: str):
    reminder = reminder_for(cast.rep)

    response = client_for(cast.roles()[role]).post(
        reverse(f"reminders:{action}", args=[reminder.pk]), {"days": 3}
    )

    assert response.status_code == 404
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.OPEN


def test_done_dismiss_and_snooze(cast: Cast):
    today = timezone.localdate()
    done = reminder_for(cast.rep, title="Call back Acme", object_id=1)
    dismissed = reminder_for(cast.rep, title="Old lead", object_id=2)
    snoozed = reminder_for(cast.rep, title="Quote for Beta", object_id=3)
    client = client_for(cast.rep)

    response = client.post(reverse("reminders:done", args=[done.pk]), follow=True)
    assert "Marked done: Call back Acme" in response.content.decode()
    client.post(reverse("reminders:dismiss", args=[dismissed.pk]), follow=True)
    client.post(reverse("reminders:snooze", args=[snoozed.pk]), {"days": 3}, follow=True)

    page = client.get(LIST).content.decode()
    for title in ("Call back Acme", "Old lead", "Quote for Beta"):
        assert title not in page
    assert "No reminders. You are up to date." in page
    done.refresh_from_db()
    snoozed.refresh_from_db()
    # Handled before its email went: the email is not sent any more.
    assert (done.status, done.email_state) == (ReminderStatus.DONE, EmailState.SKIPPED)
    assert snoozed.snoozed_until == today + dt.timedelta(days=3)
    # The snooze ends by itself.
    Reminder.objects.filter(pk=snoozed.pk).update(snoozed_until=today)
    assert "Quote for Beta" in client.get(LIST).content.decode()


def test_a_bad_snooze_says_why_and_changes_nothing(cast: Cast):
    reminder = reminder_for(cast.rep)

    response = client_for(cast.rep).post(
        reverse("reminders:snooze", args=[reminder.pk]), {"days": 30}, follow=True
    )

    assert "Snooze for 1, 3 or 7 days." in response.content.decode()
    reminder.refresh_from_db()
    assert reminder.status == ReminderStatus.OPEN


def test_actions_need_post(cast: Cast):
    reminder = reminder_for(cast.rep)
    assert (
        client_for(cast.rep).get(reverse("reminders:done", args=[reminder.pk])).status_code == 405
    )


# Reminder list, a manager: session, user, the manager's teams and members (one
# query, kept for the request), the rep filter choices, the rollup by person, the
# paginator's count, the page's rows (with their person).
MANAGER_LIST_QUERIES = 7


@pytest.mark.parametrize("count", [3, 4])
def test_list_query_count_does_not_grow(cast: Cast, django_assert_num_queries, count: int):
    for index in range(count):
        reminder_for(cast.teammate, title=f"Call {index}", object_id=index)
        reminder_for(cast.manager, title=f"Own {index}", object_id=100 + index)
    client = client_for(cast.manager)

    with django_assert_num_queries(MANAGER_LIST_QUERIES):
        response = client.get(LIST)

    assert response.content.decode().count('data-testid="reminder"') == 2 * count


def test_the_list_is_paginated(cast: Cast):
    for index in range(30):
        reminder_for(cast.rep, title=f"Call {index:02}", object_id=index)
    client = client_for(cast.rep)

    first = client.get(LIST).content.decode()
    second = client.get(LIST, {"page": 2}).content.decode()

    assert first.count('data-testid="reminder"') == 25
    assert second.count('data-testid="reminder"') == 5
    assert "Page 1 of 2" in first


def test_the_panel_shows_ten_and_counts_the_rest(cast: Cast, django_assert_num_queries):
    today = timezone.localdate()
    for index in range(12):
        reminder_for(cast.rep, title=f"Call {index:02}", object_id=index)
    reminder_for(cast.teammate, title="Not for Alice", object_id=99)

    # The first ten, then the count (there may be more).
    with django_assert_num_queries(2):
        panel = reminder_panel_for(user=cast.rep, today=today)

    assert (len(panel.reminders), panel.count, panel.more) == (10, 12, 2)
    assert all(reminder.user_id == cast.rep.pk for reminder in panel.reminders)


def test_a_managers_panel_holds_their_own_reminders_only(cast: Cast):
    reminder_for(cast.teammate, object_id=1)
    assert reminder_panel_for(user=cast.manager, today=timezone.localdate()).count == 0


@pytest.mark.parametrize(
    ("role", "status"),
    [("owner_rep", 403), ("manager", 403), ("other_rep", 403), ("marketing", 403), ("admin", 200)],
)
def test_the_ops_page_is_for_admins(cast: Cast, role: str, status: int):
    assert client_for(cast.roles()[role]).get(reverse("reminders:ops")).status_code == status


def test_the_ops_page_shows_a_stuck_queue(cast: Cast):
    now = timezone.now()
    reminder_for(cast.rep, object_id=1, send_after=now - dt.timedelta(hours=2))
    reminder_for(
        cast.rep,
        object_id=2,
        email_state=EmailState.CLAIMED,
        claimed_at=now - dt.timedelta(hours=1),
    )
    reminder_for(
        cast.rep,
        object_id=3,
        email_state=EmailState.FAILED,
        last_error="SMTPRecipientsRefused: no such user",
    )

    page = client_for(cast.admin).get(reverse("reminders:ops")).content.decode()

    assert "Reminders: 1 · Digests: 0" in page
    assert "SMTPRecipientsRefused: no such user" in page
    assert "Nothing waiting." not in page


def test_the_profile_sets_the_reminder_emails_choice(cast: Cast):
    client = client_for(cast.rep)
    assert "The daily digest only" in client.get(reverse("profile")).content.decode()

    response = client.post(
        reverse("profile"),
        {
            "display_name": "Alice Rep",
            "language": "en",
            "time_zone": "Europe/Stockholm",
            "reminder_emails": ReminderEmails.DIGEST,
        },
    )

    assert response.status_code == 302
    cast.rep.refresh_from_db()
    assert cast.rep.reminder_emails == ReminderEmails.DIGEST


def test_reminders_and_digests_in_the_admin(cast: Cast):
    reminder_for(cast.rep, title="Call back Acme")
    client = client_for(cast.admin)

    reminders = client.get(
        reverse("admin:reminders_reminder_changelist"), {"email_state": "pending"}
    )
    digests = client.get(reverse("admin:reminders_digest_changelist"))

    assert reminders.status_code == digests.status_code == 200
    assert "Call back Acme" in reminders.content.decode()


# Ops page: session, user; reminders, digests and survey emails by state (3); the
# oldest waiting reminder and digest (2); stuck reminder and digest claims (2); the
# last reminder, digest and survey email errors (3, with their person).
OPS_QUERIES = 12


@pytest.mark.parametrize("count", [1, 2])
def test_ops_query_count_does_not_grow(cast: Cast, django_assert_num_queries, count: int):
    for index in range(count):
        reminder_for(cast.rep, object_id=index, email_state=EmailState.FAILED, last_error="boom")
    client = client_for(cast.admin)

    with django_assert_num_queries(OPS_QUERIES):
        response = client.get(reverse("reminders:ops"))

    assert response.content.decode().count('data-testid="error"') == count


def test_the_panel_links_each_reminder_to_what_it_is_about(cast: Cast):
    from tests.factories_leads import LeadFactory

    lead = LeadFactory(owner=cast.rep)
    reminder_for(cast.rep, kind="lead_no_contact", object_id=lead.pk, lead=lead, title="Acme")
    page = client_for(cast.rep).get(reverse("home")).content.decode()
    assert f'<a href="{reverse("leads:detail", args=[lead.pk])}">Acme</a>' in page
