"""Writes to the organisation: users, teams, profiles. Each runs in one transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import Role, Team, Territory, User


@transaction.atomic
def user_create(
    *,
    email: str,
    display_name: str,
    role: str = Role.REP,
    password: str | None = None,
    team: Team | None = None,
    territories: Iterable[Territory] = (),
    language: str = "en",
    time_zone: str | None = None,
) -> User:
    """Create a user; the admin role also opens the Django admin (staff + superuser)."""
    email = User.objects.normalize_email(email)
    if User.objects.filter(email__iexact=email).exists():
        raise ValidationError({"email": _("A user with this email address already exists.")})
    user = User(
        email=email,
        display_name=display_name,
        role=role,
        team=team,
        language=language,
        is_staff=role == Role.ADMIN,
        is_superuser=role == Role.ADMIN,
    )
    if time_zone:
        user.time_zone = time_zone
    user.set_password(password)
    user.full_clean()
    user.save()
    if territories:
        user.territories.set(territories)
    return user


@transaction.atomic
def team_set_managers(*, team: Team, managers: Iterable[User]) -> None:
    """Give a team its managers; only users with the manager role can manage a team."""
    managers = list(managers)
    not_managers = [m for m in managers if m.role != Role.MANAGER]
    if not_managers:
        names = ", ".join(str(m) for m in not_managers)
        raise ValidationError(
            _("Only sales managers can manage a team: %(names)s.") % {"names": names}
        )
    team.managers.set(managers)


def user_update_profile(
    *,
    user: User,
    display_name: str,
    language: str,
    time_zone: str,
    reminder_emails: str | None = None,
) -> User:
    """Save the profile; ``reminder_emails`` None leaves that choice as it is."""
    user.display_name = display_name
    user.language = language
    user.time_zone = time_zone
    fields = ["display_name", "language", "time_zone"]
    if reminder_emails is not None:
        user.reminder_emails = reminder_emails
        fields.append("reminder_emails")
    user.full_clean(exclude=["password"])
    user.save(update_fields=fields)
    return user


def user_set_language(*, user: User, language: str) -> None:
    if user.language != language:
        user.language = language
        user.save(update_fields=["language"])


def housekeeping_run(*, now: datetime, keep_days: int = 30) -> dict[str, int]:
    """Delete expired sessions and login-throttle records older than ``keep_days``.

    Safe to repeat: it only deletes rows that are past their cut-off, so a second
    run deletes nothing new.
    """
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog

    cutoff = now - timedelta(days=keep_days)
    return {
        "sessions": Session.objects.filter(expire_date__lt=now).delete()[0],
        "access_attempts": AccessAttempt.objects.filter(attempt_time__lt=cutoff).delete()[0],
        "access_logs": AccessLog.objects.filter(attempt_time__lt=cutoff).delete()[0],
        "access_failures": AccessFailureLog.objects.filter(attempt_time__lt=cutoff).delete()[0],
    }
