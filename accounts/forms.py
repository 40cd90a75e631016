from __future__ import annotations

import zoneinfo
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm, PasswordResetForm
from django.db import transaction
from django.template import loader
from django.utils.translation import gettext_lazy as _

from accounts.models import ReminderEmails, User, validate_time_zone


class LoginForm(AuthenticationForm):
    error_messages = {
        **AuthenticationForm.error_messages,
        # Emails are matched in any case, so Django's "may be case-sensitive" would mislead.
        "invalid_login": _("Please enter a correct email address and password."),
    }
    username = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"}),
    )


class QueuedPasswordResetForm(PasswordResetForm):
    """Django's reset form, with the email sent by a Celery worker after commit.

    The page answers at once whether or not SMTP is slow or down; the worker
    retries a failed send with backoff.
    """

    def send_mail(
        self,
        subject_template_name: str,
        email_template_name: str,
        context: dict[str, Any],
        from_email: str | None,
        to_email: str,
        html_email_template_name: str | None = None,
    ) -> None:
        from accounts.tasks import send_email

        subject = "".join(loader.render_to_string(subject_template_name, context).splitlines())
        body = loader.render_to_string(email_template_name, context)
        html_body = (
            loader.render_to_string(html_email_template_name, context)
            if html_email_template_name
            else None
        )
        transaction.on_commit(
            lambda: send_email.delay(subject=subject, body=body, to=[to_email], html_body=html_body)
        )


def _time_zone_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


class ProfileForm(forms.Form):
    display_name = forms.CharField(label=_("Display name"), max_length=150)
    language = forms.ChoiceField(label=_("Preferred language"), choices=settings.LANGUAGES)
    time_zone = forms.ChoiceField(
        label=_("Time zone"), choices=_time_zone_choices, validators=[validate_time_zone]
    )
    reminder_emails = forms.ChoiceField(
        label=_("Reminder emails"),
        choices=ReminderEmails.choices,
        widget=forms.RadioSelect,
        help_text=_("The daily digest goes out at 8:00 in your time zone."),
        # Not required: a form that leaves it out keeps the current choice.
        required=False,
    )

    @classmethod
    def for_user(cls, user: User, data: Any = None) -> ProfileForm:
        initial = {
            "display_name": user.display_name,
            "language": user.language,
            "time_zone": user.time_zone,
            "reminder_emails": user.reminder_emails,
        }
        return cls(data=data, initial=initial)

    def clean_reminder_emails(self) -> str | None:
        return self.cleaned_data.get("reminder_emails") or None
