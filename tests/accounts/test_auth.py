"""Logging in and out, throttling, password change and reset, as a person would."""

from __future__ import annotations

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.conftest import Cast, client_for
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db


def login(client: Client, email: str, password: str, ip: str = "10.0.0.1"):
    return client.post(reverse("login"), {"username": email, "password": password}, REMOTE_ADDR=ip)


def test_login_with_email_in_any_case_lands_on_home(cast: Cast) -> None:
    client = Client()
    response = login(client, "Alice@Example.COM", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert "Alice Rep" in client.get(reverse("home")).content.decode()


def test_wrong_password_shows_a_clear_error(cast: Cast) -> None:
    response = login(Client(), cast.rep.email, "wrong")
    assert response.status_code == 200
    assert "Please enter a correct email address and password." in response.content.decode()


def test_inactive_user_cannot_log_in(cast: Cast) -> None:
    cast.rep.is_active = False
    cast.rep.save(update_fields=["is_active"])
    response = login(Client(), cast.rep.email, PASSWORD)
    assert response.status_code == 200
    assert "_auth_user_id" not in response.client.session


def test_pages_need_login(cast: Cast) -> None:
    for name in ("home", "profile", "password_change"):
        response = Client().get(reverse(name))
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("login"))


def test_logout_is_a_post_and_ends_the_session(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 302


def test_throttling_locks_a_username_on_one_ip_only(cast: Cast) -> None:
    """Five wrong passwords lock (alice, this IP): not alice elsewhere, not bob here."""
    attacker = Client()
    for _ in range(5):
        login(attacker, cast.rep.email, "wrong", ip="10.0.0.66")
    locked = login(attacker, cast.rep.email, PASSWORD, ip="10.0.0.66")
    assert locked.status_code == 429
    assert "Too many failed log-ins" in locked.content.decode()

    # The same office IP: a colleague still logs in.
    assert login(Client(), cast.teammate.email, PASSWORD, ip="10.0.0.66").status_code == 302
    # Alice from her own machine still logs in.
    assert login(Client(), cast.rep.email, PASSWORD, ip="10.0.0.7").status_code == 302


def test_throttle_cools_off(cast: Cast, time_machine) -> None:
    time_machine.move_to("2026-03-01 09:00Z", tick=False)
    for _ in range(5):
        login(Client(), cast.rep.email, "wrong", ip="10.0.0.66")
    assert login(Client(), cast.rep.email, PASSWORD, ip="10.0.0.66").status_code == 429
    time_machine.move_to("2026-03-01 09:16Z", tick=False)
    assert login(Client(), cast.rep.email, PASSWORD, ip="10.0.0.66").status_code == 302


def test_password_change(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": "a-new-long-password-42",
            "new_password2": "a-new-long-password-42",
        },
    )
    assert response.status_code == 302
    assert login(Client(), cast.rep.email, "a-new-long-password-42").status_code == 302


def test_password_change_with_wrong_old_password_keeps_the_old_one(cast: Cast) -> None:
    client = client_for(cast.rep)
    response = client.post(
        reverse("password_change"),
        {"old_password": "nope", "new_password1": "x-long-pw-99", "new_password2": "x-long-pw-99"},
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly" in response.content.decode()
    assert login(Client(), cast.rep.email, PASSWORD).status_code == 302


def test_password_reset_by_email(cast: Cast, django_capture_on_commit_callbacks) -> None:
    client = Client()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("password_reset"), {"email": cast.rep.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == [cast.rep.email]
    assert "Alice Rep" in message.body
    assert message.alternatives  # an HTML part too
    link = re.search(r"https?://[^/]+(/password/reset/\S+/)", message.body).group(1)

    form_page = client.get(link, follow=True)
    assert "Choose a new password" in form_page.content.decode()
    done = client.post(
        form_page.redirect_chain[-1][0],
        {"new_password1": "fresh-password-2026", "new_password2": "fresh-password-2026"},
    )
    assert done.status_code == 302
    assert login(Client(), cast.rep.email, "fresh-password-2026").status_code == 302
    # The link works once.
    again = client.get(link, follow=True)
    assert "not valid any more" in again.content.decode()


def test_password_reset_for_unknown_email_sends_nothing_and_says_the_same(
    cast: Cast, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = Client().post(reverse("password_reset"), {"email": "nobody@example.com"})
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []
